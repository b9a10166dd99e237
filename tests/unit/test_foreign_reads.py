"""Workers (decision 0007): a chunk written by worker 0's store is read by worker 1's store over the
same chunks directory, straight from the owner's volume, also after the owner compacted it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pails.data import volume as vf
from pails.data.engine import ChunkCorrupt, ChunkMissing
from pails.data.local import LocalChunkStore, parse_chunk_id, worker_root
from pails.limits import CHECKSUM_BLOCK, SMALL_CHUNK_MAX
from pails.meta.models import ChunkRef


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[LocalChunkStore, LocalChunkStore]]:
    w0 = LocalChunkStore(tmp_path, worker=0, volume_max_bytes=1 << 20)
    w1 = LocalChunkStore(tmp_path, worker=1, volume_max_bytes=1 << 20)
    await w0.open()
    await w1.open()
    yield w0, w1
    await w1.close()
    await w0.close()


async def put(s: LocalChunkStore, data: bytes, hint: int | None) -> ChunkRef:
    sink = await s.new_chunk(hint)
    await sink.write(data)
    ref = await sink.finish()
    await s.sync([ref])
    return ref


async def get(s: LocalChunkStore, chunk_id: bytes, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([p async for p in s.read(chunk_id, offset, length)])


def test_layout(tmp_path: Path) -> None:
    assert worker_root(tmp_path, 0) == tmp_path
    assert worker_root(tmp_path, 3) == tmp_path / "w3"


@pytest.mark.parametrize(
    "size,hint", [(100, 100), (SMALL_CHUNK_MAX, SMALL_CHUNK_MAX), (3 * CHECKSUM_BLOCK + 5, None)]
)
async def test_foreign_read(
    pair: tuple[LocalChunkStore, LocalChunkStore], size: int, hint: int | None
) -> None:
    w0, w1 = pair
    data = os.urandom(size)
    ref = await put(w0, data, hint)
    owner, vol_id, off = parse_chunk_id(ref.chunk_id)
    assert owner == 0 and vol_id >= 1 and off >= vf.FILE_HEADER.size
    assert await get(w1, ref.chunk_id) == data
    assert await get(w1, ref.chunk_id, 7, 50) == data[7:57]
    ref1 = await put(w1, data[::-1], hint)
    assert parse_chunk_id(ref1.chunk_id)[0] == 1
    assert await get(w0, ref1.chunk_id) == data[::-1]
    assert w1.chunk_ids() == [(ref1.chunk_id, pytest.approx(w1.chunk_ids()[0][1]))]


async def test_foreign_read_after_compaction(pair: tuple[LocalChunkStore, LocalChunkStore]) -> None:
    w0, w1 = pair
    refs = []
    for i in range(40):
        data = os.urandom(2000 + i)
        refs.append((data, await put(w0, data, len(data))))
    for data, ref in refs[::5]:
        assert await get(w1, ref.chunk_id) == data  # w1 now caches the old volume's fd
    await w0.delete([ref.chunk_id for i, (_, ref) in enumerate(refs) if i % 5])
    assert await w0.compact(0.1) > 0
    old_vol = parse_chunk_id(refs[0][1].chunk_id)[1]
    assert not vf.volume_path(w0.dir, old_vol).exists()
    for data, ref in refs[::5]:
        assert await get(w1, ref.chunk_id) == data  # located through w0's moves log
        assert await get(w0, ref.chunk_id) == data
    # compacted twice: the latest move wins
    await w0.delete([refs[0][1].chunk_id])
    assert await w0.compact(0.01) > 0
    for data, ref in refs[5::5]:
        assert await get(w1, ref.chunk_id) == data
    with pytest.raises(ChunkMissing):
        await get(w1, refs[0][1].chunk_id)  # deleted and compacted away: never served
    with pytest.raises(ChunkMissing):
        await get(w1, refs[1][1].chunk_id)


async def test_a_stale_location_is_never_served(pair: tuple[LocalChunkStore, LocalChunkStore]) -> None:
    w0, w1 = pair
    a = await put(w0, b"a" * 100, 100)
    owner = parse_chunk_id(a.chunk_id)[0]
    forged = bytes([owner]) + a.chunk_id[1:13] + bytes(x ^ 1 for x in a.chunk_id[13:])
    with pytest.raises(ChunkMissing):
        await get(w1, forged)  # same location, another id
    with pytest.raises(ChunkMissing):
        await get(w1, bytes([7]) + a.chunk_id[1:])  # no such worker


async def test_foreign_read_detects_corruption(pair: tuple[LocalChunkStore, LocalChunkStore]) -> None:
    w0, w1 = pair
    data = os.urandom(5000)
    ref = await put(w0, data, len(data))
    _, vol_id, off = parse_chunk_id(ref.chunk_id)
    path = vf.volume_path(w0.dir, vol_id)
    pos = off + vf.HEADER_SIZE + 4 + 123  # one crc slot, then data
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(ChunkCorrupt):
        await get(w1, ref.chunk_id)


async def test_volume_ids_are_never_reused(tmp_path: Path) -> None:
    s = LocalChunkStore(tmp_path, volume_max_bytes=1 << 20)
    await s.open()
    ref = await put(s, b"x" * 10, 10)
    vol_id = parse_chunk_id(ref.chunk_id)[1]
    await s.delete([ref.chunk_id])
    await s.compact(0.0)
    await s.close()
    for p in s.dir.glob("*.vol"):
        p.unlink()  # even when no volume file names the highest id any more
    s = LocalChunkStore(tmp_path, volume_max_bytes=1 << 20)
    await s.open()
    ref2 = await put(s, b"y" * 10, 10)
    assert parse_chunk_id(ref2.chunk_id)[1] > vol_id
    await s.close()


async def test_one_process_per_worker_directory(tmp_path: Path) -> None:
    a = LocalChunkStore(tmp_path, worker=1)
    await a.open()
    with pytest.raises(RuntimeError, match="in use"):
        await LocalChunkStore(tmp_path, worker=1).open()
    await a.close()
    b = LocalChunkStore(tmp_path, worker=1)
    await b.open()
    await b.close()
