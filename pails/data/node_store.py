"""What a storage node does with chunks, apart from HTTP: writes under given ids (idempotent,
verified, capacity-checked), reads, corrupt-chunk bookkeeping and listing in id order."""

from __future__ import annotations

import asyncio
import bisect
import logging
import shutil
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from awscrt.checksums import crc32c as _crc32c

from pails.data import volume as vf
from pails.data.engine import ChunkCorrupt, ChunkInfo, ChunkMissing, StoreFull
from pails.data.local import LocalChunkStore
from pails.limits import CHUNK_SIZE

log = logging.getLogger(__name__)

RECORD_OVERHEAD = vf.HEADER_SIZE + 4 * vf.STREAM_SLOTS + vf.HEADER_SIZE
"""Worst-case bytes a chunk record costs beyond its data (header, crc table, a tombstone later)."""
LIST_SNAPSHOT_SECONDS = 5.0


class BadChunk(Exception):
    """The body sent does not match its declared length or CRC32C: nothing was stored."""


class ChunkConflict(Exception):
    """The id holds a sound chunk with other content; it is never overwritten."""


@dataclass(frozen=True, slots=True)
class NodeUsage:
    capacity: int
    used: int
    free: int
    chunks: int
    corrupt: int
    corrupt_found: int
    volumes: int
    garbage: int
    live: int


class NodeStore:
    def __init__(self, data_dir: Path, *, capacity: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.chunks = LocalChunkStore(self.data_dir / "chunks", given_ids=True)
        self.capacity = capacity
        self.corrupt: set[bytes] = set()
        self.corrupt_found = 0  # chunks found corrupt since start (reads, verifies, scrubs)
        self._reserved = 0  # bytes of writes in flight
        self._locks: dict[bytes, tuple[asyncio.Lock, int]] = {}  # per id being written: lock, users
        self._sorted: list[bytes] = []
        self._sorted_at = -1e9

    async def open(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self.chunks.open()

    async def close(self) -> None:
        await self.chunks.close()

    # Capacity ----------------------------------------------------------------------------------

    def usage(self) -> NodeUsage:
        st = self.chunks.stats()
        disk = shutil.disk_usage(self.data_dir)
        used = st.disk_bytes
        if self.capacity is not None:
            capacity = self.capacity
            free = max(0, min(capacity - used, disk.free))
        else:
            capacity = used + disk.free
            free = disk.free
        return NodeUsage(
            capacity=capacity,
            used=used,
            free=free,
            chunks=st.chunks,
            corrupt=len(self.corrupt),
            corrupt_found=self.corrupt_found,
            volumes=st.volumes,
            garbage=st.garbage_bytes,
            live=st.live_bytes,
        )

    def _reserve(self, length: int) -> int:
        need = length + RECORD_OVERHEAD
        if need + self._reserved > self.usage().free:
            raise StoreFull(f"no room for a {length}-byte chunk")
        self._reserved += need
        return need

    # Writing -----------------------------------------------------------------------------------

    async def put(
        self,
        chunk_id: bytes,
        body: AsyncIterable[bytes],
        length: int,
        crc32c: int,
        *,
        accept: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Store a chunk under its id and make it durable. True if written, False if the same chunk
        was already stored. Raises BadChunk, ChunkConflict, StoreFull; on any failure nothing of
        this write remains.

        accept: when given, the body has not been sent yet (HTTP `Expect: 100-continue`): it is
        awaited once the chunk is known to be new and to fit, right before the body is read, and
        the body is never read otherwise. Without it, an already stored chunk's body is read and
        checked (not stored)."""
        if not 0 <= length <= CHUNK_SIZE:
            raise BadChunk(f"a chunk holds 0 to {CHUNK_SIZE} bytes")
        lock, users = self._locks.get(chunk_id, (asyncio.Lock(), 0))
        self._locks[chunk_id] = (lock, users + 1)
        try:
            async with lock:
                if await self._already_stored(chunk_id, length, crc32c):
                    if accept is None:
                        await _drain(body, length, crc32c)
                    return False
                await self._write(chunk_id, body, length, crc32c, accept)
                return True
        finally:
            lock, users = self._locks[chunk_id]
            if users == 1:
                del self._locks[chunk_id]
            else:
                self._locks[chunk_id] = (lock, users - 1)

    async def _already_stored(self, chunk_id: bytes, length: int, crc32c: int) -> bool:
        """True if a sound copy of this exact chunk is stored; ChunkConflict if a sound chunk with
        other content is; False if nothing, or a corrupt copy (to be replaced), is stored."""
        if chunk_id in self.corrupt:
            return False
        try:
            info = await self.chunks.info(chunk_id)
            sound = await self.chunks.verify(chunk_id)
        except ChunkMissing:
            return False
        except ChunkCorrupt:
            sound = False
        if not sound:
            self.mark_corrupt(chunk_id)
            return False
        if info.length == length and info.crc32c == crc32c:
            return True
        raise ChunkConflict(f"chunk {chunk_id.hex()} exists with other content")

    async def _write(
        self,
        chunk_id: bytes,
        body: AsyncIterable[bytes],
        length: int,
        crc32c: int,
        accept: Callable[[], Awaitable[None]] | None,
    ) -> None:
        reserved = self._reserve(length)
        try:
            if accept is not None:
                await accept()
            sink = await self.chunks.new_chunk(length, chunk_id=chunk_id)
            try:
                got, crc = 0, 0
                async for piece in body:
                    got += len(piece)
                    if got > length:
                        raise BadChunk("body longer than its content-length")
                    crc = _crc32c(piece, crc)
                    await sink.write(piece)
                if got != length:
                    raise BadChunk(f"body ended after {got} of {length} bytes")
                if crc != crc32c:
                    raise BadChunk("body does not match its x-pails-crc32c")
                ref = await sink.finish()
            except BaseException:
                await asyncio.shield(sink.abort())
                raise
            await self.chunks.sync([ref])
            self.corrupt.discard(chunk_id)
        finally:
            self._reserved -= reserved

    # Reading, deleting, listing ----------------------------------------------------------------

    async def info(self, chunk_id: bytes) -> ChunkInfo:
        return await self.chunks.info(chunk_id)

    def read(self, chunk_id: bytes, offset: int, length: int | None) -> AsyncIterator[bytes]:
        return self.chunks.read(chunk_id, offset, length)

    async def verify(self, chunk_id: bytes) -> str:
        """ "ok", "corrupt" or "missing"; a corrupt chunk is remembered."""
        try:
            sound = await self.chunks.verify(chunk_id)
        except ChunkMissing:
            self.corrupt.discard(chunk_id)
            return "missing"
        except ChunkCorrupt:
            sound = False
        if sound:
            self.corrupt.discard(chunk_id)
            return "ok"
        self.mark_corrupt(chunk_id)
        return "corrupt"

    def mark_corrupt(self, chunk_id: bytes) -> None:
        if chunk_id not in self.corrupt and self.chunks.chunk_length(chunk_id) is not None:
            log.warning("chunk %s is corrupt at rest", chunk_id.hex())
            self.corrupt.add(chunk_id)
            self.corrupt_found += 1

    async def delete(self, chunk_ids: Iterable[bytes]) -> None:
        ids = list(chunk_ids)
        await self.chunks.delete(ids)
        for chunk_id in ids:
            self.corrupt.discard(chunk_id)

    def list(self, after: bytes | None, limit: int) -> list[tuple[bytes, float]]:
        """Ids greater than `after` in byte order with their write times. Pages come from a sorted
        snapshot of the index taken at the start of a walk (after=None) or when it is a few seconds
        old; a chunk written since may be missed by the walk in progress, never listed twice."""
        now = time.monotonic()
        if after is None or now - self._sorted_at > LIST_SNAPSHOT_SECONDS:
            self._sorted = sorted(k for k, _ in self.chunks.chunk_ids())
            self._sorted_at = now
        start = 0 if after is None else bisect.bisect_right(self._sorted, after)
        out: list[tuple[bytes, float]] = []
        for chunk_id in self._sorted[start:]:
            if len(out) >= limit:
                break
            info = self.chunks.write_time(chunk_id)
            if info is not None:
                out.append((chunk_id, info))
        return out


async def _drain(body: AsyncIterable[bytes], length: int, crc32c: int) -> None:
    """Read a body that is not stored, still checking it: a bad body is an error either way."""
    got, crc = 0, 0
    async for piece in body:
        got += len(piece)
        crc = _crc32c(piece, crc)
    if got != length or crc != crc32c:
        raise BadChunk("body does not match its content-length and x-pails-crc32c")
