"""SQLite store: uploads, parts, completion, chunk reference counts; the pure rules."""

from __future__ import annotations

import base64
import os
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pails.meta.models import ChunkRef, ObjectVersion, Part, SharedChunks, Upload, WriteCondition
from pails.meta.rules import assemble_parts, check_write_condition, multipart_etag
from pails.meta.sqlite import SqliteMetadataStore
from pails.meta.store import (
    ChecksumMismatchError,
    EntityTooSmallError,
    InvalidPartError,
    InvalidPartOrderError,
    NoSuchKeyError,
    NoSuchUploadError,
    PreconditionFailedError,
    SourceChangedError,
)

NOW = 1e12


def chunk(size: int = 10) -> ChunkRef:
    return ChunkRef(os.urandom(16), size)


def obj(bucket_id: int, key: str, manifest: tuple[ChunkRef, ...], etag: str = "e") -> ObjectVersion:
    return ObjectVersion(bucket_id, key, "null", sum(r.size for r in manifest), etag, 1.0, manifest=manifest)


def part(bucket_id: int, upload_id: str, n: int, manifest: tuple[ChunkRef, ...], etag: str) -> Part:
    return Part(bucket_id, upload_id, n, sum(r.size for r in manifest), etag, 1.0, manifest=manifest)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteMetadataStore]:
    s = SqliteMetadataStore(tmp_path / "meta.db")
    await s.open()
    yield s
    await s.close()


async def garbage(store: SqliteMetadataStore) -> list[bytes]:
    taken = await store.take_garbage(1000, NOW)
    await store.ack_garbage([qid for qid, _ in taken])
    return [c for _, c in taken]


async def referenced(store: SqliteMetadataStore) -> set[bytes]:
    return {c async for c in store.referenced_chunks()}


def test_rules() -> None:
    check_write_condition(None, "x")
    check_write_condition(WriteCondition(if_none_match=True), None)
    with pytest.raises(PreconditionFailedError):
        check_write_condition(WriteCondition(if_none_match=True), "x")
    with pytest.raises(NoSuchKeyError):
        check_write_condition(WriteCondition(if_match="x"), None)
    with pytest.raises(PreconditionFailedError):
        check_write_condition(WriteCondition(if_match="y"), "x")
    check_write_condition(WriteCondition(if_match="x"), "x")
    md5_a, md5_b = "0" * 32, "f" * 32
    assert multipart_etag([md5_a, md5_b]).endswith("-2")
    stored = {1: part(1, "u", 1, (chunk(100),), md5_a), 2: part(1, "u", 2, (chunk(5),), md5_b)}
    done = assemble_parts([(1, f'"{md5_a}"', {}), (2, md5_b, {})], stored, min_part_size=100)
    assert done.size == 105 and done.used == {1, 2} and len(done.manifest) == 2
    with pytest.raises(EntityTooSmallError):
        assemble_parts([(1, md5_a, {}), (2, md5_b, {})], stored, min_part_size=101)
    with pytest.raises(InvalidPartOrderError):
        assemble_parts([(2, md5_b, {}), (1, md5_a, {})], stored, min_part_size=1)
    with pytest.raises(InvalidPartError):
        assemble_parts([(1, md5_b, {})], stored, min_part_size=1)
    with pytest.raises(InvalidPartError):
        assemble_parts([(3, md5_b, {})], stored, min_part_size=1)


async def test_upload_lifecycle_and_references(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    upload = Upload(b.id, "k", "u1", 1.0, content_type="text/plain", user_metadata={"m": "1"})
    await store.create_upload(upload)
    got = await store.get_upload(b.id, "u1")
    assert got is not None and got.state == "uploading" and got.user_metadata == {"m": "1"}
    p1, p1b, p2, p3 = (chunk(),), (chunk(),), (chunk(), chunk()), (chunk(),)
    await store.put_part(part(b.id, "u1", 1, p1, "a" * 32))
    await store.put_part(part(b.id, "u1", 1, p1b, "b" * 32))  # replaces part 1
    assert await garbage(store) == [p1[0].chunk_id]
    await store.put_part(part(b.id, "u1", 2, p2, "c" * 32))
    await store.put_part(part(b.id, "u1", 3, p3, "d" * 32))
    assert {r.chunk_id for r in p1b + p2 + p3} <= await referenced(store)
    assert [p.part_number for p in await store.list_parts(b.id, "u1", after=1, limit=5)] == [2, 3]
    done = await store.complete_upload(
        b.id, "u1", "k", [(1, "b" * 32, {}), (2, "c" * 32, {})], last_modified=5.0, min_part_size=1
    )
    assert done.manifest == p1b + p2 and done.content_type == "text/plain"
    assert await garbage(store) == [p3[0].chunk_id]  # the part left out
    again = await store.complete_upload(b.id, "u1", "k", [], last_modified=6.0, min_part_size=1)
    assert again.etag == done.etag
    with pytest.raises(NoSuchUploadError):
        await store.put_part(part(b.id, "u1", 4, (chunk(),), "e" * 32))
    assert (await store.list_uploads(b.id)).uploads == []
    await store.create_upload(Upload(b.id, "k2", "u2", 1.0))
    await store.put_part(part(b.id, "u2", 1, p3 := (chunk(),), "f" * 32))
    assert await store.abort_upload(b.id, "u2") and not await store.abort_upload(b.id, "u2")
    assert await garbage(store) == [p3[0].chunk_id]


async def test_finished_uploads_are_purged_after_retention(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    for upload_id, initiated in (
        ("old-done", 1.0),
        ("old-aborted", 2.0),
        ("old-open", 3.0),
        ("new-done", 50.0),
    ):
        await store.create_upload(Upload(b.id, "k", upload_id, initiated))
        await store.put_part(part(b.id, upload_id, 1, (chunk(),), "a" * 32))
    for upload_id in ("old-done", "new-done"):
        await store.complete_upload(
            b.id, upload_id, "k", [(1, "a" * 32, {})], last_modified=60.0, min_part_size=1
        )
    await store.abort_upload(b.id, "old-aborted")
    assert await store.purge_finished_uploads(10.0, 1) == 1  # the limit holds
    assert await store.purge_finished_uploads(10.0, 100) == 1
    assert await store.purge_finished_uploads(10.0, 100) == 0
    assert await store.get_upload(b.id, "old-done") is None
    assert await store.get_upload(b.id, "old-aborted") is None
    still_open = await store.get_upload(b.id, "old-open")
    assert still_open is not None and still_open.state == "uploading"  # never purged while open
    recent = await store.get_upload(b.id, "new-done")
    assert recent is not None and recent.state == "complete"


async def test_shared_chunks_are_freed_with_their_last_reference(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    m = (chunk(), chunk())
    await store.put_object(obj(b.id, "src", m))
    share = SharedChunks(b.id, "src", m, tuple(r.chunk_id for r in m))
    await store.put_object(obj(b.id, "c1", m), shared=share)
    await store.put_object(obj(b.id, "c2", m), shared=share)
    await store.put_object(obj(b.id, "c1", m), shared=share)  # a copy onto a copy of the same chunks
    with pytest.raises(SourceChangedError):
        await store.put_object(obj(b.id, "c3", m), shared=SharedChunks(b.id, "src", (chunk(),), ()))
    await store.delete_objects(b.id, ["src", "c1"])
    assert await garbage(store) == []
    await store.put_object(obj(b.id, "c2", (chunk(),)))
    assert sorted(await garbage(store)) == sorted(r.chunk_id for r in m)


async def test_conditional_put(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.put_object(obj(b.id, "k", (chunk(),), "one"), condition=WriteCondition(if_none_match=True))
    with pytest.raises(PreconditionFailedError):
        await store.put_object(obj(b.id, "k", (chunk(),)), condition=WriteCondition(if_none_match=True))
    await store.put_object(obj(b.id, "k", (chunk(),), "two"), condition=WriteCondition(if_match="one"))
    with pytest.raises(NoSuchKeyError):
        await store.put_object(obj(b.id, "nope", (chunk(),)), condition=WriteCondition(if_match="one"))


async def test_delete_bucket_drops_uploads(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.create_upload(Upload(b.id, "k", "u", 1.0))
    m = (chunk(),)
    await store.put_part(part(b.id, "u", 1, m, "a" * 32))
    await store.delete_bucket("b")
    assert await garbage(store) == [m[0].chunk_id]


def _crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_full_object_checksum_rules() -> None:
    a, b = os.urandom(100), os.urandom(7)
    stored = {
        1: Part(1, "u", 1, len(a), "0" * 32, 1.0, checksums={"CRC32": _crc32_b64(a)}, manifest=(chunk(100),)),
        2: Part(1, "u", 2, len(b), "f" * 32, 1.0, checksums={"CRC32": _crc32_b64(b)}, manifest=(chunk(7),)),
    }
    requested = [(1, "0" * 32, {}), (2, "f" * 32, {})]
    whole = _crc32_b64(a + b)
    full = assemble_parts(
        requested, stored, min_part_size=1, checksum_algorithm="CRC32", checksum_type="FULL_OBJECT"
    )
    assert full.checksums == {"CRC32": whole}
    composite = assemble_parts(
        requested, stored, min_part_size=1, checksum_algorithm="CRC32", checksum_type="COMPOSITE"
    )
    assert composite.checksums["CRC32"].endswith("-2")
    # the completion's own statement of the checksum (and type) is checked
    for expected in ({"CRC32": whole}, {"CRC32": whole, "type": "full_object"}):
        assemble_parts(
            requested,
            stored,
            min_part_size=1,
            checksum_algorithm="CRC32",
            checksum_type="FULL_OBJECT",
            expected_checksums=expected,
        )
    composite_value = composite.checksums["CRC32"]
    assemble_parts(
        requested,
        stored,
        min_part_size=1,
        checksum_algorithm="CRC32",
        checksum_type="COMPOSITE",
        expected_checksums={"CRC32": composite_value.rpartition("-")[0]},
    )
    for expected in ({"CRC32": _crc32_b64(b + a)}, {"CRC32C": whole}, {"type": "COMPOSITE"}):
        with pytest.raises(ChecksumMismatchError):
            assemble_parts(
                requested,
                stored,
                min_part_size=1,
                checksum_algorithm="CRC32",
                checksum_type="FULL_OBJECT",
                expected_checksums=expected,
            )


async def test_upload_checksum_type_round_trip(store: SqliteMetadataStore) -> None:
    """The type shares the checksum_algorithm column ("CRC32:FULL_OBJECT"); a bare name is COMPOSITE."""
    b = await store.create_bucket("b", "o", "r")
    await store.create_upload(
        Upload(b.id, "k", "full", 1.0, checksum_algorithm="CRC32", checksum_type="FULL_OBJECT")
    )
    await store.create_upload(
        Upload(b.id, "k", "comp", 1.0, checksum_algorithm="CRC32C", checksum_type="COMPOSITE")
    )
    await store.create_upload(Upload(b.id, "k", "none", 1.0))
    full, comp, none = [await store.get_upload(b.id, u) for u in ("full", "comp", "none")]
    assert full is not None and (full.checksum_algorithm, full.checksum_type) == ("CRC32", "FULL_OBJECT")
    assert comp is not None and (comp.checksum_algorithm, comp.checksum_type) == ("CRC32C", "COMPOSITE")
    assert none is not None and (none.checksum_algorithm, none.checksum_type) == ("", "")
    listed = {u.upload_id: u for u in (await store.list_uploads(b.id)).uploads}
    assert listed["full"].checksum_type == "FULL_OBJECT" and listed["full"].checksum_algorithm == "CRC32"
    data = os.urandom(50)
    checksums = {"CRC32": _crc32_b64(data)}
    await store.put_part(Part(b.id, "full", 1, 50, "a" * 32, 1.0, checksums=checksums, manifest=(chunk(50),)))
    with pytest.raises(ChecksumMismatchError):
        await store.complete_upload(
            b.id,
            "full",
            "k",
            [(1, "a" * 32, {})],
            last_modified=2.0,
            min_part_size=1,
            expected_checksums={"CRC32": _crc32_b64(b"other")},
        )
    assert (await store.get_upload(b.id, "full")) is not None  # nothing committed
    assert await store.get_object(b.id, "k") is None
    done = await store.complete_upload(
        b.id,
        "full",
        "k",
        [(1, "a" * 32, {})],
        last_modified=2.0,
        min_part_size=1,
        expected_checksums={"CRC32": checksums["CRC32"]},
    )
    assert done.checksums == checksums
