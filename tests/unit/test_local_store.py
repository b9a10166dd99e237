"""LocalChunkStore: round trips, range reads, packing, corruption, crash recovery, deletes, compaction,
group fsync, disk full and bounded memory."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pails.data import compactor, local
from pails.data import volume as vf
from pails.data.engine import ChunkCorrupt, ChunkMissing, StoreFull
from pails.data.local import LocalChunkStore
from pails.limits import CHECKSUM_BLOCK, CHUNK_SIZE, READ_PIECE, SMALL_CHUNK_MAX
from pails.meta.models import ChunkRef

B = CHECKSUM_BLOCK


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalChunkStore]:
    s = LocalChunkStore(tmp_path)
    await s.open()
    yield s
    await s.close()


async def put(
    s: LocalChunkStore, data: bytes, *, hint: int | str | None = "exact", piece: int = 0
) -> ChunkRef:
    sink = await s.new_chunk(len(data) if hint == "exact" else hint)  # type: ignore[arg-type]
    step = piece or max(1, len(data))
    for i in range(0, len(data), step):
        await sink.write(data[i : i + step])
    return await sink.finish()


async def get(s: LocalChunkStore, chunk_id: bytes, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([p async for p in s.read(chunk_id, offset, length)])


async def reopen(s: LocalChunkStore, **kw: int) -> LocalChunkStore:
    await s.close()
    s2 = LocalChunkStore(s.root, **kw)
    await s2.open()
    return s2


async def crash_and_reopen(s: LocalChunkStore, **kw: int) -> LocalChunkStore:
    """Drop the store without its clean shutdown (no sidecars, nothing flushed), then open again."""
    if s._bg:
        await asyncio.gather(*s._bg)
    s._syncer.stop()
    for vol in s._volumes.values():
        vol.close()
    os.close(s._lock_fd)  # the process died
    s._opened = False
    s2 = LocalChunkStore(s.root, **kw)
    await s2.open()
    return s2


def vol_files(s: LocalChunkStore) -> list[Path]:
    return sorted(s.dir.glob("*.vol"))


def check_accounting(s: LocalChunkStore) -> None:
    st = s.stats()
    assert st.live_bytes + st.garbage_bytes + vf.FILE_HEADER.size * st.volumes == st.disk_bytes
    on_disk = sum(p.stat().st_size for p in vol_files(s))
    assert on_disk == st.disk_bytes


@pytest.fixture(params=["cached", "cold"])
def page_cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with blocks read on the event loop (page cache) and in threads (disk)."""
    if request.param == "cold":
        monkeypatch.setattr(local, "_in_page_cache", lambda *_: False)
    return str(request.param)


SIZES = [0, 1, 100, B - 1, B, B + 1, 2 * B, 3 * B + 7, CHUNK_SIZE - 1, CHUNK_SIZE]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("hint", ["exact", None])
async def test_round_trip(store: LocalChunkStore, size: int, hint: str | None) -> None:
    data = os.urandom(size)
    ref = await put(store, data, hint=hint, piece=300_001)
    assert ref.size == size and len(ref.chunk_id) == 16
    assert await get(store, ref.chunk_id) == data
    pieces = [p async for p in store.read(ref.chunk_id)]
    assert all(0 < len(p) <= READ_PIECE for p in pieces)
    check_accounting(store)
    s2 = await reopen(store)
    assert await get(s2, ref.chunk_id) == data
    await s2.close()


async def test_many_sizes_survive_a_reopen(tmp_path: Path) -> None:
    s = LocalChunkStore(tmp_path)
    await s.open()
    rng = random.Random(1)
    chunks = {}
    for _ in range(60):
        size = rng.choice([rng.randrange(0, 5000), rng.randrange(0, 3 * B)])
        data = rng.randbytes(size)
        ref = await put(s, data, hint=rng.choice(["exact", None]), piece=rng.choice([1000, 65536, B]))
        chunks[ref.chunk_id] = data
    s = await reopen(s)
    for chunk_id, data in chunks.items():
        assert await get(s, chunk_id) == data
    assert {c for c, _ in s.chunk_ids()} == set(chunks)
    await s.close()


async def test_chunk_size_limit(store: LocalChunkStore) -> None:
    for hint in (None, 10):
        sink = await store.new_chunk(hint)
        await sink.write(bytes(CHUNK_SIZE))
        with pytest.raises(ValueError):
            await sink.write(b"x")
        await sink.abort()


BOUNDARY_RANGES = [
    (0, 1),
    (0, B),
    (B - 1, 2),
    (B, B),
    (B, 1),
    (B - 1, B + 2),
    (2 * B, 100),
    (3 * B - 5, 5),
    (5, None),
    (3 * B, None),
    (3 * B + 10, None),
    (0, 10 * B),
    (3 * B + 100, 0),
]


@pytest.mark.parametrize(("offset", "length"), BOUNDARY_RANGES)
async def test_range_reads_at_block_boundaries(
    store: LocalChunkStore, offset: int, length: int | None, page_cache: str
) -> None:
    data = os.urandom(3 * B + 100)
    for hint in (None, "exact"):
        ref = await put(store, data, hint=hint)
        end = None if length is None else offset + length
        assert await get(store, ref.chunk_id, offset, length) == data[offset:end]


async def test_small_range_reads(store: LocalChunkStore) -> None:
    data = os.urandom(1000)
    ref = await put(store, data)
    for offset, length in [(0, 0), (0, 1), (999, 1), (999, 5), (1000, None), (10, 20)]:
        end = None if length is None else offset + length
        assert await get(store, ref.chunk_id, offset, length) == data[offset:end]
    with pytest.raises(ValueError):
        await get(store, ref.chunk_id, 1001)
    with pytest.raises(ValueError):
        await get(store, ref.chunk_id, -1)


async def test_read_now_serves_a_cached_small_chunk_in_one_call(store: LocalChunkStore) -> None:
    data = os.urandom(5000)
    ref = await put(store, data)
    await store.sync([ref])  # page-cache residency is what read_now needs, not durability
    for start, end in [(0, 5000), (0, 1), (4999, 5000), (10, 20)]:
        got = store.read_now(ref.chunk_id, start, end)
        assert got is None or got == data[start:end]  # None where the file system cannot tell
    assert store.read_now(ref.chunk_id, 0, 5001) is None  # past the end: read() raises
    assert store.read_now(ref.chunk_id, 7, 7) is None
    assert store.read_now(os.urandom(16), 0, 1) is None  # unknown here: read() decides


async def test_missing_chunk(store: LocalChunkStore) -> None:
    with pytest.raises(ChunkMissing):
        await get(store, os.urandom(16))
    with pytest.raises(ChunkMissing):
        await store.sync([ChunkRef(os.urandom(16), 1)])
    await store.delete([os.urandom(16)])  # ignored


async def test_small_chunks_are_packed_into_one_volume(store: LocalChunkStore) -> None:
    chunks = {}
    for i in range(1000):
        data = os.urandom(i % 200)
        chunks[(await put(store, data)).chunk_id] = data
    assert len(vol_files(store)) == 1
    payload = sum(len(d) for d in chunks.values())
    overhead = 1000 * (vf.HEADER_SIZE + 4)
    assert vol_files(store)[0].stat().st_size <= vf.FILE_HEADER.size + payload + overhead
    assert store.stats().chunks == 1000
    for chunk_id, data in random.sample(sorted(chunks.items()), 50):
        assert await get(store, chunk_id) == data
    check_accounting(store)


async def test_concurrent_streams_lease_separate_volumes(store: LocalChunkStore) -> None:
    datas = [os.urandom(2 * B + i) for i in range(6)]
    sinks = [await store.new_chunk(None) for _ in datas]
    assert len({s._vol.id for s in sinks}) == len(sinks)  # type: ignore[attr-defined]
    for offset in range(0, 2 * B + 6, 100_000):  # interleave the writers
        for sink, data in zip(sinks, datas, strict=True):
            if offset < len(data):
                await sink.write(data[offset : offset + 100_000])
    refs = [await sink.finish() for sink in sinks]
    for ref, data in zip(refs, datas, strict=True):
        assert await get(store, ref.chunk_id) == data
    # Volumes return to the pool: a later stream reuses one instead of creating a volume.
    before = len(vol_files(store))
    await put(store, os.urandom(B), hint=None)
    assert len(vol_files(store)) == before


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


async def test_corrupt_byte_fails_only_the_block_holding_it(store: LocalChunkStore, page_cache: str) -> None:
    data = os.urandom(4 * B)
    ref = await put(store, data, hint=None)
    loc = store._index[ref.chunk_id]
    flip_byte(vf.volume_path(store.dir, loc.vol), loc.data_off + 2 * B + 12345)
    assert await get(store, ref.chunk_id, 0, 2 * B) == data[: 2 * B]
    assert await get(store, ref.chunk_id, 3 * B, B) == data[3 * B :]
    with pytest.raises(ChunkCorrupt):
        await get(store, ref.chunk_id, 2 * B + 12345, 1)
    with pytest.raises(ChunkCorrupt):
        await get(store, ref.chunk_id, B + 5, B)
    got = []
    with pytest.raises(ChunkCorrupt):
        async for piece in store.read(ref.chunk_id):
            got.append(piece)
    assert b"".join(got) == data[: 2 * B]  # blocks before the bad one were verified and sent


async def test_corrupt_small_chunk_and_crc_table(store: LocalChunkStore) -> None:
    a, b = await put(store, b"a" * 500), await put(store, b"b" * 500)
    loc = store._index[a.chunk_id]
    flip_byte(vf.volume_path(store.dir, loc.vol), loc.data_off + 499)
    with pytest.raises(ChunkCorrupt):
        await get(store, a.chunk_id)
    assert await get(store, b.chunk_id) == b"b" * 500
    loc_b = store._index[b.chunk_id]
    flip_byte(vf.volume_path(store.dir, loc_b.vol), loc_b.table_off)
    with pytest.raises(ChunkCorrupt):
        await get(store, b.chunk_id)


async def test_truncated_volume_keeps_earlier_chunks(tmp_path: Path) -> None:
    s = LocalChunkStore(tmp_path)
    await s.open()
    datas = [os.urandom(3000) for _ in range(5)]
    refs = [await put(s, d) for d in datas]
    last = s._index[refs[-1].chunk_id]
    path = vf.volume_path(s.dir, last.vol)
    for cut in (last.off + 10, last.off + vf.HEADER_SIZE + 100):
        s = await crash_and_reopen(s)
        os.truncate(path, cut)
        s = await crash_and_reopen(s)
        for ref, data in zip(refs[:-1], datas[:-1], strict=True):
            assert await get(s, ref.chunk_id) == data
        with pytest.raises(ChunkMissing):
            await get(s, refs[-1].chunk_id)
        assert path.stat().st_size == last.off
        check_accounting(s)
    # Writing continues after the repaired tail.
    ref = await put(s, b"after")
    s = await reopen(s)
    assert await get(s, ref.chunk_id) == b"after"
    await s.close()


async def test_crash_mid_stream_leaves_nothing(tmp_path: Path) -> None:
    s = LocalChunkStore(tmp_path)
    await s.open()
    done = await put(s, os.urandom(2 * B), hint=None)
    sink = await s.new_chunk(None)
    await sink.write(os.urandom(3 * B + 10))  # blocks on disk, header not written
    s = await crash_and_reopen(s)
    assert [c for c, _ in s.chunk_ids()] == [done.chunk_id]
    assert await get(s, done.chunk_id) is not None
    loc = s._index[done.chunk_id]
    assert vf.volume_path(s.dir, loc.vol).stat().st_size == loc.off + loc.record_size
    await s.close()


async def test_torn_data_of_last_record_is_dropped_on_open(tmp_path: Path) -> None:
    s = LocalChunkStore(tmp_path)
    await s.open()
    keep = await put(s, os.urandom(2 * B), hint=None)
    torn = await put(s, os.urandom(2 * B), hint=None)
    loc = s._index[torn.chunk_id]
    s = await crash_and_reopen(s)
    with open(vf.volume_path(s.dir, loc.vol), "r+b") as f:  # header made it, the data did not
        f.seek(loc.data_off + B)
        f.write(bytes(B))
    s = await crash_and_reopen(s)
    assert [c for c, _ in s.chunk_ids()] == [keep.chunk_id]
    await s.close()


async def test_abort_leaves_nothing(store: LocalChunkStore) -> None:
    await put(store, b"x" * 10)
    before = [p.stat().st_size for p in vol_files(store)]
    for hint in (None, 100):
        sink = await store.new_chunk(hint)
        await sink.write(os.urandom(2 * B + 3 if hint is None else 50))
        await sink.abort()
        await sink.abort()
    assert [p.stat().st_size for p in vol_files(store)][: len(before)] == before
    assert sum(p.stat().st_size for p in vol_files(store)[len(before) :]) == vf.FILE_HEADER.size * (
        len(vol_files(store)) - len(before)
    )
    assert store.stats().chunks == 1
    with pytest.raises(RuntimeError):
        await sink.write(b"late")


@pytest.mark.parametrize("clean", [True, False])
async def test_deleted_chunks_stay_deleted_after_reopen(tmp_path: Path, clean: bool) -> None:
    s = LocalChunkStore(tmp_path)
    await s.open()
    refs = [await put(s, os.urandom(100 + i)) for i in range(20)] + [
        await put(s, os.urandom(B + 1), hint=None)
    ]
    await s.sync(refs)
    gone = [r.chunk_id for r in refs[::2]]
    await s.delete(gone)
    await s.delete(gone)  # twice is harmless
    for chunk_id in gone:
        with pytest.raises(ChunkMissing):
            await get(s, chunk_id)
    assert s.stats().garbage_bytes > 0
    await s.sync(refs[1::2])  # tombstones become durable with the next sync of their volume
    s = await (reopen(s) if clean else crash_and_reopen(s))
    assert {c for c, _ in s.chunk_ids()} == {r.chunk_id for r in refs[1::2]}
    check_accounting(s)
    await s.close()


async def test_chunk_ids_report_write_times(store: LocalChunkStore) -> None:
    import time

    t0 = time.time()
    ref = await put(store, b"abc")
    (listed,) = store.chunk_ids()
    assert listed[0] == ref.chunk_id and t0 - 1 <= listed[1] <= time.time() + 1


async def test_compaction_reclaims_space_and_keeps_content(tmp_path: Path) -> None:
    s = LocalChunkStore(tmp_path, volume_max_bytes=4 * B)
    await s.open()
    chunks = {}
    for i in range(300):
        data = os.urandom(20_000 + i)
        chunks[(await put(s, data)).chunk_id] = data
    big = os.urandom(3 * B)
    chunks[(await put(s, big, hint=None)).chunk_id] = big
    assert len(vol_files(s)) > 1
    await asyncio.gather(*s._bg)
    assert sorted(s.dir.glob("*.idx"))  # sealed volumes got their sidecars
    doomed = [c for i, c in enumerate(chunks) if i % 4]
    await s.delete(doomed)
    for c in doomed:
        del chunks[c]
    before = s.stats()
    disk_before = sum(p.stat().st_size for p in vol_files(s))
    reclaimed = await s.compact(0.5)
    after = s.stats()
    assert reclaimed > 0.6 * before.garbage_bytes
    assert sum(p.stat().st_size for p in vol_files(s)) <= disk_before - reclaimed + vf.HEADER_SIZE * 100
    assert after.garbage_bytes < before.garbage_bytes / 4
    assert after.chunks == len(chunks)
    check_accounting(s)
    for chunk_id, data in chunks.items():
        assert await get(s, chunk_id) == data
    assert await s.compact(0.5) < before.garbage_bytes / 10  # nothing much left to do
    s = await reopen(s, volume_max_bytes=4 * B)
    assert {c for c, _ in s.chunk_ids()} == set(chunks)
    for chunk_id, data in chunks.items():
        assert await get(s, chunk_id) == data
    check_accounting(s)
    s = await crash_and_reopen(s, volume_max_bytes=4 * B)
    assert {c for c, _ in s.chunk_ids()} == set(chunks)
    await s.close()


async def test_compaction_under_a_read_in_progress(store: LocalChunkStore, page_cache: str) -> None:
    big = os.urandom(CHUNK_SIZE)
    ref = await put(store, big, hint=None)
    small = [await put(store, os.urandom(100_000), hint=None) for _ in range(20)]
    old_vol = store._index[ref.chunk_id].vol
    assert {store._index[r.chunk_id].vol for r in small} == {old_vol}  # the volume went back to the pool
    reader = store.read(ref.chunk_id)
    got = [await reader.__anext__()]
    await store.delete([r.chunk_id for r in small])
    assert await store.compact(0.01) > 0
    assert store._index[ref.chunk_id].vol != old_vol
    assert not vf.volume_path(store.dir, old_vol).exists()
    got.extend([p async for p in reader])  # still reading the unlinked file
    assert b"".join(got) == big
    assert await get(store, ref.chunk_id) == big  # and new reads use the new copy


async def test_delete_during_compaction_is_not_resurrected(tmp_path: Path) -> None:
    s = LocalChunkStore(tmp_path)
    await s.open()
    refs = [await put(s, os.urandom(50_000)) for _ in range(40)]
    await s.delete([r.chunk_id for r in refs[:30]])
    victim = refs[35].chunk_id
    real_copy = compactor._copy_records

    def copy_and_delete(*args: object) -> list[int]:
        offsets = real_copy(*args)  # type: ignore[arg-type]
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(s.delete([victim])))
        return offsets

    loop = asyncio.get_running_loop()
    compactor._copy_records = copy_and_delete  # type: ignore[assignment]
    try:
        await s.compact(0.5)
    finally:
        compactor._copy_records = real_copy
    await asyncio.sleep(0.05)
    assert victim not in dict(s.chunk_ids())
    s = await reopen(s)
    assert victim not in dict(s.chunk_ids())
    assert {c for c, _ in s.chunk_ids()} == {r.chunk_id for r in refs[30:]} - {victim}
    await s.close()


async def test_crash_between_retire_record_and_unlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = LocalChunkStore(tmp_path)
    await s.open()
    refs = [await put(s, os.urandom(10_000)) for _ in range(20)]
    await s.delete([r.chunk_id for r in refs[:15]])
    old_vol = s._index[refs[-1].chunk_id].vol

    def crash(*_: object) -> None:
        raise KeyboardInterrupt  # the process dies after the retire record is durable

    monkeypatch.setattr(compactor, "_retire", crash)
    with pytest.raises(KeyboardInterrupt):
        await s.compact(0.5)
    monkeypatch.undo()
    assert vf.volume_path(s.dir, old_vol).exists()
    s = await crash_and_reopen(s)
    assert not vf.volume_path(s.dir, old_vol).exists()  # open() finished the compaction
    assert {c for c, _ in s.chunk_ids()} == {r.chunk_id for r in refs[15:]}
    await s.close()


async def test_crash_before_retire_record_keeps_the_old_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = LocalChunkStore(tmp_path)
    await s.open()
    refs = [await put(s, os.urandom(10_000)) for _ in range(20)]
    await s.delete([r.chunk_id for r in refs[:15]])
    await s.sync(refs[15:])
    real_copy = compactor._copy_records

    def copy_without_retire(
        src: int, dst: int, records: list[vf.Record], base: int, retire: bytes, *more: object
    ) -> list[int]:
        real_copy(src, dst, records, base, b"", *more)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(compactor, "_copy_records", copy_without_retire)
    with pytest.raises(KeyboardInterrupt):
        await s.compact(0.5)
    monkeypatch.undo()
    s = await crash_and_reopen(s)  # both copies exist: one is live, the other garbage
    assert {c for c, _ in s.chunk_ids()} == {r.chunk_id for r in refs[15:]}
    check_accounting(s)
    await s.delete([refs[16].chunk_id])
    await s.sync([refs[17]])
    s = await crash_and_reopen(s)  # the tombstone kills the duplicate too
    assert {c for c, _ in s.chunk_ids()} == {r.chunk_id for r in refs[15:]} - {refs[16].chunk_id}
    assert await s.compact(0.1) > 0
    s = await reopen(s)
    assert {c for c, _ in s.chunk_ids()} == {r.chunk_id for r in refs[15:]} - {refs[16].chunk_id}
    await s.close()


async def test_tombstones_of_compacted_volumes_are_dropped(tmp_path: Path) -> None:
    s = LocalChunkStore(tmp_path, volume_max_bytes=2 * B)
    await s.open()
    refs = [await put(s, os.urandom(100_000)) for _ in range(60)]
    await s.delete([r.chunk_id for r in refs])
    for _ in range(3):
        await s.compact(0.5)
    st = s.stats()
    assert st.chunks == 0 and st.live_bytes == 0
    assert st.disk_bytes < 3 * vf.FILE_HEADER.size + 60 * vf.HEADER_SIZE
    await s.close()


async def test_group_fsync_shares_fdatasyncs(store: LocalChunkStore, monkeypatch: pytest.MonkeyPatch) -> None:
    await put(store, b"first")  # the volume exists (its creation fsyncs are not group syncs)
    calls = 0
    real = os.fdatasync

    def slow_fdatasync(fd: int) -> None:
        nonlocal calls
        calls += 1
        real(fd)
        import time

        time.sleep(0.002)  # a disk flush takes time; waiters pile up meanwhile

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
    n = 200

    async def writer(i: int) -> None:
        ref = await put(store, os.urandom(100 + i))
        await asyncio.sleep(random.random() * 0.01)
        await store.sync([ref])

    await asyncio.gather(*(writer(i) for i in range(n)))
    assert 1 <= store.fsync_count == calls < n / 5
    # Nothing written since: a sync costs no fdatasync at all.
    refs = [ChunkRef(c, 0) for c, _ in store.chunk_ids()[:10]]
    await asyncio.gather(*(store.sync(refs) for _ in range(10)))
    assert store.fsync_count == calls


async def test_sync_covers_streamed_chunks_in_several_volumes(store: LocalChunkStore) -> None:
    refs = await asyncio.gather(*(put(store, os.urandom(B + i), hint=None) for i in range(3)))
    vols = {store._index[r.chunk_id].vol for r in refs}
    assert len(vols) == 3
    await store.sync(refs)
    assert store.fsync_count == 3
    await store.sync(refs)
    assert store.fsync_count == 3


async def test_streaming_memory_stays_bounded(store: LocalChunkStore, page_cache: str) -> None:
    piece = os.urandom(64 * 1024)
    sink = await store.new_chunk(None)
    tracemalloc.start()
    try:
        for _ in range(CHUNK_SIZE // len(piece)):
            await sink.write(piece)
        ref = await sink.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ref.size == CHUNK_SIZE
    # A block being filled, one in flight to the writer thread, and allocator slack: never the
    # whole chunk (8 blocks).
    assert peak < 4 * B, peak
    tracemalloc.start()
    try:
        n = 0
        async for p in store.read(ref.chunk_id):
            n += len(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == CHUNK_SIZE and peak < 4 * B, peak


def _enospc(*_: object) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


async def test_disk_full_on_small_append(store: LocalChunkStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = await put(store, b"before")
    path = vol_files(store)[0]
    size = path.stat().st_size
    real = os.pwrite

    def half_then_full(fd: int, data: bytes, off: int) -> int:
        if len(data) > 1000:
            real(fd, memoryview(data)[:500], off)  # a partial write, then the disk is full
            monkeypatch.setattr(os, "pwrite", _enospc)
            return 500
        return real(fd, data, off)

    monkeypatch.setattr(os, "pwrite", half_then_full)
    with pytest.raises(StoreFull):
        await put(store, os.urandom(5000))
    monkeypatch.undo()
    assert path.stat().st_size == size  # no torn record left behind
    assert store.stats().chunks == 1
    ref = await put(store, b"after")
    store2 = await reopen(store)
    assert {c for c, _ in store2.chunk_ids()} == {ok.chunk_id, ref.chunk_id}
    await store2.close()


async def test_disk_full_while_streaming(store: LocalChunkStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = await store.new_chunk(None)
    await sink.write(os.urandom(2 * B))
    vol = sink._vol  # type: ignore[attr-defined]
    monkeypatch.setattr(os, "pwrite", _enospc)
    with pytest.raises(StoreFull):
        await sink.write(os.urandom(B))
    monkeypatch.undo()
    await sink.abort()
    assert os.fstat(vol.fd).st_size == vol.size == vf.FILE_HEADER.size
    assert not vol.leased
    ref = await put(store, os.urandom(B + 1), hint=None)
    assert store._index[ref.chunk_id].vol == vol.id


async def test_disk_full_creating_a_volume(store: LocalChunkStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vf, "fsync_dir", _enospc)
    with pytest.raises(StoreFull):
        await store.new_chunk(None)
    monkeypatch.undo()
    assert vol_files(store) == []


async def test_damaged_sidecar_falls_back_to_a_scan(tmp_path: Path) -> None:
    s = LocalChunkStore(tmp_path)
    await s.open()
    refs = [await put(s, os.urandom(3000)) for _ in range(10)]
    await s.close()
    (idx,) = sorted(s.dir.glob("*.idx"))
    idx.write_bytes(b"garbage")
    s = LocalChunkStore(tmp_path)
    await s.open()
    assert {c for c, _ in s.chunk_ids()} == {r.chunk_id for r in refs}
    await s.close()


async def test_hint_larger_than_small_max_streams(store: LocalChunkStore) -> None:
    sink = await store.new_chunk(SMALL_CHUNK_MAX + 1)
    assert hasattr(sink, "_vol")
    await sink.abort()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_random_operations_match_a_model(tmp_path: Path, seed: int) -> None:
    """Puts, deletes, compactions, clean and unclean restarts against a dict of what must be there."""
    rng = random.Random(seed)
    kw = {"volume_max_bytes": 3 * B}
    s = LocalChunkStore(tmp_path, **kw)
    await s.open()
    model: dict[bytes, bytes] = {}
    for _ in range(150):
        op = rng.random()
        if op < 0.55:
            data = rng.randbytes(rng.choice([rng.randrange(0, 3000), rng.randrange(0, 2 * B)]))
            ref = await put(s, data, hint=rng.choice(["exact", None]), piece=rng.choice([7000, B]))
            model[ref.chunk_id] = data
        elif op < 0.8 and model:
            gone = rng.sample(sorted(model), k=min(len(model), rng.randrange(1, 6)))
            await s.delete(gone)
            for c in gone:
                del model[c]
        elif op < 0.9:
            await s.compact(rng.choice([0.0, 0.3, 0.7]))
        elif op < 0.95:
            s = await reopen(s, **kw)
        else:
            await s.sync([ChunkRef(c, 0) for c in model])  # make the deletes durable before a crash
            s = await crash_and_reopen(s, **kw)
        assert {c for c, _ in s.chunk_ids()} == set(model)
    check_accounting(s)
    for chunk_id, data in model.items():
        assert await get(s, chunk_id) == data
    await s.close()


async def test_concurrent_writes_deletes_reads_and_compaction(tmp_path: Path) -> None:
    kw = {"volume_max_bytes": 2 * B}
    s = LocalChunkStore(tmp_path, **kw)
    await s.open()
    model: dict[bytes, bytes] = {}
    deleted: set[bytes] = set()
    stop = asyncio.Event()

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(40):
            data = rng.randbytes(rng.choice([rng.randrange(0, 2000), rng.randrange(0, B + 100)]))
            ref = await put(s, data, hint=rng.choice(["exact", None]), piece=50_000)
            model[ref.chunk_id] = data
            if rng.random() < 0.3:
                await s.sync([ref])

    async def deleter() -> None:
        rng = random.Random(99)
        while not stop.is_set():
            if model:
                gone = rng.sample(sorted(model), k=min(len(model), 3))
                for c in gone:
                    del model[c]
                    deleted.add(c)
                await s.delete(gone)
            await asyncio.sleep(0.001)

    async def reader() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            if model:
                chunk_id = rng.choice(sorted(model))
                data = model[chunk_id]
                try:
                    assert await get(s, chunk_id) == data
                except ChunkMissing:
                    assert chunk_id in deleted
            await asyncio.sleep(0)

    reclaimed = 0

    async def compactor_loop() -> None:
        nonlocal reclaimed
        while not stop.is_set():
            reclaimed += await s.compact(0.2)
            await asyncio.sleep(0.002)

    background = [asyncio.create_task(f()) for f in (deleter, reader, compactor_loop)]
    await asyncio.gather(*(writer(i) for i in range(4)))
    stop.set()
    await asyncio.gather(*background)
    assert reclaimed > 0
    assert {c for c, _ in s.chunk_ids()} == set(model)
    check_accounting(s)
    s = await reopen(s, **kw)
    assert {c for c, _ in s.chunk_ids()} == set(model)
    for chunk_id, data in model.items():
        assert await get(s, chunk_id) == data
    await s.close()


async def test_abandoned_read_keeps_the_volume_open_until_its_read_ahead_ends(
    store: LocalChunkStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "_in_page_cache", lambda *_: False)
    ref = await put(store, os.urandom(4 * B), hint=None)
    vol = store._volumes[store._index[ref.chunk_id].vol]
    reader = store.read(ref.chunk_id)
    await reader.__anext__()
    assert vol.pins == 1
    await reader.aclose()  # a read-ahead may still be running in a thread
    for _ in range(100):
        if vol.pins == 0:
            break
        await asyncio.sleep(0.01)
    assert vol.pins == 0


def test_page_cache_probe_sees_a_freshly_written_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(B))
    fd = os.open(path, os.O_RDONLY)
    try:
        if getattr(os, "RWF_NOWAIT", None) is None:
            pytest.skip("no preadv2 RWF_NOWAIT here")
        assert local._in_page_cache(fd, 0, B)
    finally:
        os.close(fd)
