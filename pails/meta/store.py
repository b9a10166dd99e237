"""The metadata store protocol: SQLite (embedded) and PostgreSQL implement it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from pails.meta.models import Bucket, ListPage, ObjectVersion


class BucketExists(Exception):
    def __init__(self, owner_id: str) -> None:
        super().__init__(owner_id)
        self.owner_id = owner_id


class BucketNotEmptyError(Exception):
    pass


class NoSuchBucketError(Exception):
    """The bucket (by id or name) does not exist, e.g. it was deleted while a write was in flight."""


class MetadataStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # Buckets
    async def create_bucket(self, name: str, owner_id: str, region: str) -> Bucket:
        """Insert a bucket; raise BucketExists (carrying the existing owner) if the name is taken."""
        ...

    async def get_bucket(self, name: str) -> Bucket | None: ...

    async def list_buckets(self, owner_id: str | None = None) -> list[Bucket]:
        """Buckets sorted by name; all of them when owner_id is None."""
        ...

    async def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket; raise BucketNotEmptyError if it holds objects."""
        ...

    # Objects
    async def put_object(
        self, obj: ObjectVersion, *, before_commit: Callable[[], None] | None = None
    ) -> None:
        """Commit obj as the latest version of its key, durably.

        before_commit (blocking; any thread) runs before the transaction that holds obj commits:
        it makes the object's data durable, so that the row never names data a crash could lose.

        The version it replaces (same version_id) is removed in the same transaction and its
        chunks are queued for garbage collection. last_modified is made strictly greater than
        the previous version's.
        """
        ...

    async def get_object(self, bucket_id: int, key: str) -> ObjectVersion | None: ...

    async def delete_object(self, bucket_id: int, key: str) -> bool:
        """Delete the key; its chunks go to the GC queue atomically. True if it existed."""
        ...

    async def delete_objects(self, bucket_id: int, keys: Sequence[str]) -> list[bool]: ...

    async def list_objects(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> ListPage: ...

    # Garbage collection
    async def take_garbage(self, limit: int, queued_before: float) -> list[tuple[int, bytes]]:
        """Up to `limit` (queue id, chunk id) pairs of chunks no object references any more,
        queued before the given unix time (so that reads already streaming them can finish)."""
        ...

    async def ack_garbage(self, queue_ids: Sequence[int]) -> None: ...

    def referenced_chunks(self) -> AsyncIterator[bytes]:
        """Every chunk id that a committed object (or part) references."""
        ...
