"""Part sizes of completed multipart objects in the metadata store, on every backend: written by
complete_upload, round-tripped by put_object (copies), and the upgrade from schema 4."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_metadata_store import BACKENDS, Store, chunk, open_store, version

from pails.meta.migrate import load_migrations, migrate_sqlite
from pails.meta.models import Part, Upload
from pails.meta.sqlite import SqliteMetadataStore


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(backend, tmp_path) as s:
        yield s


async def test_part_sizes_round_trip(store: Store) -> None:
    b = await store.create_bucket("sizes", "owner", "us-east-1")
    await store.put_object(version(b.id, "plain", manifest=(chunk(),)))
    plain = await store.get_object(b.id, "plain")
    assert plain is not None and plain.part_sizes == ()
    await store.put_object(version(b.id, "copy", size=15, part_sizes=(10, 5)))
    copy = await store.get_object(b.id, "copy")
    assert copy is not None and copy.part_sizes == (10, 5)
    await store.put_object(version(b.id, "copy", size=3))  # an overwrite in one piece
    copy = await store.get_object(b.id, "copy")
    assert copy is not None and copy.part_sizes == ()


async def test_completed_upload_records_its_part_sizes(store: Store) -> None:
    b = await store.create_bucket("sizes-mpu", "owner", "us-east-1")
    await store.create_upload(Upload(b.id, "big", "u1", 1.0))
    for number, size in ((1, 7), (2, 9), (3, 4)):
        await store.put_part(Part(b.id, "u1", number, size, f"{number}" * 32, 2.0, manifest=(chunk(),)))
    obj = await store.complete_upload(
        b.id, "u1", "big", [(1, "1" * 32, {}), (3, "3" * 32, {})], last_modified=3.0, min_part_size=0
    )
    assert obj.part_sizes == (7, 4) and obj.size == 11
    stored = await store.get_object(b.id, "big")
    assert stored is not None and stored.part_sizes == (7, 4)


async def test_upgrade_from_schema_4_keeps_rows(tmp_path: Path) -> None:
    """A database written before part sizes (schema 4) opens with every object's part_sizes empty."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate_sqlite(conn, load_migrations("sqlite")[:4]) == 4
    conn.execute("INSERT INTO buckets (name, owner_id, region, created_at) VALUES ('old', 'o', 'r', 1.0)")
    conn.execute(
        "INSERT INTO objects (bucket_id, key, version_id, is_latest, is_delete_marker, size, etag, "
        "content_type, storage_class, last_modified, manifest, tags) "
        "VALUES (1, ?, 'null', 1, 0, 5, 'e-2', 'binary/octet-stream', 'STANDARD', 1.0, ?, '{\"a\":\"1\"}')",
        (b"k", b""),
    )
    conn.close()
    store = SqliteMetadataStore(path)
    await store.open()
    try:
        obj = await store.get_object(1, "k")
        assert obj is not None and obj.part_sizes == () and obj.size == 5 and obj.etag == "e-2"
        assert obj.tags == {"a": "1"}
        await store.put_object(version(1, "k2", part_sizes=(2, 1)))
        new = await store.get_object(1, "k2")
        assert new is not None and new.part_sizes == (2, 1)
    finally:
        await store.close()
