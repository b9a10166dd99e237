"""Rebuilding the chunk index from the volume files on open, and compacting volumes.

Compaction of a volume X copies X's live records (and the tombstones still needed) into a leased
writable volume T, fdatasyncs T, appends a `retire X` record to T and fdatasyncs again; only then
does it point the index at T and unlink X. A crash before the retire record is durable leaves X
whole (T's copies are duplicates, which open() ignores); a crash after it makes open() delete X.
Readers that started on X keep reading it: they hold its fd (Volume.pin) and unlink is safe on POSIX.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pails.data import volume as vf
from pails.data.engine import StoreFull
from pails.data.volume import LoadedVolume, Loc, Record, Volume, loc_of

if TYPE_CHECKING:
    from pails.data.local import LocalChunkStore

log = logging.getLogger(__name__)

COPY_PIECE = 4 * 1024 * 1024


@dataclass(slots=True)
class StoreState:
    volumes: list[LoadedVolume]
    index: dict[bytes, Loc]
    tomb_refs: dict[int, dict[int, int]] = field(default_factory=dict)
    next_id: int = 1


def load_store(directory: Path) -> StoreState:
    """(thread) Load and repair every volume, finish interrupted compactions, rebuild the index."""
    for tmp in [*directory.glob("*.idx.tmp"), *directory.glob("highest-volume.*.tmp")]:
        tmp.unlink(missing_ok=True)
    ids = sorted(vf.iter_volume_ids(directory))
    from pails.data.local import read_highest_volume

    highest = max(max(ids, default=0), read_highest_volume(directory))
    for idx in directory.glob("*.idx"):
        if idx.stem.isdigit():
            highest = max(highest, int(idx.stem))
            if int(idx.stem) not in ids:
                idx.unlink(missing_ok=True)  # the sidecar of a volume compacted away
    loaded = {vol_id: vf.load_volume(directory, vol_id) for vol_id in ids}

    retired = {r.aux for lv in loaded.values() for r in lv.records if r.kind == vf.KIND_RETIRE}
    for vol_id in sorted(retired & loaded.keys()):
        log.info("volume %d was compacted away before a restart: deleting it", vol_id)
        vf.idx_path(directory, vol_id).unlink(missing_ok=True)
        vf.volume_path(directory, vol_id).unlink()
        del loaded[vol_id]
    if retired:
        vf.fsync_dir(directory)

    tombs: set[tuple[bytes, int]] = set()
    for lv in loaded.values():
        for r in lv.records:
            if r.kind != vf.KIND_PUT:
                highest = max(highest, r.aux)
            if r.kind == vf.KIND_TOMBSTONE:
                tombs.add((r.chunk_id, r.wtime_us))
    state = StoreState([loaded[i] for i in sorted(loaded)], {}, {}, highest + 1)
    for lv in state.volumes:
        for r in lv.records:
            if r.kind == vf.KIND_PUT:
                # A tombstone kills every copy of (chunk id, write time); a duplicate left by an
                # interrupted compaction (same write time) is garbage. With given ids (a storage
                # node) a repair writes the id again: the newer write time wins.
                if (r.chunk_id, r.wtime_us) in tombs:
                    continue
                cur = state.index.get(r.chunk_id)
                if cur is None or r.wtime_us > cur.wtime_us:
                    state.index[r.chunk_id] = loc_of(lv.vol_id, r)
            elif r.aux in loaded:  # still needed while the volume it names exists
                hosts = state.tomb_refs.setdefault(r.aux, {})
                hosts[lv.vol_id] = hosts.get(lv.vol_id, 0) + r.size
    return state


async def compact(store: LocalChunkStore, ratio: float) -> int:
    """Rewrite every volume (not being written) whose garbage / size exceeds ratio; bytes reclaimed."""
    async with store._active_lock:
        candidates = [
            v
            for v in store._volumes.values()
            if (not v.leased or v is store._active) and v.garbage > 0 and v.garbage_ratio() > ratio
        ]
        for vol in candidates:
            if vol is store._active:
                store._active = None
                vol.leased = False
            vol.state = vf.SEALED
    reclaimed = 0
    for vol in candidates:
        reclaimed += await _compact_one(store, vol)
    return reclaimed


async def _compact_one(store: LocalChunkStore, old: Volume) -> int:
    if old.seal_task is not None:
        await asyncio.wait([old.seal_task])
    old.pin()
    try:
        lv = await asyncio.to_thread(vf.load_volume, store.dir, old.id, repair=False)
        keep: list[Record] = []
        live = 0
        for r in lv.records:
            if r.kind == vf.KIND_PUT:
                if store._index.get(r.chunk_id) == loc_of(old.id, r):
                    keep.append(r)
                    live += r.size
            elif r.aux != old.id and r.aux in store._volumes:
                keep.append(r)
        if live != old.live:
            log.error("volume %d: scan found %d live bytes, index %d; not compacted", old.id, live, old.live)
            return 0
        if not keep:  # nothing to copy: no retire record needed, the directory fsync suffices
            _retire(store, old)
            await asyncio.to_thread(vf.fsync_dir, store.dir)
            return lv.size
        copied = sum(r.size for r in keep)
        target = await store._lease(copied + vf.HEADER_SIZE)
        base = target.size
        retire = vf.retire_record(old.id, vf.now_us())
        try:
            offsets = await asyncio.to_thread(
                _copy_records,
                old.fd,
                target.fd,
                keep,
                base,
                retire,
                None if store.given_ids else store.dir,  # given ids locate nothing: no moves log
                target.id,
            )
        except OSError as exc:
            await asyncio.to_thread(_truncate_quietly, target.fd, base)
            store._release(target)
            if vf.is_disk_full(exc):
                raise StoreFull(str(exc)) from exc
            raise
        target.size = base + copied + len(retire)
        target.write_gen += 1
        target.synced_gen = target.write_gen
        lost: list[bytes] = []
        for r, off in zip(keep, offsets, strict=True):
            if r.kind != vf.KIND_PUT:
                store._add_tombstones(target, [r.aux])
                continue
            new = Loc(target.id, off, off + (r.data_off - r.off), r.length, r.wtime_us)
            if store._index.get(r.chunk_id) == loc_of(old.id, r):
                store._index[r.chunk_id] = new
                target.live += r.size
                old.live -= r.size
            else:  # deleted while we copied: the copy must not come back after a restart
                lost.append(vf.tombstone_record(r.chunk_id, r.wtime_us, target.id))
        store._release(target)
        _retire(store, old)
        await asyncio.to_thread(vf.fsync_dir, store.dir)
        if lost:
            try:
                host, _, _ = await store._append(b"".join(lost))
                store._add_tombstones(host, [target.id] * len(lost))
            except StoreFull:
                log.warning("disk full: %d tombstones not written", len(lost))
        return lv.size - copied - len(retire)
    finally:
        old.unpin()


def _retire(store: LocalChunkStore, vol: Volume) -> None:
    del store._volumes[vol.id]
    vol.state = vf.RETIRED
    for hosts in store._tomb_refs.values():
        hosts.pop(vol.id, None)
    for host_id, nbytes in store._tomb_refs.pop(vol.id, {}).items():
        host = store._volumes.get(host_id)
        if host is not None:
            host.tomb_live -= nbytes
    vf.idx_path(store.dir, vol.id).unlink(missing_ok=True)
    vf.volume_path(store.dir, vol.id).unlink(missing_ok=True)


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        log.exception("cannot truncate a failed compaction copy")


def _copy_records(
    src: int, dst: int, records: list[Record], base: int, retire: bytes, directory: Path | None, dst_id: int
) -> list[int]:
    """(thread) Copy records back to back from `base`, make them durable, log the moves of the put
    records (for other workers reading by the location in the chunk id), then append and sync the
    retire record. Returns the records' new offsets."""
    from pails.data.local import append_moves

    offsets: list[int] = []
    runs: list[list[int]] = []  # [src offset, dst offset, size], adjacent records merged
    pos = base
    for r in records:
        offsets.append(pos)
        if runs and runs[-1][0] + runs[-1][2] == r.off:
            runs[-1][2] += r.size
        else:
            runs.append([r.off, pos, r.size])
        pos += r.size
    for s, d, n in runs:
        done = 0
        while done < n:
            piece = vf.pread_exact(src, min(COPY_PIECE, n - done), s + done)
            if not piece:
                raise OSError(f"volume shorter than its records at {s + done}")
            vf.pwrite_all(dst, piece, d + done)
            done += len(piece)
    os.fdatasync(dst)
    if directory is not None:
        append_moves(
            directory,
            [(r.chunk_id, dst_id, off) for r, off in zip(records, offsets, strict=True) if r.kind == vf.KIND_PUT],
        )
    vf.pwrite_all(dst, retire, pos)
    os.fdatasync(dst)
    return offsets
