"""The metadata store protocol: SQLite (embedded) and PostgreSQL implement it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Protocol

from pails.meta.access import AccessStore
from pails.meta.models import (
    Bucket,
    DeleteOutcome,
    ListPage,
    ObjectVersion,
    Part,
    SharedChunks,
    Upload,
    UploadPage,
    VersionPage,
    WriteCondition,
)


class BucketExists(Exception):
    def __init__(self, owner_id: str) -> None:
        super().__init__(owner_id)
        self.owner_id = owner_id


class BucketNotEmptyError(Exception):
    pass


class NoSuchBucketError(Exception):
    """The bucket (by id or name) does not exist, e.g. it was deleted while a write was in flight."""


class PreconditionFailedError(Exception):
    """A conditional write's condition did not hold at commit time (S3: 412 PreconditionFailed)."""


class NoSuchKeyError(Exception):
    """If-Match named a key that does not exist (S3: 404 NoSuchKey)."""


class SourceChangedError(Exception):
    """The object that chunks were to be shared from was replaced or deleted since it was read."""


class NoSuchUploadError(Exception):
    """No multipart upload with this id (in this bucket, for this key) is in progress."""


class InvalidPartError(Exception):
    """A completion named a part that does not exist, or with another ETag or checksum."""


class InvalidPartOrderError(Exception):
    """A completion listed its parts out of ascending order (or one twice)."""


class ChecksumMismatchError(Exception):
    """A completion stated the object's checksum (or checksum type), and it is not the upload's."""


class EntityTooSmallError(Exception):
    """A part other than the last is smaller than the minimum part size."""

    def __init__(self, part_number: int, size: int) -> None:
        super().__init__(part_number, size)
        self.part_number = part_number
        self.size = size


class MetadataStore(AccessStore, Protocol):
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

    async def set_versioning(self, bucket_id: int, status: str) -> None:
        """Set the bucket's versioning to "Enabled" or "Suspended" (NoSuchBucketError if gone)."""
        ...

    # Objects
    async def put_object(
        self,
        obj: ObjectVersion,
        *,
        before_commit: Callable[[], None] | None = None,
        condition: WriteCondition | None = None,
        shared: SharedChunks | None = None,
    ) -> ObjectVersion:
        """Commit obj as the latest version of its key, durably; return it as stored
        (last_modified adjusted).

        condition is evaluated against the key's latest version inside the same transaction
        (raise PreconditionFailedError / NoSuchKeyError). shared (CopyObject): the source must
        still hold the manifest that was read, else SourceChangedError; every shared chunk gains a
        reference (see chunk references below).

        before_commit (blocking; any thread) runs before the transaction that holds obj commits:
        it makes the object's data durable, so that the row never names data a crash could lose.

        The version it replaces (same version_id) is removed in the same transaction and its
        chunks are queued for garbage collection. last_modified is made strictly greater than
        the previous version's.

        Versioning is read from the bucket row inside the transaction: while it is Enabled, an
        obj whose version_id is "null" gets a fresh version id (pails.meta.rules.new_version_id)
        and the previous latest version is only demoted; otherwise it replaces the null version.
        The returned value carries the version id.
        """
        ...

    async def get_object(
        self, bucket_id: int, key: str, version_id: str | None = None, *, head_only: bool = False
    ) -> ObjectVersion | None:
        """The latest version of the key (delete markers included), or the given version.

        head_only: the caller needs no body and no ACL (HeadObject): a store may leave `manifest`
        empty and `acl` "" (it reads less).
        """
        ...

    async def set_object_tags(
        self, bucket_id: int, key: str, version_id: str | None, tags: dict[str, str]
    ) -> str | None:
        """Replace the tags of the key's latest version (version_id None) or of the given version,
        in place (no new version, last_modified unchanged); {} removes them. Returns the version
        id tagged, or None when there is no such version or it is a delete marker."""
        ...

    # Bucket tags: None when the bucket has no tag set (S3: NoSuchTagSet).
    async def get_bucket_tags(self, bucket_id: int) -> dict[str, str] | None:
        """The bucket's tag set, None if it has none (NoSuchBucketError if gone)."""
        ...

    async def set_bucket_tags(self, bucket_id: int, tags: dict[str, str] | None) -> None:
        """Replace the bucket's tag set; None removes it (NoSuchBucketError if gone)."""
        ...

    async def delete_version(
        self, bucket_id: int, key: str, version_id: str | None, *, now: float
    ) -> DeleteOutcome:
        """S3 DeleteObject in one transaction.

        version_id None: on a never-versioned bucket the key's row goes; on an Enabled bucket a
        delete marker with a fresh version id becomes the latest; on a Suspended one a delete
        marker replaces the null version (whose chunks are released). With a version_id, that
        version goes (chunks released) and, if it was the latest, the newest remaining version is
        promoted. Unknown versions are no error (existed False).
        """
        ...

    async def delete_versions(
        self, bucket_id: int, items: Sequence[tuple[str, str | None]], *, now: float
    ) -> list[DeleteOutcome]:
        """delete_version for each (key, version id), all in one transaction."""
        ...

    async def list_versions(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        max_keys: int = 1000,
    ) -> VersionPage:
        """One page of ListObjectVersions (see pails.meta.listing.VersionPlan), from one snapshot."""
        ...

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
    async def take_garbage(
        self, limit: int, queued_before: float, owner: int | None = None
    ) -> list[tuple[int, bytes]]:
        """Up to `limit` (queue id, chunk id) pairs of chunks no object references any more,
        queued before the given unix time (so that reads already streaming them can finish).
        With `owner`, only chunks whose id starts with that byte (the worker that owns them)."""
        ...

    async def ack_garbage(self, queue_ids: Sequence[int]) -> None: ...

    def referenced_chunks(self) -> AsyncIterator[bytes]:
        """Every chunk id that a committed object (or part) references."""
        ...

    # Multipart uploads. Chunk references: a chunk is born with one reference (the object or
    # part that wrote it); sharing (copies) adds references and a chunk is queued for GC only
    # when its last reference goes (overwrite, delete, part replaced, upload aborted, a part
    # left out of a completion).
    async def create_upload(self, upload: Upload) -> None:
        """Insert an upload in state 'uploading'; NoSuchBucketError if the bucket is gone."""
        ...

    async def get_upload(self, bucket_id: int, upload_id: str) -> Upload | None:
        """The upload in any state, or None."""
        ...

    async def put_part(
        self,
        part: Part,
        *,
        before_commit: Callable[[], None] | None = None,
        shared: SharedChunks | None = None,
    ) -> None:
        """Add or replace a part of an upload in state 'uploading' (else NoSuchUploadError); a
        replaced part's chunks lose their reference in the same transaction."""
        ...

    async def list_parts(self, bucket_id: int, upload_id: str, *, after: int, limit: int) -> list[Part]:
        """Up to `limit` parts with part_number > after, ascending (manifests may be left empty)."""
        ...

    async def list_uploads(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = 1000,
    ) -> UploadPage:
        """Uploads in state 'uploading', by key (UTF-8 byte order) then upload id, after the
        markers (key > key_marker, or key == key_marker and upload_id > upload_id_marker when
        that is given); keys holding the delimiter after the prefix roll up into common prefixes."""
        ...

    async def complete_upload(
        self,
        bucket_id: int,
        upload_id: str,
        key: str,
        requested: Sequence[tuple[int, str, dict[str, str]]],
        *,
        last_modified: float,
        min_part_size: int,
        condition: WriteCondition | None = None,
        expected_checksums: Mapping[str, str] | None = None,
    ) -> ObjectVersion:
        """In one transaction: check the upload (NoSuchUploadError), assemble the requested
        (part number, ETag, checksums) with pails.meta.rules.assemble_parts (InvalidPartError,
        InvalidPartOrderError, EntityTooSmallError, and ChecksumMismatchError when
        `expected_checksums` (the request's x-amz-checksum-<alg> / x-amz-checksum-type) disagree), check `condition`, commit the object whose
        manifest is the parts' chunk lists (no data is touched), drop the part rows, release
        the chunks of parts not named, mark the upload 'complete' with its ETag.

        On an upload already complete, return an ObjectVersion carrying only key, etag and
        checksums of that completion (a retried request gets the same answer).
        """
        ...

    async def abort_upload(self, bucket_id: int, upload_id: str) -> bool:
        """Mark an 'uploading' upload 'aborted' and release its parts' chunks; False if there was
        no such upload in progress."""
        ...

    async def purge_finished_uploads(self, initiated_before: float, limit: int) -> int:
        """Forget up to `limit` completed or aborted uploads initiated before the given unix time
        (they hold no parts; a complete one only answers retried completions). Returns how many."""
        ...
