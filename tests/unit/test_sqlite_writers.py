"""Several SQLite writers on one file (`pails server --workers N`): they take turns on the writer
lock, and a write's prepare step (the chunks' fsync) runs outside the write transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from pails.meta.models import ChunkRef, ObjectVersion
from pails.meta.sqlite import SqliteMetadataStore


def _version(bucket_id: int, key: str, n: int) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=bucket_id,
        key=key,
        version_id="null",
        size=3,
        etag="e",
        last_modified=1_700_000_000.0,
        manifest=(ChunkRef(n.to_bytes(16, "big"), 3),),
    )


async def test_two_writers_on_one_file_commit_everything(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    first, second = SqliteMetadataStore(path), SqliteMetadataStore(path)
    await first.open()
    await second.open()
    try:
        bucket = await first.create_bucket("b", "owner", "us-east-1")

        async def writes(store: SqliteMetadataStore, name: str, base: int) -> None:
            for i in range(40):
                await store.put_object(_version(bucket.id, f"{name}/{i}", base + i))
                if i % 2:
                    await store.delete_version(bucket.id, f"{name}/{i}", None, now=1_700_000_001.0)

        await asyncio.gather(
            *(writes(first, f"a{t}", 1000 * t) for t in range(1, 9)),
            *(writes(second, f"b{t}", 100_000 + 1000 * t) for t in range(1, 9)),
        )
        page = await second.list_objects(bucket.id, prefix="", delimiter="", start_after="", max_keys=1000)
        keys = sorted(entry.key for entry in page.entries)
        expected = sorted(f"{side}{t}/{i}" for side in "ab" for t in range(1, 9) for i in range(0, 40, 2))
        assert keys == expected
        assert first.commit_count > 0 and second.commit_count > 0
    finally:
        await first.close()
        await second.close()


async def test_prepare_runs_before_the_write_transaction(tmp_path: Path) -> None:
    """The chunks' fsync must not hold SQLite's write lock (nor the writer lock): while it runs,
    another connection can start a write transaction at once."""
    path = tmp_path / "meta.db"
    store = SqliteMetadataStore(path)
    await store.open()
    seen: list[str] = []

    def barrier() -> None:
        probe = sqlite3.connect(path, isolation_level=None, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            seen.append("free")
        except sqlite3.OperationalError as exc:
            seen.append(str(exc))
        finally:
            probe.close()

    try:
        bucket = await store.create_bucket("b", "owner", "us-east-1")
        stored = await store.put_object(_version(bucket.id, "k", 7), before_commit=barrier)
        assert seen == ["free"]
        assert stored.key == "k"
        assert (await store.get_object(bucket.id, "k")) is not None
    finally:
        await store.close()
