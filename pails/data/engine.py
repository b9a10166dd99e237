"""The chunk-store protocol: a local volume store (single node) and a replicated one implement it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

from pails.meta.models import ChunkRef


class ChunkCorrupt(Exception):
    """A chunk failed its checksum on read."""


class ChunkMissing(Exception):
    """No such chunk in this store."""


class StoreFull(Exception):
    """No space left to store a chunk."""


@dataclass(frozen=True, slots=True)
class StoreStats:
    chunks: int
    live_bytes: int
    garbage_bytes: int
    volumes: int
    disk_bytes: int


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    length: int
    wtime: float  # unix seconds
    crc32c: int  # of the whole chunk


class ChunkSink(Protocol):
    """Receives the bytes of one chunk. Not durable until ChunkStore.sync()."""

    async def write(self, data: bytes | memoryview) -> None: ...

    async def finish(self) -> ChunkRef: ...

    async def abort(self) -> None: ...


class SyncBarrier(Protocol):
    """Makes some chunks durable when called (blocking, from any thread); release() on the loop."""

    def __call__(self) -> None: ...

    def release(self) -> None: ...


class ChunkStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def new_chunk(self, size_hint: int | None = None) -> ChunkSink:
        """Start a chunk. size_hint (when known) lets small chunks be packed without streaming."""
        ...

    async def sync(self, refs: Iterable[ChunkRef]) -> None:
        """Return once the given chunks are durable on disk (group fsync)."""
        ...

    def sync_barrier(self, refs: Iterable[ChunkRef]) -> SyncBarrier:
        """Like sync(), but run by the metadata writer just before it commits (see decision 0002)."""
        ...

    def read(self, chunk_id: bytes, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [offset, offset+length) of a chunk, each piece verified before it is yielded.

        Raises ChunkMissing / ChunkCorrupt.
        """
        ...

    def read_now(self, chunk_id: bytes, offset: int, end: int) -> bytes | None:
        """Bytes [offset, end) of a chunk, verified, when they can be had at once without waiting
        (a small chunk already in memory or the page cache); None: use read(). Raises ChunkCorrupt.

        A small GET then costs one call instead of a stream of pieces.
        """
        ...

    async def delete(self, chunk_ids: Iterable[bytes]) -> None:
        """Forget chunks (missing ids are ignored); their space is reclaimed by compaction."""
        ...

    def chunk_ids(self) -> list[tuple[bytes, float]]:
        """Every stored chunk id with the unix time it was written (for mark-and-sweep GC)."""
        ...

    async def compact(self, garbage_ratio: float = 0.5) -> int:
        """Rewrite volumes whose garbage exceeds the ratio; return bytes reclaimed."""
        ...

    def stats(self) -> StoreStats: ...
