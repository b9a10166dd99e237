"""The object read cache of the SQLite store: a commit by anyone to the file (this store's writer,
another store on the same file, a plain sqlite3 connection) is seen by the very next read."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from pails.meta.models import ChunkRef, ObjectVersion
from pails.meta.read_cache import CommitValidatedCache
from pails.meta.sqlite import SqliteMetadataStore


def _version(bucket_id: int, key: str, etag: str) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=bucket_id,
        key=key,
        version_id="null",
        size=3,
        etag=etag,
        last_modified=1_700_000_000.0,
        manifest=(ChunkRef(etag.encode().ljust(16, b"\0"), 3),),
    )


async def test_a_read_sees_a_commit_from_another_store_on_the_file(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    reader, writer = SqliteMetadataStore(path), SqliteMetadataStore(path)
    await reader.open()
    await writer.open()
    try:
        bucket = await writer.create_bucket("b", "owner", "us-east-1")
        assert await reader.get_object(bucket.id, "k", head_only=True) is None
        assert await reader.get_object(bucket.id, "k", head_only=True) is None  # the cached miss
        await writer.put_object(_version(bucket.id, "k", "first"))
        first = await reader.get_object(bucket.id, "k", head_only=True)
        assert first is not None and first.etag == "first"
        assert await reader.get_object(bucket.id, "k", head_only=True) is first  # served from the cache
        await writer.put_object(_version(bucket.id, "k", "second"))
        for head_only in (True, False):
            latest = await reader.get_object(bucket.id, "k", head_only=head_only)
            assert latest is not None and latest.etag == "second"
        await writer.delete_version(bucket.id, "k", None, now=1_700_000_001.0)
        assert await reader.get_object(bucket.id, "k") is None
    finally:
        await reader.close()
        await writer.close()


async def test_a_read_sees_its_own_stores_write(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "meta.db")
    await store.open()
    try:
        bucket = await store.create_bucket("b", "owner", "us-east-1")
        await store.put_object(_version(bucket.id, "k", "one"))
        assert (await store.get_object(bucket.id, "k")).etag == "one"  # type: ignore[union-attr]
        await store.put_object(_version(bucket.id, "k", "two"))
        assert (await store.get_object(bucket.id, "k")).etag == "two"  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_any_connection_committing_empties_the_cache_at_the_next_turn(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with sqlite3.connect(path, isolation_level=None) as setup:
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("CREATE TABLE t (v)")
    reader = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None)
    cache: CommitValidatedCache[str] = CommitValidatedCache(reader, limit=2)
    entries = cache.current()
    cache.put(entries, "a", "1")
    await asyncio.sleep(0)
    assert cache.current() == {"a": "1"}
    other.execute("INSERT INTO t VALUES (1)")
    # Within one turn of the event loop SQLite is asked once: a callback already scheduled when
    # the commit happened may still read what was there before it.
    assert cache.current() == {"a": "1"}
    await asyncio.sleep(0)
    assert cache.current() == {}
    entries = cache.current()
    for key in "abc":
        cache.put(entries, key, key)
    await asyncio.sleep(0)
    assert cache.current() == {"b": "b", "c": "c"}  # bounded: the oldest entry went
    reader.close()
    other.close()
