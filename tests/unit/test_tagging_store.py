"""Tagging in the metadata store, run against every backend (SQLite and PostgreSQL): object tags
as part of a version (written with it, replaced in place, kept per version), the upload's tags
carried onto the completed object, bucket tag sets; and the pure tag rules."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_metadata_store import BACKENDS, Store, chunk, open_store, version

from pails.errors import S3Error
from pails.meta.migrate import load_migrations, migrate_sqlite
from pails.meta.models import Part, Upload
from pails.meta.sqlite import SqliteMetadataStore
from pails.meta.store import NoSuchBucketError
from pails.service.tagging import (
    MAX_BUCKET_TAGS,
    parse_tagging_header,
    tagging_directive,
    tagging_header,
    validate_tags,
)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(backend, tmp_path) as s:
        yield s


async def test_tags_are_written_with_the_object_and_replaced_in_place(store: Store) -> None:
    b = await store.create_bucket("tags", "owner", "us-east-1")
    written = await store.put_object(version(b.id, "k", tags={"a": "1", "ü": "ß é"}))
    got = await store.get_object(b.id, "k")
    assert got is not None and got.tags == {"a": "1", "ü": "ß é"}
    assert await store.set_object_tags(b.id, "k", None, {"b": ""}) == "null"
    got = await store.get_object(b.id, "k")
    assert got is not None and got.tags == {"b": ""}
    assert got.last_modified == written.last_modified and got.etag == written.etag
    assert await store.set_object_tags(b.id, "k", "null", {}) == "null"
    got = await store.get_object(b.id, "k")
    assert got is not None and got.tags == {}
    # An overwrite carries its own tags (none here).
    await store.set_object_tags(b.id, "k", None, {"x": "y"})
    await store.put_object(version(b.id, "k", lm=2e9))
    got = await store.get_object(b.id, "k")
    assert got is not None and got.tags == {}


async def test_tagging_what_is_not_there(store: Store) -> None:
    b = await store.create_bucket("tags-missing", "owner", "us-east-1")
    assert await store.set_object_tags(b.id, "nope", None, {"a": "1"}) is None
    assert await store.set_object_tags(b.id, "nope", "null", {"a": "1"}) is None
    await store.set_versioning(b.id, "Enabled")
    await store.put_object(version(b.id, "k"))
    outcome = await store.delete_version(b.id, "k", None, now=2e9)
    assert outcome.delete_marker and outcome.version_id is not None
    # The latest is a delete marker: nothing to tag, by key or by the marker's id.
    assert await store.set_object_tags(b.id, "k", None, {"a": "1"}) is None
    assert await store.set_object_tags(b.id, "k", outcome.version_id, {"a": "1"}) is None
    assert await store.set_object_tags(b.id, "k", "0" * 32, {"a": "1"}) is None


async def test_versions_keep_their_own_tags(store: Store) -> None:
    b = await store.create_bucket("tags-versions", "owner", "us-east-1")
    await store.set_versioning(b.id, "Enabled")
    v1 = await store.put_object(version(b.id, "k", tags={"v": "1"}))
    v2 = await store.put_object(version(b.id, "k", lm=2e9, tags={"v": "2"}))
    assert v1.version_id != v2.version_id
    assert await store.set_object_tags(b.id, "k", v1.version_id, {"v": "one"}) == v1.version_id
    assert await store.set_object_tags(b.id, "k", None, {"v": "two"}) == v2.version_id
    old = await store.get_object(b.id, "k", v1.version_id)
    latest = await store.get_object(b.id, "k")
    assert old is not None and old.tags == {"v": "one"} and not old.is_latest
    assert latest is not None and latest.tags == {"v": "two"} and latest.version_id == v2.version_id


async def test_completed_upload_carries_its_tags(store: Store) -> None:
    b = await store.create_bucket("tags-mpu", "owner", "us-east-1")
    upload = Upload(b.id, "big", "u1", 1.0, tags={"project": "pails"})
    await store.create_upload(upload)
    got = await store.get_upload(b.id, "u1")
    assert got is not None and got.tags == {"project": "pails"}
    await store.put_part(Part(b.id, "u1", 1, 3, "a" * 32, 2.0, manifest=(chunk(),)))
    obj = await store.complete_upload(
        b.id, "u1", "big", [(1, "a" * 32, {})], last_modified=3.0, min_part_size=0
    )
    assert obj.tags == {"project": "pails"}
    stored = await store.get_object(b.id, "big")
    assert stored is not None and stored.tags == {"project": "pails"}


async def test_bucket_tag_sets(store: Store) -> None:
    b = await store.create_bucket("tags-bucket", "owner", "us-east-1")
    assert await store.get_bucket_tags(b.id) is None
    await store.set_bucket_tags(b.id, {"team": "storage", "cost": "42"})
    assert await store.get_bucket_tags(b.id) == {"team": "storage", "cost": "42"}
    await store.set_bucket_tags(b.id, {"team": "other"})
    assert await store.get_bucket_tags(b.id) == {"team": "other"}
    await store.set_bucket_tags(b.id, None)
    assert await store.get_bucket_tags(b.id) is None
    with pytest.raises(NoSuchBucketError):
        await store.set_bucket_tags(b.id + 1000, {"a": "b"})
    with pytest.raises(NoSuchBucketError):
        await store.get_bucket_tags(b.id + 1000)
    await store.set_bucket_tags(b.id, {"a": "b"})
    await store.delete_bucket("tags-bucket")  # a tagged empty bucket can go


# --- the pure rules -------------------------------------------------------------------------------


def invalid_tag(pairs: list[tuple[str, str]], **kw: int) -> str:
    with pytest.raises(S3Error) as err:
        validate_tags(pairs, **kw)
    assert err.value.code == "InvalidTag" and err.value.status == 400
    return err.value.message


def test_validate_tags_limits() -> None:
    ten = [(f"k{i}", "v") for i in range(10)]
    assert validate_tags(ten) == dict(ten)
    assert "greater than 10" in invalid_tag([*ten, ("k10", "v")])
    fifty = [(f"k{i}", "v") for i in range(MAX_BUCKET_TAGS)]
    assert len(validate_tags(fifty, limit=MAX_BUCKET_TAGS)) == 50
    assert "greater than 50" in invalid_tag([*fifty, ("x", "v")], limit=MAX_BUCKET_TAGS)
    assert validate_tags([("k" * 128, "v" * 256)]) == {"k" * 128: "v" * 256}
    assert validate_tags([("é" * 128, "ü" * 256)]) == {"é" * 128: "ü" * 256}  # characters, not bytes
    assert "TagKey" in invalid_tag([("k" * 129, "v")])
    assert "TagValue" in invalid_tag([("k", "v" * 257)])
    assert "same key" in invalid_tag([("a", "1"), ("a", "2")])
    assert "aws:" in invalid_tag([("aws:created", "1")])
    assert "aws:" in invalid_tag([("AWS:x", "1")])
    assert "TagKey" in invalid_tag([("", "v")])
    assert "TagKey" in invalid_tag([("a#b", "v")])
    assert "TagValue" in invalid_tag([("a", "x\ty")])
    assert validate_tags([("a b+c-d=e.f_g:h/i@j", "Ünï 42")]) == {"a b+c-d=e.f_g:h/i@j": "Ünï 42"}
    assert validate_tags([]) == {}


def test_tagging_header() -> None:
    assert parse_tagging_header(None) == {}
    assert parse_tagging_header("") == {}
    assert parse_tagging_header("a=1&b=two%20words&c=") == {"a": "1", "b": "two words", "c": ""}
    assert parse_tagging_header("k%C3%BC=v%2Fw") == {"kü": "v/w"}
    assert parse_tagging_header("solo") == {"solo": ""}
    tags = {"a": "1 2", "ü": "x/y@z"}
    assert parse_tagging_header(tagging_header(tags)) == tags
    with pytest.raises(S3Error) as err:
        parse_tagging_header("a=1&a=2")
    assert err.value.code == "InvalidArgument"
    with pytest.raises(S3Error) as err:
        parse_tagging_header("&".join(f"k{i}=v" for i in range(11)))
    assert err.value.code == "InvalidTag"
    with pytest.raises(S3Error) as err:
        parse_tagging_header("aws%3Ax=1")
    assert err.value.code == "InvalidTag"


def test_tagging_directive() -> None:
    assert tagging_directive(None) == "COPY"
    assert tagging_directive("copy") == "COPY"
    assert tagging_directive("REPLACE") == "REPLACE"
    with pytest.raises(S3Error) as err:
        tagging_directive("MERGE")
    assert err.value.code == "InvalidArgument"


async def test_upgrade_from_schema_3_keeps_rows_untagged(tmp_path: Path) -> None:
    """A database written before tagging (schema 3) opens with every object and upload untagged."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate_sqlite(conn, load_migrations("sqlite")[:3]) == 3
    conn.execute("INSERT INTO buckets (name, owner_id, region, created_at) VALUES ('old', 'o', 'r', 1.0)")
    conn.execute(
        "INSERT INTO objects (bucket_id, key, version_id, is_latest, is_delete_marker, size, etag, "
        "content_type, storage_class, last_modified, manifest) "
        "VALUES (1, ?, 'null', 1, 0, 0, 'e', 'binary/octet-stream', 'STANDARD', 1.0, ?)",
        (b"k", b""),
    )
    conn.execute(
        "INSERT INTO uploads (bucket_id, upload_id, key, initiated, content_type) VALUES (1, 'u', ?, 1.0, 't')",
        (b"k",),
    )
    conn.close()
    store = SqliteMetadataStore(path)
    await store.open()
    try:
        obj = await store.get_object(1, "k")
        upload = await store.get_upload(1, "u")
        assert obj is not None and obj.tags == {}
        assert upload is not None and upload.tags == {}
        assert await store.get_bucket_tags(1) is None
        assert await store.set_object_tags(1, "k", None, {"a": "1"}) == "null"
        obj = await store.get_object(1, "k")
        assert obj is not None and obj.tags == {"a": "1"}
    finally:
        await store.close()
