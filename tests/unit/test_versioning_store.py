"""Versioning in the metadata store, run against every backend (SQLite and PostgreSQL): version
ids, delete markers, deleting a version (promotion, chunk release), Suspended writes replacing
the null version, ListObjectVersions pages, copies from a version."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_metadata_store import BACKENDS, NOW, Store, chunk, open_store, version

from pails.meta.models import SharedChunks, VersionEntry
from pails.meta.rules import is_version_id, new_version_id
from pails.meta.store import NoSuchBucketError, SourceChangedError


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(backend, tmp_path) as s:
        yield s


async def garbage(store: Store) -> set[bytes]:
    return {chunk_id for _, chunk_id in await store.take_garbage(10_000, NOW)}


async def all_versions(store: Store, bucket_id: int, **kw: object) -> list[VersionEntry]:
    page = await store.list_versions(bucket_id, **kw)  # type: ignore[arg-type]
    return page.entries


def test_version_ids_are_unique_and_newest_first() -> None:
    ids = [new_version_id() for _ in range(200)]
    assert len(set(ids)) == 200 and all(is_version_id(i) for i in ids)
    assert all(a[:16] >= b[:16] for a, b in itertools.pairwise(ids))  # later ids sort first
    assert is_version_id("null") and not is_version_id("3HL4kqtJlcpXroDTDmJ") and ids[0] < "null"


async def test_enabled_puts_keep_every_version(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    assert (await store.get_bucket("b")).versioning == ""  # type: ignore[union-attr]
    await store.set_versioning(b.id, "Enabled")
    assert (await store.get_bucket("b")).versioning == "Enabled"  # type: ignore[union-attr]
    c1, c2 = chunk(), chunk()
    v1 = await store.put_object(version(b.id, "k", etag="one", manifest=(c1,)))
    v2 = await store.put_object(version(b.id, "k", etag="two", manifest=(c2,)))
    assert v1.version_id != v2.version_id and is_version_id(v1.version_id) and v1.version_id != "null"
    assert v2.last_modified > v1.last_modified
    latest = await store.get_object(b.id, "k")
    assert latest is not None and latest.version_id == v2.version_id
    old = await store.get_object(b.id, "k", v1.version_id)
    assert old is not None and old.etag == "one" and not old.is_latest and old.manifest == (c1,)
    assert await store.get_object(b.id, "k", "null") is None
    assert await garbage(store) == set()  # nothing was replaced
    entries = await all_versions(store, b.id)
    assert [(e.version_id, e.is_latest) for e in entries] == [(v2.version_id, True), (v1.version_id, False)]


async def test_delete_marker_then_delete_versions_promotes_and_frees(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.set_versioning(b.id, "Enabled")
    c1, c2 = chunk(), chunk()
    v1 = await store.put_object(version(b.id, "k", etag="one", manifest=(c1,)))
    v2 = await store.put_object(version(b.id, "k", etag="two", manifest=(c2,)))
    marker = await store.delete_version(b.id, "k", None, now=1.0)
    assert marker.delete_marker and marker.existed and marker.version_id not in (None, "null")
    latest = await store.get_object(b.id, "k")
    assert latest is not None and latest.is_delete_marker and latest.version_id == marker.version_id
    assert latest.last_modified > v2.last_modified  # never before the version it hides
    assert (await store.list_objects(b.id)).entries == []
    # A second delete stacks another marker; the key was already hidden.
    again = await store.delete_version(b.id, "k", None, now=1.0)
    assert again.delete_marker and not again.existed
    # Removing both markers brings v2 back as the latest.
    assert again.version_id is not None and marker.version_id is not None
    removed = await store.delete_version(b.id, "k", again.version_id, now=1.0)
    assert removed.delete_marker and removed.version_id == again.version_id and not removed.existed
    await store.delete_version(b.id, "k", marker.version_id, now=1.0)
    latest = await store.get_object(b.id, "k")
    assert latest is not None and latest.version_id == v2.version_id and latest.is_latest
    assert [e.key for e in (await store.list_objects(b.id)).entries] == ["k"]
    # Deleting the latest real version frees its chunk and promotes v1.
    gone = await store.delete_version(b.id, "k", v2.version_id, now=1.0)
    assert gone.existed and not gone.delete_marker
    assert await garbage(store) == {c2.chunk_id}
    latest = await store.get_object(b.id, "k")
    assert latest is not None and latest.version_id == v1.version_id and latest.is_latest
    # A non-latest version goes without touching the latest; unknown versions are no error.
    assert not (await store.delete_version(b.id, "k", new_version_id(), now=1.0)).existed
    await store.delete_version(b.id, "k", v1.version_id, now=1.0)
    assert await store.get_object(b.id, "k") is None
    await store.delete_bucket("b")  # nothing left


async def test_shared_chunks_survive_deleting_one_version(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.set_versioning(b.id, "Enabled")
    c1 = chunk()
    src = await store.put_object(version(b.id, "src", manifest=(c1,)))
    await store.put_object(version(b.id, "src", manifest=(chunk(),)))  # src's latest moves on
    shared = SharedChunks(b.id, "src", (c1,), (c1.chunk_id,), version_id=src.version_id)
    copy = await store.put_object(version(b.id, "dst", manifest=(c1,)), shared=shared)
    await store.delete_version(b.id, "src", src.version_id, now=1.0)
    assert c1.chunk_id not in await garbage(store)  # the copy still names it
    await store.delete_version(b.id, "dst", copy.version_id, now=1.0)
    assert c1.chunk_id in await garbage(store)
    gone = SharedChunks(b.id, "src", (c1,), (c1.chunk_id,), version_id=src.version_id)
    with pytest.raises(SourceChangedError):
        await store.put_object(version(b.id, "dst2", manifest=(c1,)), shared=gone)


async def test_suspended_writes_replace_the_null_version(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    n1 = chunk()
    await store.put_object(version(b.id, "k", etag="null-1", manifest=(n1,)))  # before versioning
    await store.set_versioning(b.id, "Enabled")
    c1 = chunk()
    v1 = await store.put_object(version(b.id, "k", etag="v1", manifest=(c1,)))
    await store.set_versioning(b.id, "Suspended")
    n2 = chunk()
    n = await store.put_object(version(b.id, "k", etag="null-2", manifest=(n2,)))
    assert n.version_id == "null"
    assert await garbage(store) == {n1.chunk_id}  # the old null version's chunk, nothing else
    entries = await all_versions(store, b.id)
    assert [(e.version_id, e.etag, e.is_latest) for e in entries] == [
        ("null", "null-2", True),
        (v1.version_id, "v1", False),
    ]
    marker = await store.delete_version(b.id, "k", None, now=1.0)
    assert (marker.version_id, marker.delete_marker, marker.existed) == ("null", True, True)
    assert n2.chunk_id in await garbage(store)  # the marker replaced the null version
    latest = await store.get_object(b.id, "k")
    assert latest is not None and latest.is_delete_marker and latest.version_id == "null"
    old = await store.get_object(b.id, "k", v1.version_id)
    assert old is not None and old.etag == "v1"
    await store.delete_version(b.id, "k", "null", now=1.0)
    latest = await store.get_object(b.id, "k")
    assert latest is not None and latest.version_id == v1.version_id


async def test_unversioned_buckets_keep_their_semantics(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    c = chunk()
    obj = await store.put_object(version(b.id, "k", manifest=(c,)))
    assert obj.version_id == "null"
    outcome = await store.delete_version(b.id, "k", None, now=1.0)
    assert (outcome.existed, outcome.version_id, outcome.delete_marker) == (True, None, False)
    assert await store.get_object(b.id, "k") is None and await garbage(store) == {c.chunk_id}
    with pytest.raises(NoSuchBucketError):
        await store.set_versioning(b.id + 1000, "Enabled")


async def test_delete_objects_on_a_versioned_bucket_adds_markers(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.set_versioning(b.id, "Enabled")
    await store.put_object(version(b.id, "a"))
    assert await store.delete_objects(b.id, ["a", "missing"]) == [True, False]
    entries = await all_versions(store, b.id)
    assert [(e.key, e.is_delete_marker, e.is_latest) for e in entries] == [
        ("a", True, True),
        ("a", False, False),
        ("missing", True, True),
    ]
    outcomes = await store.delete_versions(b.id, [(e.key, e.version_id) for e in entries], now=1.0)
    assert [o.delete_marker for o in outcomes] == [True, False, True]
    await store.delete_bucket("b")


async def test_list_versions_pages_prefixes_and_markers(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.set_versioning(b.id, "Enabled")
    expected: list[tuple[str, str]] = []
    for key in ["a", "b/1", "b/2", "c", "d"]:
        ids = [(await store.put_object(version(b.id, key))).version_id for _ in range(3)]
        expected.extend((key, vid) for vid in reversed(ids))
    marker = await store.delete_version(b.id, "c", None, now=1.0)
    assert marker.version_id is not None
    index = expected.index(("c", expected[[k for k, _ in expected].index("c")][1]))
    expected.insert(index, ("c", marker.version_id))
    full = await all_versions(store, b.id)
    assert [(e.key, e.version_id) for e in full] == expected
    assert [e.is_latest for e in full if e.key == "c"] == [True, False, False, False]
    # Page through every size: the pages concatenate to the whole listing.
    for size in (1, 2, 3, 5, 7):
        got: list[tuple[str, str]] = []
        key_marker, vid_marker = "", ""
        for _ in range(100):
            page = await store.list_versions(
                b.id, key_marker=key_marker, version_id_marker=vid_marker, max_keys=size
            )
            assert len(page.entries) <= size
            got.extend((e.key, e.version_id) for e in page.entries)
            if not page.is_truncated:
                break
            assert page.next_key_marker is not None and page.next_version_id_marker is not None
            key_marker, vid_marker = page.next_key_marker, page.next_version_id_marker
        assert got == expected, size
    # Delimiter: b/ rolls up; a page may end on it (no version-id marker then).
    page = await store.list_versions(b.id, delimiter="/", max_keys=4)
    assert [e.key for e in page.entries] == ["a", "a", "a"] and page.common_prefixes == ["b/"]
    assert page.is_truncated and (page.next_key_marker, page.next_version_id_marker) == ("b/", None)
    page = await store.list_versions(b.id, delimiter="/", key_marker="b/")
    assert [e.key for e in page.entries][:1] == ["c"] and page.common_prefixes == []
    page = await store.list_versions(b.id, prefix="b/", key_marker="b/1")
    assert {e.key for e in page.entries} == {"b/2"} and not page.is_truncated
    assert (await store.list_versions(b.id, max_keys=0)).entries == []


async def test_concurrent_version_deletes_leave_one_latest(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.set_versioning(b.id, "Enabled")
    ids = [(await store.put_object(version(b.id, "k", manifest=(chunk(),)))).version_id for _ in range(6)]
    # Delete the four newest at once, while writes keep coming.
    await asyncio.gather(
        *(store.delete_version(b.id, "k", vid, now=1.0) for vid in ids[2:]),
        *(store.put_object(version(b.id, "k")) for _ in range(3)),
    )
    entries = await all_versions(store, b.id)
    assert len(entries) == 5 and sum(e.is_latest for e in entries) == 1 and entries[0].is_latest
    assert {e.version_id for e in entries} >= set(ids[:2])


def reference_versions(
    rows: list[tuple[str, str]], prefix: str, delimiter: str
) -> list[tuple[str, str | None]]:
    """ListObjectVersions by brute force: rows are (key, version id) newest first within a key;
    the result lists (key, version id) and (common prefix, None) in S3's order, all pages at once."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for key, vid in sorted(rows, key=lambda r: r[0].encode()):  # stable: keeps newest first
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = key[: cut + len(delimiter)]
            if common not in seen:
                seen.add(common)
                out.append((common, None))
            continue
        out.append((key, vid))
    return out


async def test_list_versions_matches_a_reference_model(store: Store) -> None:
    rng = random.Random(7)
    b = await store.create_bucket("b", "o", "r")
    await store.set_versioning(b.id, "Enabled")
    keys = ["a", "a/b", "a/b/c", "a/c", "ab", "b/x", "b/y/z", "c", "é", "z/"]
    newest_first: dict[str, list[str]] = {k: [] for k in keys}
    for _ in range(40):
        key = rng.choice(keys)
        if rng.random() < 0.2:
            vid = (await store.delete_version(b.id, key, None, now=1.0)).version_id
        else:
            vid = (await store.put_object(version(b.id, key))).version_id
        assert vid is not None
        newest_first[key].insert(0, vid)
    rows = [(k, v) for k in keys for v in newest_first[k]]
    for prefix in ["", "a", "a/", "b/"]:
        for delimiter in ["", "/"]:
            expected = reference_versions(rows, prefix, delimiter)
            for size in (1, 2, 3, 1000):
                got: list[tuple[str, str | None]] = []
                key_marker, vid_marker = "", ""
                for _ in range(500):
                    page = await store.list_versions(
                        b.id,
                        prefix=prefix,
                        delimiter=delimiter,
                        key_marker=key_marker,
                        version_id_marker=vid_marker,
                        max_keys=size,
                    )
                    items = [(e.key, e.version_id) for e in page.entries]
                    items += [(p, None) for p in page.common_prefixes]
                    got.extend(sorted(items, key=lambda item: item[0].encode()) if delimiter else items)
                    if not page.is_truncated:
                        break
                    assert page.next_key_marker is not None
                    key_marker, vid_marker = page.next_key_marker, page.next_version_id_marker or ""
                assert got == expected, (prefix, delimiter, size)
