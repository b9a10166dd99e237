"""LocalChunkStore with given chunk ids (a storage node): the id is the caller's, a second write of
an id replaces its record, and the newest record wins after a restart."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from awscrt.checksums import crc32c

from pails.data import volume as vf
from pails.data.engine import ChunkCorrupt, ChunkMissing
from pails.data.local import LocalChunkStore
from pails.limits import CHECKSUM_BLOCK, SMALL_CHUNK_MAX
from pails.meta.models import ChunkRef


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalChunkStore]:
    s = LocalChunkStore(tmp_path, given_ids=True)
    await s.open()
    yield s
    await s.close()


async def put(s: LocalChunkStore, chunk_id: bytes, data: bytes, piece: int = 256 * 1024) -> ChunkRef:
    sink = await s.new_chunk(len(data), chunk_id=chunk_id)
    for i in range(0, len(data), piece):
        await sink.write(data[i : i + piece])
    ref = await sink.finish()
    await s.sync([ref])
    return ref


async def get(s: LocalChunkStore, chunk_id: bytes, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([p async for p in s.read(chunk_id, offset, length)])


async def reopen(s: LocalChunkStore) -> LocalChunkStore:
    await s.close()
    s2 = LocalChunkStore(s.chunks_root, given_ids=True)
    await s2.open()
    return s2


def flip_byte(s: LocalChunkStore, chunk_id: bytes, at: int) -> None:
    loc = s._index[chunk_id]
    path = vf.volume_path(s.dir, loc.vol)
    with path.open("r+b") as f:
        f.seek(loc.data_off + at)
        b = f.read(1)
        f.seek(loc.data_off + at)
        f.write(bytes([b[0] ^ 0xFF]))


@pytest.mark.parametrize("size", [0, 100, SMALL_CHUNK_MAX + 1, 3 * CHECKSUM_BLOCK + 7])
async def test_stored_under_the_given_id(store: LocalChunkStore, size: int) -> None:
    chunk_id = b"\x07" + os.urandom(15)  # a first byte that is not worker 0: no foreign lookup
    data = os.urandom(size)
    ref = await put(store, chunk_id, data)
    assert ref == ChunkRef(chunk_id, size)
    assert await get(store, chunk_id) == data
    info = await store.info(chunk_id)
    assert (info.length, info.crc32c) == (size, crc32c(data))
    assert await store.verify(chunk_id)
    assert [c for c, _ in store.chunk_ids()] == [chunk_id]
    store2 = await reopen(store)
    try:
        assert await get(store2, chunk_id) == data
    finally:
        await store2.close()


async def test_id_rules(tmp_path: Path, store: LocalChunkStore) -> None:
    with pytest.raises(ValueError):
        await store.new_chunk(10)  # an id is required
    with pytest.raises(ValueError):
        await store.new_chunk(10, chunk_id=b"short")
    plain = LocalChunkStore(tmp_path / "plain")
    await plain.open()
    try:
        with pytest.raises(ValueError):
            await plain.new_chunk(10, chunk_id=os.urandom(16))
    finally:
        await plain.close()
    with pytest.raises(ValueError):
        LocalChunkStore(tmp_path / "w", given_ids=True, worker=1)
    with pytest.raises(ChunkMissing):
        await get(store, b"\x05" + os.urandom(15))
    with pytest.raises(ChunkMissing):
        await store.info(os.urandom(16))


@pytest.mark.parametrize("size", [1000, 2 * CHECKSUM_BLOCK + 1])
async def test_a_corrupt_chunk_is_replaced_and_stays_replaced(store: LocalChunkStore, size: int) -> None:
    chunk_id, data = os.urandom(16), os.urandom(size)
    await put(store, chunk_id, data)
    flip_byte(store, chunk_id, size - 1)
    assert not await store.verify(chunk_id)
    with pytest.raises(ChunkCorrupt):
        await get(store, chunk_id)
    await put(store, chunk_id, data)  # the repair
    assert await get(store, chunk_id) == data
    assert store.stats().chunks == 1
    store = await reopen(store)
    try:
        assert await get(store, chunk_id) == data  # the newer record wins, the old one is dead
        await store.delete([chunk_id])
        store = await reopen(store)
        with pytest.raises(ChunkMissing):  # neither record comes back
            await get(store, chunk_id)
        assert store.stats().chunks == 0
    finally:
        await store.close()


async def test_replaced_record_is_garbage_and_compacts(store: LocalChunkStore) -> None:
    chunk_id, data = os.urandom(16), os.urandom(SMALL_CHUNK_MAX + 10)
    await put(store, chunk_id, data)
    await put(store, chunk_id, data)
    assert store.stats().garbage_bytes >= len(data)
    assert await store.compact(0.0) > 0
    assert await get(store, chunk_id) == data
    assert not (store.dir / "moves.log").exists()  # given ids locate nothing: no moves to log
    store = await reopen(store)
    try:
        assert await get(store, chunk_id) == data
    finally:
        await store.close()
