"""The single-node chunk store: chunks as records in append-only volume files, an in-memory index.

- Small chunks (size hint <= SMALL_CHUNK_MAX) are buffered and appended whole to one shared active
  volume with a plain pwrite on the event loop.
- Other chunks lease a writable volume for themselves and stream into it one CHECKSUM_BLOCK at a time
  (file I/O in a worker thread); the record header is written last, at finish.
- sync() hands the dirty volumes to one syncer thread, which fdatasyncs each volume once for every
  waiter that arrived while it was busy (group fsync).
- Readers pin the volume (its fd stays open while they read, even if compaction retires it) and verify
  the CRC32C of every block before yielding from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import threading
from collections.abc import AsyncGenerator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pails.checksums import crc_combine
from pails.data import volume as vf
from pails.data.engine import (
    ChunkCorrupt,
    ChunkInfo,
    ChunkMissing,
    ChunkSink,
    ChunkStore,
    StoreFull,
    StoreStats,
    SyncBarrier,
)
from pails.data.volume import Loc, Volume
from pails.limits import CHECKSUM_BLOCK, CHUNK_SIZE, READ_PIECE, SMALL_CHUNK_MAX, VOLUME_MAX_BYTES
from pails.meta.models import ChunkRef

log = logging.getLogger(__name__)

_TOMB_SIZE = vf.HEADER_SIZE
_CHUNK_ID = struct.Struct(">BIQ")  # owner worker, volume id, record offset; then 3 random bytes
MOVES_LOG = "moves.log"
_MOVE = struct.Struct("<16sIQI")  # chunk id, new volume, new record offset, crc32c of the first three


def make_chunk_id(worker: int, vol_id: int, off: int) -> bytes:
    """A chunk id that locates its record: any worker reads it from the owner's volume (0007)."""
    return _CHUNK_ID.pack(worker, vol_id, off) + os.urandom(16 - _CHUNK_ID.size)


def parse_chunk_id(chunk_id: bytes) -> tuple[int, int, int]:
    """(owner worker, volume id, record offset) encoded in a chunk id."""
    worker, vol_id, off = _CHUNK_ID.unpack_from(chunk_id, 0)
    return int(worker), int(vol_id), int(off)


def worker_root(chunks_root: Path, worker: int) -> Path:
    """Worker 0 keeps the single-process layout (chunks/volumes); worker k uses chunks/w{k}."""
    return chunks_root if worker == 0 else chunks_root / f"w{worker}"


def encode_move(chunk_id: bytes, vol_id: int, off: int) -> bytes:
    body = _MOVE.pack(chunk_id, vol_id, off, 0)[:-4]
    return body + vf.CRC.pack(vf.crc32c(body))


def decode_moves(data: bytes) -> dict[bytes, tuple[int, int]]:
    """The moves log as {chunk id: (volume, offset)}, later entries winning; stops at a torn entry."""
    moves: dict[bytes, tuple[int, int]] = {}
    for pos in range(0, len(data) - _MOVE.size + 1, _MOVE.size):
        chunk_id, vol_id, off, crc = _MOVE.unpack_from(data, pos)
        if vf.crc32c(data[pos : pos + _MOVE.size - 4]) != crc:
            break
        moves[chunk_id] = (vol_id, off)
    return moves


INLINE_READ_MAX = 64 * 1024
_FOREIGN_LOCS_MAX = 100_000
"""The first block of a chunk up to this size is read together with the crc table (one pread)."""


class GroupSyncer:
    """One thread that fdatasyncs volumes for many waiters at once.

    A waiter asks for volumes up to a write generation; the thread takes every waiter queued while it
    was busy, fdatasyncs each volume in their union once (unless an earlier sync already covered the
    generation), then wakes them all.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[dict[Volume, int], asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="pails-syncer", daemon=True)
        self.fsyncs = 0
        self.batches = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()

    async def wait(self, needs: dict[Volume, int]) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._stopping:
                raise RuntimeError("chunk store is closed")
            self._queue.append((needs, loop, fut))
            self._cond.notify()
        await fut

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            self.batches += 1
            targets: dict[Volume, int] = {}
            for needs, _, _ in batch:
                for vol, gen in needs.items():
                    targets[vol] = max(gen, targets.get(vol, 0))
            errors: dict[Volume, OSError] = {}
            for vol, gen in targets.items():
                if vol.synced_gen >= gen:
                    continue
                current = vol.write_gen
                try:
                    os.fdatasync(vol.fd)
                except OSError as exc:
                    errors[vol] = exc
                    continue
                self.fsyncs += 1
                vol.synced_gen = max(vol.synced_gen, current)
            for needs, loop, fut in batch:
                err = next((errors[v] for v in needs if v in errors), None)
                with contextlib.suppress(RuntimeError):  # the waiter's loop is closed
                    loop.call_soon_threadsafe(_settle, fut, err)


class _VolumeSyncBarrier:
    """Runs in the metadata writer thread (__call__); released on the event loop afterwards."""

    def __init__(self, needs: dict[Volume, int], syncer: GroupSyncer) -> None:
        self._needs = needs
        self._syncer = syncer

    def __call__(self) -> None:
        for vol, gen in self._needs.items():
            if vol.synced_gen >= gen:
                continue
            current = vol.write_gen
            os.fdatasync(vol.fd)
            self._syncer.fsyncs += 1
            vol.synced_gen = max(vol.synced_gen, current)

    def release(self) -> None:
        for vol in self._needs:
            vol.unpin()
        self._needs = {}


def _settle(fut: asyncio.Future[None], err: BaseException | None) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(None)
    else:
        fut.set_exception(err)


class _SmallSink:
    """Buffers a small chunk in memory; finish() appends the whole record to the active volume."""

    def __init__(self, store: LocalChunkStore, chunk_id: bytes | None) -> None:
        self._store = store
        self._chunk_id = chunk_id
        self._buf = bytearray()
        self._done = False

    async def write(self, data: bytes | memoryview) -> None:
        if self._done:
            raise RuntimeError("chunk already finished or aborted")
        if len(self._buf) + len(data) > CHUNK_SIZE:
            raise ValueError(f"a chunk holds at most {CHUNK_SIZE} bytes")
        self._buf += data

    async def finish(self) -> ChunkRef:
        if self._done:
            raise RuntimeError("chunk already finished or aborted")
        self._done = True
        wtime, buf, store = vf.now_us(), self._buf, self._store
        size = len(buf)
        self._buf = bytearray()
        ids: list[bytes] = []

        given = self._chunk_id

        def build(vol_id: int, off: int) -> bytes:
            ids.append(given if given is not None else make_chunk_id(store.worker, vol_id, off))
            return vf.put_record(ids[-1], wtime, buf)

        vol, off, rlen = await store._append(build)
        chunk_id = ids[-1]
        await store._put_live(chunk_id, Loc(vol.id, off, off + rlen - size, size, wtime))
        return ChunkRef(chunk_id, size)

    async def abort(self) -> None:
        self._done = True
        self._buf = bytearray()


class _StreamSink:
    """Streams a chunk into a leased volume: data first, then header and crc table at the record start."""

    def __init__(self, store: LocalChunkStore, vol: Volume, chunk_id: bytes | None) -> None:
        self._store = store
        self._vol = vol
        self._chunk_id = chunk_id
        self._start = vol.size
        self._data_off = self._start + vf.HEADER_SIZE + 4 * vf.STREAM_SLOTS
        self._buf = bytearray()
        self._crcs: list[int] = []
        self._written = 0  # bytes of data on disk
        self._length = 0  # bytes received
        self._done = False
        self._inflight: asyncio.Future[int] | None = None

    async def write(self, data: bytes | memoryview) -> None:
        if self._done:
            raise RuntimeError("chunk already finished or aborted")
        if self._length + len(data) > CHUNK_SIZE:
            raise ValueError(f"a chunk holds at most {CHUNK_SIZE} bytes")
        self._length += len(data)
        view = memoryview(data).cast("B")
        while view:
            if not self._buf and len(view) >= CHECKSUM_BLOCK:
                await self._flush(view[:CHECKSUM_BLOCK])  # a whole block: no copy
                view = view[CHECKSUM_BLOCK:]
                continue
            take = min(len(view), CHECKSUM_BLOCK - len(self._buf))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) == CHECKSUM_BLOCK:
                block, self._buf = self._buf, bytearray()
                await self._flush(block)

    async def _flush(self, block: bytes | bytearray | memoryview) -> None:
        fd, off = self._vol.fd, self._data_off + self._written

        def work() -> int:
            vf.pwrite_all(fd, block, off)
            return vf.crc32c(block)

        self._inflight = asyncio.get_running_loop().run_in_executor(None, work)
        try:
            crc = await self._inflight
        except OSError as exc:
            await self._release(truncate=True)
            if vf.is_disk_full(exc):
                raise StoreFull(str(exc)) from exc
            raise
        self._crcs.append(crc)
        self._written += len(block)
        self._vol.write_gen += 1

    async def finish(self) -> ChunkRef:
        if self._done:
            raise RuntimeError("chunk already finished or aborted")
        if self._buf:
            block, self._buf = self._buf, bytearray()
            await self._flush(block)
        chunk_id = self._chunk_id or make_chunk_id(self._store.worker, self._vol.id, self._start)
        wtime = vf.now_us()
        head = vf.stream_head(chunk_id, wtime, self._written, self._crcs)
        try:
            await asyncio.to_thread(vf.pwrite_all, self._vol.fd, head, self._start)
        except OSError as exc:
            await self._release(truncate=True)
            if vf.is_disk_full(exc):
                raise StoreFull(str(exc)) from exc
            raise
        vol = self._vol
        vol.write_gen += 1
        vol.size = self._data_off + self._written
        self._done = True
        await self._store._put_live(chunk_id, Loc(vol.id, self._start, self._data_off, self._written, wtime))
        await self._release(truncate=False)
        return ChunkRef(chunk_id, self._written)

    async def abort(self) -> None:
        if not self._done:
            await self._release(truncate=True)

    async def _release(self, *, truncate: bool) -> None:
        self._done = True
        self._buf = bytearray()
        if self._inflight is not None and not self._inflight.done():
            await asyncio.wait([self._inflight])  # never truncate under a write still running
        if truncate:
            try:
                await asyncio.to_thread(os.ftruncate, self._vol.fd, self._start)
            except OSError:
                log.exception("volume %d: cannot truncate an aborted record", self._vol.id)
        self._store._release(self._vol)


class LocalChunkStore:
    """ChunkStore over volume files in ROOT/volumes. See pails/data/volume.py for the format."""

    def __init__(
        self,
        root: Path,
        *,
        volume_max_bytes: int = VOLUME_MAX_BYTES,
        worker: int = 0,
        given_ids: bool = False,
    ) -> None:
        """root: the chunks directory shared by all workers; worker k owns worker_root(root, k).

        given_ids: the caller names every chunk (`new_chunk(chunk_id=...)`, a storage node whose
        gateway chooses random ids); ids locate nothing, so there are no foreign reads, and writing
        an id that exists replaces its record (decision 0015).
        """
        if not 0 <= worker <= 255:
            raise ValueError("worker must be in 0..255")
        if given_ids and worker != 0:
            raise ValueError("a store with given chunk ids has a single worker")
        self.worker = worker
        self.given_ids = given_ids
        self.chunks_root = Path(root)
        self.root = worker_root(self.chunks_root, worker)
        self.dir = self.root / "volumes"
        # other workers' volumes, opened read-only on demand; their moves logs (size, moves)
        self._foreign: dict[tuple[int, int], Volume] = {}
        # Records of other workers' chunks already found at (worker, volume, offset): a volume is
        # append-only and its id never reused, so the record stays valid while the file is linked.
        self._foreign_locs: dict[bytes, tuple[tuple[int, int, int], Loc]] = {}
        self._lock_fd = -1  # an exclusive flock on volumes/LOCK while open: one writer per directory
        self._moves: dict[int, tuple[int, dict[bytes, tuple[int, int]]]] = {}
        self.volume_max_bytes = volume_max_bytes
        self._index: dict[bytes, Loc] = {}
        self._volumes: dict[int, Volume] = {}
        # tombstone bookkeeping: named volume -> {hosting volume -> bytes of tombstones naming it}
        self._tomb_refs: dict[int, dict[int, int]] = {}
        self._next_id = 1
        self._active: Volume | None = None
        self._active_lock = asyncio.Lock()
        self._compact_lock = asyncio.Lock()
        self._syncer = GroupSyncer()
        self._bg: set[asyncio.Task[None]] = set()
        self._opened = False

    # Lifecycle -------------------------------------------------------------------------------------

    async def open(self) -> None:
        from pails.data.compactor import load_store

        if self._opened:
            raise RuntimeError("chunk store is already open")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_dir(self.dir)
        self._syncer = GroupSyncer()
        state = await asyncio.to_thread(load_store, self.dir)
        for lv in state.volumes:
            fd = os.open(vf.volume_path(self.dir, lv.vol_id), os.O_RDWR)
            vol = Volume(lv.vol_id, fd, lv.size, indexed_to=lv.covered)
            if vol.size >= self.volume_max_bytes:
                vol.state = vf.SEALED
            self._volumes[vol.id] = vol
        self._index = state.index
        for loc in self._index.values():
            self._volumes[loc.vol].live += loc.record_size
        for named, hosts in state.tomb_refs.items():
            self._tomb_refs[named] = hosts
            for host, nbytes in hosts.items():
                self._volumes[host].tomb_live += nbytes
        self._next_id = state.next_id
        self._syncer.start()
        self._opened = True
        for vol in self._volumes.values():
            if vol.state == vf.SEALED and vol.indexed_to < vol.size:
                self._schedule_sidecar(vol)

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        async with self._compact_lock:
            await asyncio.to_thread(self._syncer.stop)
            if self._bg:
                await asyncio.gather(*self._bg, return_exceptions=True)
            for vol in list(self._volumes.values()):
                if vol.indexed_to < vol.size:
                    try:
                        await asyncio.to_thread(self._write_sidecar, vol)
                    except OSError:
                        log.exception("volume %d: cannot write its index sidecar", vol.id)
                vol.state = vf.RETIRED  # the fd is closed now, or by the last reader still on it
                if vol.pins == 0:
                    vol.close()
            self._volumes.clear()
            self._index.clear()
            for key in list(self._foreign):
                self._drop_foreign(key)
            self._moves.clear()
            os.close(self._lock_fd)
            self._lock_fd = -1
            self._active = None

    # Writing ---------------------------------------------------------------------------------------

    async def new_chunk(self, size_hint: int | None = None, *, chunk_id: bytes | None = None) -> ChunkSink:
        """chunk_id: only with given_ids (and then required): the 16-byte id to store the chunk under."""
        if self.given_ids != (chunk_id is not None):
            raise ValueError("chunk_id is required with given_ids and refused otherwise")
        if chunk_id is not None and len(chunk_id) != 16:
            raise ValueError("a chunk id is 16 bytes")
        if size_hint is not None and size_hint <= SMALL_CHUNK_MAX:
            return _SmallSink(self, chunk_id)
        return _StreamSink(self, await self._lease(), chunk_id)

    async def _append(self, build: bytes | Callable[[int, int], bytes]) -> tuple[Volume, int, int]:
        """Append a whole record (or several) to the shared active volume; return (volume, offset,
        length). `build(volume id, offset)` makes the record once its place is known."""
        async with self._active_lock:
            vol = self._active
            if vol is None or vol.state != vf.WRITABLE:
                vol = self._active = await self._lease()
            off = vol.size
            record = build if isinstance(build, bytes) else build(vol.id, off)
            try:
                if len(record) > SMALL_CHUNK_MAX + 4096:
                    await asyncio.to_thread(vf.pwrite_all, vol.fd, record, off)
                else:
                    vf.pwrite_all(vol.fd, record, off)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(vol.fd, off)
                if vf.is_disk_full(exc):
                    raise StoreFull(str(exc)) from exc
                raise
            vol.size = off + len(record)
            vol.write_gen += 1
            if vol.size >= self.volume_max_bytes:
                self._active = None
                self._release(vol)
            return vol, off, len(record)

    async def _lease(self, need: int = 0) -> Volume:
        """Take a writable volume for exclusive appends (with `need` bytes of room), or create one."""
        self._check_open()
        for vol in self._volumes.values():
            if vol.state == vf.WRITABLE and not vol.leased and vol.size + need < self.volume_max_bytes:
                vol.leased = True
                if os.fstat(vol.fd).st_size != vol.size:  # leftovers of a cancelled write
                    os.ftruncate(vol.fd, vol.size)
                return vol
        vol_id = self._next_id
        self._next_id += 1
        try:
            fd = await asyncio.to_thread(_create_volume, self.dir, vol_id)
        except OSError as exc:
            if vf.is_disk_full(exc):
                raise StoreFull(str(exc)) from exc
            raise
        vol = Volume(vol_id, fd, vf.FILE_HEADER.size)
        vol.leased = True
        self._volumes[vol_id] = vol
        return vol

    def _release(self, vol: Volume) -> None:
        vol.leased = False
        if vol.state == vf.WRITABLE and vol.size >= self.volume_max_bytes:
            self._seal(vol)

    def _seal(self, vol: Volume) -> None:
        vol.state = vf.SEALED
        if vol is self._active:
            self._active = None
        self._schedule_sidecar(vol)

    def _schedule_sidecar(self, vol: Volume) -> None:
        async def run() -> None:
            try:
                await asyncio.to_thread(self._write_sidecar, vol)
            except OSError:
                log.exception("volume %d: cannot write its index sidecar", vol.id)

        task = asyncio.get_running_loop().create_task(run())
        vol.seal_task = task
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def _write_sidecar(self, vol: Volume) -> None:
        """(thread) Make the volume durable, then write its .idx sidecar."""
        if vol.fd < 0:
            return
        os.fdatasync(vol.fd)
        lv = vf.load_volume(self.dir, vol.id, repair=False)
        vf.write_idx(self.dir, vol.id, lv.size, lv.records)
        vol.indexed_to = lv.size

    def _add_live(self, chunk_id: bytes, loc: Loc) -> Loc | None:
        """Index a new record; return the record of the same id it replaces (given ids only)."""
        old = self._index.get(chunk_id)
        self._index[chunk_id] = loc
        self._volumes[loc.vol].live += loc.record_size
        if old is not None:
            self._volumes[old.vol].live -= old.record_size
        return old

    async def _put_live(self, chunk_id: bytes, loc: Loc) -> None:
        """Index a finished record. A replaced record (a repair of the same id) gets a tombstone so
        that a later delete cannot bring it back; until that tombstone is durable, the newer write
        time wins on open (compactor.load_store)."""
        old = self._add_live(chunk_id, loc)
        if old is None:
            return
        try:
            host, _, _ = await self._append(vf.tombstone_record(chunk_id, old.wtime_us, old.vol))
        except (StoreFull, OSError) as exc:  # the new record still wins on open (newer write time)
            log.warning("the tombstone of a replaced chunk was not written: %s", exc)
            return
        self._add_tombstones(host, [old.vol])

    def _add_tombstones(self, host: Volume, named: Iterable[int]) -> None:
        for vol_id in named:
            if vol_id in self._volumes:
                hosts = self._tomb_refs.setdefault(vol_id, {})
                hosts[host.id] = hosts.get(host.id, 0) + _TOMB_SIZE
                host.tomb_live += _TOMB_SIZE

    def _check_open(self) -> None:
        if not self._opened:
            raise RuntimeError("chunk store is not open")

    # Durability ------------------------------------------------------------------------------------

    async def sync(self, refs: Iterable[ChunkRef]) -> None:
        needs: dict[Volume, int] = {}
        for ref in refs:
            loc = self._index.get(ref.chunk_id)
            if loc is None:
                raise ChunkMissing(ref.chunk_id.hex())
            vol = self._volumes[loc.vol]
            if vol.synced_gen < vol.write_gen:
                needs[vol] = vol.write_gen
        if not needs:
            return
        for vol in needs:
            vol.pin()
        try:
            await self._syncer.wait(needs)
        finally:
            for vol in needs:
                vol.unpin()

    def sync_barrier(self, refs: Iterable[ChunkRef]) -> SyncBarrier:
        """A blocking fdatasync of the chunks' volumes, for the metadata writer to run right
        before its commit: one thread hop and one batch for data and metadata together."""
        needs: dict[Volume, int] = {}
        for ref in refs:
            loc = self._index.get(ref.chunk_id)
            if loc is None:
                raise ChunkMissing(ref.chunk_id.hex())
            vol = self._volumes[loc.vol]
            if vol.synced_gen < vol.write_gen:
                needs[vol] = vol.write_gen
        for vol in needs:
            vol.pin()
        return _VolumeSyncBarrier(needs, self._syncer)

    @property
    def fsync_count(self) -> int:
        """fdatasyncs done by the group syncer (for tests and metrics)."""
        return self._syncer.fsyncs

    # Reading ---------------------------------------------------------------------------------------

    async def read(
        self, chunk_id: bytes, offset: int = 0, length: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        loc = self._index.get(chunk_id)
        if loc is not None:
            vol = self._volumes[loc.vol]
        elif len(chunk_id) == 16 and chunk_id[0] != self.worker and not self.given_ids:
            vol, loc = self._locate_foreign(chunk_id)
        else:
            raise ChunkMissing(chunk_id.hex())
        if offset < 0 or (length is not None and length < 0) or offset > loc.length:
            raise ValueError(f"bad range offset={offset} length={length} of a {loc.length}-byte chunk")
        end = loc.length if length is None else min(loc.length, offset + length)
        if offset >= end:
            return
        vol.pin()  # compaction may retire the volume meanwhile; its fd stays open until we unpin
        first, last = offset // CHECKSUM_BLOCK, (end - 1) // CHECKSUM_BLOCK
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[bytes] | None = None
        try:
            # Blocks in the page cache are read right here (faster than a thread hop); blocks that
            # need the disk are read in a thread, with the next one read ahead meanwhile.
            head = (loc.table_off, _block_end(loc, first))
            cached = _read_first_if_cached(vol.fd, loc, first, last, chunk_id)
            if cached is not None:
                crcs, block = cached
                cold = False
            elif _in_page_cache(vol.fd, *head):
                crcs, block = _read_first(vol.fd, loc, first, last, chunk_id)
                cold = False
            else:
                crcs, block = await loop.run_in_executor(
                    None, _read_first, vol.fd, loc, first, last, chunk_id
                )
                cold = True
            for k in range(first, last + 1):
                if k > first:
                    want = crcs[k - first]
                    if pending is not None:
                        block, pending = await pending, None
                    elif _in_page_cache(vol.fd, _block_start(loc, k), _block_end(loc, k)):
                        block, cold = _read_block(vol.fd, loc, k, want, chunk_id), False
                    else:
                        fut = loop.run_in_executor(None, _read_block, vol.fd, loc, k, want, chunk_id)
                        block, cold = await fut, True
                if cold and k < last:  # read ahead while the consumer takes this block
                    pending = loop.run_in_executor(
                        None, _read_block, vol.fd, loc, k + 1, crcs[k + 1 - first], chunk_id
                    )
                base = k * CHECKSUM_BLOCK
                lo, hi = max(offset, base) - base, min(end, base + len(block)) - base
                if lo == 0 and hi == len(block) and hi <= READ_PIECE:
                    yield block
                else:
                    view = memoryview(block)
                    for p in range(lo, hi, READ_PIECE):
                        yield bytes(view[p : min(hi, p + READ_PIECE)])
        finally:
            if pending is not None and not pending.done():
                pending.add_done_callback(lambda f: _unpin_after(f, vol))
            else:
                vol.unpin()

    def read_now(self, chunk_id: bytes, offset: int, end: int) -> bytes | None:
        """A range of the first block of one of this worker's small chunks, when its record is in
        the page cache (one preadv2, no thread, no stream); None otherwise: read() decides."""
        loc = self._index.get(chunk_id)
        if loc is None or not 0 <= offset < end <= min(loc.length, CHECKSUM_BLOCK):
            return None
        vol = self._volumes[loc.vol]
        vol.pin()
        try:
            cached = _read_first_if_cached(vol.fd, loc, 0, 0, chunk_id)
        finally:
            vol.unpin()
        if cached is None:
            return None
        block = cached[1]
        return block if offset == 0 and end == len(block) else block[offset:end]

    async def info(self, chunk_id: bytes) -> ChunkInfo:
        """Length, write time and whole-chunk CRC32C of a chunk, from its record's crc table (the
        block CRCs combined; no data is read). Raises ChunkMissing."""
        loc = self._index.get(chunk_id)
        if loc is None:
            raise ChunkMissing(chunk_id.hex())
        vol = self._volumes[loc.vol]
        if _in_page_cache(vol.fd, loc.table_off, loc.table_off + 4 * vf.nblocks_for(loc.length)):
            return ChunkInfo(loc.length, loc.wtime_us / 1e6, _whole_crc(vol.fd, loc, chunk_id))
        vol.pin()
        try:
            crc = await asyncio.to_thread(_whole_crc, vol.fd, loc, chunk_id)
        finally:
            vol.unpin()
        return ChunkInfo(loc.length, loc.wtime_us / 1e6, crc)

    async def verify(self, chunk_id: bytes) -> bool:
        """Re-read a whole chunk at rest and check every block against its CRC32C (in a thread).
        Raises ChunkMissing."""
        loc = self._index.get(chunk_id)
        if loc is None:
            raise ChunkMissing(chunk_id.hex())
        vol = self._volumes[loc.vol]
        vol.pin()
        try:
            return await asyncio.to_thread(_verify_loc, vol.fd, loc)
        finally:
            vol.unpin()

    def chunk_length(self, chunk_id: bytes) -> int | None:
        loc = self._index.get(chunk_id)
        return None if loc is None else loc.length

    def write_time(self, chunk_id: bytes) -> float | None:
        loc = self._index.get(chunk_id)
        return None if loc is None else loc.wtime_us / 1e6

    # Reading another worker's chunks (decision 0007) -------------------------------------------------

    def _locate_foreign(self, chunk_id: bytes) -> tuple[Volume, Loc]:
        """The owner's volume (read-only) and the chunk's record in it: where the id says, or else
        where the owner's moves log says compaction put it. A location whose header does not name
        this chunk is never served."""
        worker, vol_id, off = parse_chunk_id(chunk_id)
        tried: set[tuple[int, int]] = set()
        for _ in range(4):
            tried.add((vol_id, off))
            got = self._foreign_record(worker, vol_id, off, chunk_id)
            if got is not None:
                return got
            moved = self._foreign_moves(worker).get(chunk_id)
            if moved is None or moved in tried:
                break
            vol_id, off = moved
        raise ChunkMissing(chunk_id.hex())

    def _foreign_record(
        self, worker: int, vol_id: int, off: int, chunk_id: bytes
    ) -> tuple[Volume, Loc] | None:
        key = (worker, vol_id)
        vol = self._foreign.get(key)
        if vol is not None and os.fstat(vol.fd).st_nlink == 0:  # compacted away since we opened it
            self._drop_foreign(key)
            vol = None
        if vol is None:
            path = vf.volume_path(worker_root(self.chunks_root, worker) / "volumes", vol_id)
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            vol = self._foreign[key] = Volume(vol_id, fd, 0)
            vol.state = vf.SEALED
        else:
            known = self._foreign_locs.get(chunk_id)
            if known is not None and known[0] == (worker, vol_id, off):
                return vol, known[1]
        rec = vf.unpack_header(vf.pread_exact(vol.fd, vf.HEADER_SIZE, off), off)
        if rec is None or rec.kind != vf.KIND_PUT or rec.chunk_id != chunk_id:
            return None
        loc = vf.loc_of(vol_id, rec)
        if len(self._foreign_locs) >= _FOREIGN_LOCS_MAX:
            self._foreign_locs.clear()
        self._foreign_locs[chunk_id] = ((worker, vol_id, off), loc)
        return vol, loc

    def _drop_foreign(self, key: tuple[int, int]) -> None:
        vol = self._foreign.pop(key)
        vol.state = vf.RETIRED
        if vol.pins == 0:
            vol.close()

    def _foreign_moves(self, worker: int) -> dict[bytes, tuple[int, int]]:
        """The owner's moves log, re-read when its size changed."""
        path = worker_root(self.chunks_root, worker) / "volumes" / MOVES_LOG
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return {}
        cached = self._moves.get(worker)
        if cached is None or cached[0] != size:
            cached = self._moves[worker] = (size, decode_moves(path.read_bytes()[:size]))
        return cached[1]

    # Deleting, listing, compaction -----------------------------------------------------------------

    async def delete(self, chunk_ids: Iterable[bytes]) -> None:
        records: list[bytes] = []
        named: list[int] = []
        for chunk_id in chunk_ids:
            loc = self._index.pop(chunk_id, None)
            if loc is None:
                continue
            self._volumes[loc.vol].live -= loc.record_size
            records.append(vf.tombstone_record(chunk_id, loc.wtime_us, loc.vol))
            named.append(loc.vol)
        if not records:
            return
        try:
            host, _, _ = await self._append(b"".join(records))
        except StoreFull:
            # Deleting must work on a full disk. Without its tombstone a chunk may come back after a
            # restart, and the metadata GC (mark and sweep over chunk_ids()) deletes it again.
            log.warning("disk full: %d tombstones not written", len(records))
            return
        self._add_tombstones(host, named)

    def chunk_ids(self) -> list[tuple[bytes, float]]:
        return [(chunk_id, loc.wtime_us / 1e6) for chunk_id, loc in self._index.items()]

    async def compact(self, garbage_ratio: float = 0.5) -> int:
        from pails.data.compactor import compact

        self._check_open()
        async with self._compact_lock:
            return await compact(self, garbage_ratio)

    def stats(self) -> StoreStats:
        """live_bytes: live records (headers, crc tables, data) and needed tombstones; garbage_bytes:
        what compaction would reclaim; disk_bytes: the volume files (live + garbage + file headers)."""
        vols = self._volumes.values()
        return StoreStats(
            chunks=len(self._index),
            live_bytes=sum(v.live + v.tomb_live for v in vols),
            garbage_bytes=sum(v.garbage for v in vols),
            volumes=len(self._volumes),
            disk_bytes=sum(v.size for v in vols),
        )


def _lock_dir(directory: Path) -> int:
    """Take volumes/LOCK exclusively (flock): two processes appending to the same volumes would
    corrupt them, e.g. two `pails server --workers N` sharing a port with SO_REUSEPORT."""
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"{directory} is in use by another Pails process") from None
    return fd


HIGHEST_VOLUME = "highest-volume"
"""The highest volume id ever created (volume ids are part of chunk ids: never reused)."""


def read_highest_volume(directory: Path) -> int:
    try:
        return int((directory / HIGHEST_VOLUME).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _create_volume(directory: Path, vol_id: int) -> int:
    """(thread) Record vol_id as the highest id (durably) and create the volume file."""
    with _HIGHEST_LOCK:
        _raise_highest(directory, vol_id)
    return vf.create_volume_file(directory, vol_id)  # fsyncs the directory (both entries)


_HIGHEST_LOCK = threading.Lock()


def _raise_highest(directory: Path, vol_id: int) -> None:
    if read_highest_volume(directory) < vol_id:
        tmp = directory / f"{HIGHEST_VOLUME}.{vol_id}.tmp"  # volumes may be created concurrently
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            vf.pwrite_all(fd, str(vol_id).encode(), 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, directory / HIGHEST_VOLUME)


def append_moves(directory: Path, moves: list[tuple[bytes, int, int]]) -> None:
    """(thread) Durably append `chunk id -> (volume, offset)` entries to the moves log."""
    if not moves:
        return
    fd = os.open(directory / MOVES_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size % _MOVE.size:  # a torn entry from a crash: cut it so that later entries parse
            os.ftruncate(fd, size - size % _MOVE.size)
        os.write(fd, b"".join(encode_move(c, v, o) for c, v, o in moves))
        os.fsync(fd)
    finally:
        os.close(fd)
    vf.fsync_dir(directory)


def _unpin_after(fut: asyncio.Future[bytes], vol: Volume) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: an abandoned read-ahead is not an error
    vol.unpin()


_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


def _block_start(loc: Loc, k: int) -> int:
    return loc.data_off + k * CHECKSUM_BLOCK


def _block_end(loc: Loc, k: int) -> int:
    return loc.data_off + min(loc.length, (k + 1) * CHECKSUM_BLOCK)


def _in_page_cache(fd: int, start: int, end: int) -> bool:
    """Whether the first and last byte of [start, end) are cached (preadv2 RWF_NOWAIT probes)."""
    if _RWF_NOWAIT is None or end - start > 4 * CHECKSUM_BLOCK:
        return False
    probe = bytearray(1)
    try:
        for pos in (start, max(start, end - 1)):
            if os.preadv(fd, [probe], pos, _RWF_NOWAIT) != 1:
                return False
    except OSError:  # EAGAIN: not cached; EOPNOTSUPP: the file system cannot tell
        return False
    return True


def _read_first_if_cached(
    fd: int, loc: Loc, first: int, last: int, chunk_id: bytes
) -> tuple[tuple[int, ...], bytes] | None:
    """The CRC table and a small first block in one preadv2(RWF_NOWAIT) when the page cache holds
    them all (the usual small GET: one system call instead of two probes and a read); else None."""
    if _RWF_NOWAIT is None or first != 0:
        return None
    blen = min(CHECKSUM_BLOCK, loc.length)
    want = 4 * loc.slots + blen
    if blen > INLINE_READ_MAX:
        return None
    buf = bytearray(want)
    try:
        if os.preadv(fd, [buf], loc.table_off, _RWF_NOWAIT) != want:
            return None
    except OSError:  # EAGAIN: not all cached; EOPNOTSUPP: the file system cannot tell
        return None
    n = last - first + 1
    crcs = struct.unpack_from(f"<{n}I", buf)
    block = bytes(memoryview(buf)[4 * loc.slots :])
    if vf.crc32c(block) != crcs[0]:
        raise ChunkCorrupt(f"chunk {chunk_id.hex()}: block {first} fails its CRC32C")
    return crcs, block


def _read_first(fd: int, loc: Loc, first: int, last: int, chunk_id: bytes) -> tuple[tuple[int, ...], bytes]:
    """(any thread) The CRCs of blocks first..last and block `first`, verified."""
    n = last - first + 1
    blen = min(CHECKSUM_BLOCK, loc.length - first * CHECKSUM_BLOCK)
    if first == 0 and blen <= INLINE_READ_MAX:  # table and block are contiguous: one pread
        raw = vf.pread_exact(fd, 4 * loc.slots + blen, loc.table_off)
        table, block = raw[: 4 * n], raw[4 * loc.slots :]
    else:
        table = vf.pread_exact(fd, 4 * n, loc.table_off + 4 * first)
        block = vf.pread_exact(fd, blen, loc.data_off + first * CHECKSUM_BLOCK)
    if len(table) != 4 * n or len(block) != blen:
        raise ChunkCorrupt(f"chunk {chunk_id.hex()}: record cut short")
    crcs = struct.unpack(f"<{n}I", table)
    if vf.crc32c(block) != crcs[0]:
        raise ChunkCorrupt(f"chunk {chunk_id.hex()}: block {first} fails its CRC32C")
    return crcs, block


def _block_crcs(fd: int, loc: Loc, chunk_id: bytes) -> tuple[int, ...]:
    n = vf.nblocks_for(loc.length)
    table = vf.pread_exact(fd, 4 * n, loc.table_off)
    if len(table) != 4 * n:
        raise ChunkCorrupt(f"chunk {chunk_id.hex()}: record cut short")
    return struct.unpack(f"<{n}I", table)


def _whole_crc(fd: int, loc: Loc, chunk_id: bytes) -> int:
    """(thread) The CRC32C of a whole chunk, combined from its block CRCs."""
    crcs = _block_crcs(fd, loc, chunk_id)
    if not crcs:
        return 0
    crc = crcs[0]
    for k in range(1, len(crcs)):
        crc = crc_combine(crc, crcs[k], min(CHECKSUM_BLOCK, loc.length - k * CHECKSUM_BLOCK), "CRC32C")
    return crc


def _verify_loc(fd: int, loc: Loc) -> bool:
    """(thread) True if every block of the record matches its CRC32C."""
    try:
        crcs = _block_crcs(fd, loc, b"")
        for k, want in enumerate(crcs):
            _read_block(fd, loc, k, want, b"")
    except ChunkCorrupt:
        return False
    return True


def _read_block(fd: int, loc: Loc, k: int, want: int, chunk_id: bytes) -> bytes:
    """(any thread) Block k of a chunk, verified against its CRC32C."""
    blen = min(CHECKSUM_BLOCK, loc.length - k * CHECKSUM_BLOCK)
    block = vf.pread_exact(fd, blen, loc.data_off + k * CHECKSUM_BLOCK)
    if len(block) != blen:
        raise ChunkCorrupt(f"chunk {chunk_id.hex()}: record cut short")
    if vf.crc32c(block) != want:
        raise ChunkCorrupt(f"chunk {chunk_id.hex()}: block {k} fails its CRC32C")
    return block


if TYPE_CHECKING:

    def _conforms(store: LocalChunkStore) -> ChunkStore:  # mypy checks the protocol here
        return store
