"""The metadata store contract, run against every backend (SQLite and PostgreSQL): round trips,
byte ordering, S3 listing semantics (checked against a reference model), buckets, versions, GC.

PostgreSQL runs need a server (see pgtestdb.py): unreachable, they skip, or fail when CI is set.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgtestdb import fresh_database, require_postgres

from pails.meta.encoding import decode_manifest, encode_manifest
from pails.meta.listing import byte_successor
from pails.meta.models import ChunkRef, ListPage, ObjectVersion
from pails.meta.postgres import PostgresMetadataStore
from pails.meta.sqlite import SqliteMetadataStore
from pails.meta.store import BucketExists, BucketNotEmptyError, NoSuchBucketError

Store = SqliteMetadataStore | PostgresMetadataStore
BACKENDS = ["sqlite", "postgres"]

# Far in the future: every queued chunk is old enough to collect.
NOW = 1e12

_ids = itertools.count(1)


def chunk() -> ChunkRef:
    n = next(_ids)
    return ChunkRef(n.to_bytes(16, "big"), n)


def version(bucket_id: int, key: str, *, lm: float = 1_700_000_000.0, **kw: Any) -> ObjectVersion:
    kw.setdefault("version_id", "null")
    kw.setdefault("size", 3)
    kw.setdefault("etag", "e" * 32)
    return ObjectVersion(bucket_id=bucket_id, key=key, last_modified=lm, **kw)


@asynccontextmanager
async def open_store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    """An open store of the given backend on fresh, empty storage (closed and removed after)."""
    if backend == "sqlite":
        s: Store = SqliteMetadataStore(tmp_path / "meta" / "pails.db")
        await s.open()
        try:
            yield s
        finally:
            await s.close()
        return
    async with fresh_database() as dsn:
        s = PostgresMetadataStore(dsn, pool_min=1, pool_max=8)
        await s.open()
        try:
            yield s
        finally:
            await s.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(backend, tmp_path) as s:
        yield s


def merged(page: ListPage) -> list[tuple[str, str]]:
    """A page's keys and common prefixes as one list in UTF-8 byte order (checking each is sorted)."""
    keys = [e.key for e in page.entries]
    assert keys == sorted(keys, key=lambda k: k.encode())
    assert page.common_prefixes == sorted(page.common_prefixes, key=lambda k: k.encode())
    items = [("key", k) for k in keys] + [("prefix", p) for p in page.common_prefixes]
    return sorted(items, key=lambda item: item[1].encode())


def reference_listing(keys: set[str], prefix: str, delimiter: str, start_after: str) -> list[tuple[str, str]]:
    """S3 ListObjects semantics by brute force over UTF-8 bytes, all pages at once."""
    p, d, after = prefix.encode(), delimiter.encode(), start_after.encode()
    items: dict[bytes, str] = {}
    for k in (key.encode() for key in keys):
        if not k.startswith(p) or (after and k <= after):
            continue
        if d and (i := k.find(d, len(p))) >= 0:
            common = k[: i + len(d)]
            if common != after:  # the common prefix that ended the previous page is not repeated
                items[common] = "prefix"
            continue
        items[k] = "key"
    return [(kind, value.decode()) for value, kind in sorted(items.items())]


async def walk(
    store: Store, bucket_id: int, prefix: str, delimiter: str, start_after: str, page_size: int
) -> list[tuple[str, str]]:
    """Paginate with next_marker, checking every page's invariants."""
    out: list[tuple[str, str]] = []
    marker = start_after
    for _ in range(10_000):
        page = await store.list_objects(
            bucket_id, prefix=prefix, delimiter=delimiter, start_after=marker, max_keys=page_size
        )
        items = merged(page)
        assert len(items) <= page_size
        out.extend(items)
        if not page.is_truncated:
            assert page.next_marker is None
            return out
        assert len(items) == page_size
        assert page.next_marker == items[-1][1]
        marker = page.next_marker
    raise AssertionError("pagination does not end")


def test_manifest_encoding() -> None:
    refs = (ChunkRef(b"\x00" * 16, 0), ChunkRef(b"\xff" * 16, 2**63), chunk())
    blob = encode_manifest(refs)
    assert len(blob) == 24 * 3
    assert decode_manifest(blob) == refs
    assert decode_manifest(b"") == ()
    with pytest.raises(ValueError):
        encode_manifest([ChunkRef(b"short", 1)])


def test_byte_successor() -> None:
    assert byte_successor(b"a/") == b"a0"
    assert byte_successor(b"a\xff\xff") == b"b"
    assert byte_successor(b"\xff") is None
    assert byte_successor(b"") is None


async def test_bucket_round_trip(store: Store) -> None:
    b = await store.create_bucket("photos", "alice", "us-east-1")
    assert (b.name, b.owner_id, b.region, b.versioning) == ("photos", "alice", "us-east-1", "")
    assert await store.get_bucket("photos") == b
    assert await store.get_bucket("nope") is None
    await store.create_bucket("archive", "bob", "us-east-1")
    await store.create_bucket("zeta", "alice", "us-east-1")
    assert [x.name for x in await store.list_buckets()] == ["archive", "photos", "zeta"]
    assert [x.name for x in await store.list_buckets("alice")] == ["photos", "zeta"]
    assert await store.list_buckets("nobody") == []


async def test_concurrent_creates_one_wins(store: Store) -> None:
    results = await asyncio.gather(
        *(store.create_bucket("race", f"owner{i}", "us-east-1") for i in range(20)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(losers) == 19
    assert all(isinstance(e, BucketExists) and e.owner_id == winners[0].owner_id for e in losers)
    with pytest.raises(BucketExists) as again:
        await store.create_bucket("race", winners[0].owner_id, "us-east-1")
    assert again.value.owner_id == winners[0].owner_id


async def test_delete_bucket(store: Store) -> None:
    b = await store.create_bucket("full", "alice", "us-east-1")
    await store.put_object(version(b.id, "k"))
    with pytest.raises(BucketNotEmptyError):
        await store.delete_bucket("full")
    assert await store.get_bucket("full") == b
    assert await store.delete_object(b.id, "k")
    await store.delete_bucket("full")
    assert await store.get_bucket("full") is None
    with pytest.raises(NoSuchBucketError):
        await store.delete_bucket("full")
    # The id of a deleted bucket is never given again, and writes to it fail.
    again = await store.create_bucket("full", "bob", "us-east-1")
    assert again.id > b.id
    with pytest.raises(NoSuchBucketError):
        await store.put_object(version(b.id, "late"))
    assert await store.get_object(again.id, "late") is None


async def test_put_into_missing_bucket(store: Store) -> None:
    with pytest.raises(NoSuchBucketError):
        await store.put_object(version(12345, "k"))


HOSTILE_KEYS = [
    "../../etc/passwd",
    "a//b",
    "",
    "😀",
    "\x01",
    "\x00nul",
    "é/è",
    "' OR 1=1; DROP TABLE objects; --",
    "%2F%00",
    "ﬀ\uffff",
    " leading and trailing ",
]


async def test_round_trip_hostile_keys(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    for key in HOSTILE_KEYS:
        obj = version(
            b.id,
            key,
            content_type="text/plain; charset=utf-8",
            headers={"content-encoding": "gzip", "cache-control": "no-cache"},
            user_metadata={"name": "välue 😀", "empty": ""},
            checksums={"CRC32": "AAAAAA=="},
            storage_class="STANDARD_IA",
            manifest=(chunk(), chunk()),
        )
        await store.put_object(obj)
        assert await store.get_object(b.id, key) == obj
    page = await store.list_objects(b.id)
    assert [e.key for e in page.entries] == sorted(HOSTILE_KEYS, key=lambda k: k.encode())
    assert not page.is_truncated


async def test_head_only_reads_everything_but_the_manifest_and_acl(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    obj = version(
        b.id,
        "k",
        headers={"cache-control": "no-cache"},
        user_metadata={"name": "välue"},
        checksums={"CRC32": "AAAAAA=="},
        tags={"t": "1"},
        part_sizes=(5, 3),
        acl='{"grants":[]}',
        manifest=(chunk(), chunk()),
    )
    stored = await store.put_object(obj)
    head = await store.get_object(b.id, "k", head_only=True)
    assert head is not None
    # A store may leave the manifest and the ACL out (SQLite does; PostgreSQL reads the whole row).
    assert replace(head, manifest=stored.manifest, acl=stored.acl) == stored
    assert head.manifest in ((), stored.manifest) and head.acl in ("", stored.acl)
    by_version = await store.get_object(b.id, "k", stored.version_id, head_only=True)
    assert by_version is not None and by_version.etag == stored.etag
    assert await store.get_object(b.id, "nope", head_only=True) is None


async def test_keys_list_in_utf8_byte_order(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    ordered = ["", "\x00", "a", "a/", "a0", "ab", "é", "ﬀ", "\uffff", "😀"]
    shuffled = ordered[:]
    random.Random(7).shuffle(shuffled)
    await asyncio.gather(*(store.put_object(version(b.id, k)) for k in shuffled))
    page = await store.list_objects(b.id)
    assert [e.key for e in page.entries] == ordered
    assert [e.key for e in page.entries] == sorted(ordered, key=lambda k: k.encode())


async def test_list_entry_fields_and_basic_pagination(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.put_object(version(b.id, "x", size=42, etag="abc", lm=1234.5, storage_class="GLACIER"))
    entry = (await store.list_objects(b.id)).entries[0]
    assert (entry.key, entry.size, entry.etag, entry.last_modified, entry.storage_class) == (
        "x",
        42,
        "abc",
        1234.5,
        "GLACIER",
    )
    await asyncio.gather(*(store.put_object(version(b.id, f"k{i:02}")) for i in range(10)))
    assert await store.list_objects(b.id, max_keys=0) == ListPage([], [], False, None)
    assert await store.list_objects(b.id, max_keys=-1) == ListPage([], [], False, None)
    page = await store.list_objects(b.id, prefix="k", max_keys=4)
    assert [e.key for e in page.entries] == ["k00", "k01", "k02", "k03"]
    assert page.is_truncated and page.next_marker == "k03"
    page = await store.list_objects(b.id, prefix="k", start_after="k06", max_keys=3)
    assert [e.key for e in page.entries] == ["k07", "k08", "k09"]
    assert not page.is_truncated and page.next_marker is None
    # start_after before the prefix, and past it.
    assert [e.key for e in (await store.list_objects(b.id, prefix="k0", start_after="a")).entries][:1] == [
        "k00"
    ]
    assert (await store.list_objects(b.id, prefix="k", start_after="l")).entries == []


async def test_delimiter_listing(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    keys = ["asdf", "boo/bar", "boo/baz/xyzzy", "cquux/thud", "cquux/bla", "a--b--c", "a--d", "x"]
    await asyncio.gather(*(store.put_object(version(b.id, k)) for k in keys))
    page = await store.list_objects(b.id, delimiter="/")
    assert [e.key for e in page.entries] == ["a--b--c", "a--d", "asdf", "x"]
    assert page.common_prefixes == ["boo/", "cquux/"]
    page = await store.list_objects(b.id, prefix="boo/", delimiter="/")
    assert [e.key for e in page.entries] == ["boo/bar"]
    assert page.common_prefixes == ["boo/baz/"]
    page = await store.list_objects(b.id, delimiter="--")  # multi-character delimiter
    assert page.common_prefixes == ["a--"]
    page = await store.list_objects(b.id, delimiter="/", max_keys=1, start_after="asdf")
    assert page.common_prefixes == ["boo/"] and page.is_truncated and page.next_marker == "boo/"
    page = await store.list_objects(b.id, delimiter="/", max_keys=1, start_after="boo/")
    assert page.common_prefixes == ["cquux/"] and page.is_truncated and page.next_marker == "cquux/"
    page = await store.list_objects(b.id, delimiter="/", max_keys=1, start_after="cquux/")
    assert [e.key for e in page.entries] == ["x"] and not page.is_truncated
    # start_after inside a common prefix: later keys still roll up into it.
    page = await store.list_objects(b.id, delimiter="/", start_after="boo/bar")
    assert page.common_prefixes == ["boo/", "cquux/"]


ALPHABET = ["a", "b", "/", "-", "é", "😀", "\x00", "\uffff"]


# No empty key: start_after="" means "from the start", so a page cannot end after the empty key
# (S3 forbids empty keys; the round-trip test still stores one).
key_text = st.text(alphabet=st.sampled_from(ALPHABET), min_size=1, max_size=6)


@pytest.fixture(scope="module", params=BACKENDS)
def sync_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[asyncio.Runner, Store]]:
    if request.param == "postgres":
        require_postgres()
    with asyncio.Runner() as runner:
        context = open_store(request.param, tmp_path_factory.mktemp("hyp"))
        s = runner.run(context.__aenter__())
        try:
            yield runner, s
        finally:
            runner.run(context.__aexit__(None, None, None))


_bucket_names = itertools.count()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.sets(key_text, max_size=40),
    deleted=st.sets(key_text, max_size=10),
    prefix=st.text(alphabet=st.sampled_from(ALPHABET), max_size=2),
    delimiter=st.sampled_from(["", "/", "a", "//", "é", "a/", "😀", "-/-"]),
    start_after=st.one_of(st.just(""), key_text, st.text(alphabet=st.sampled_from(ALPHABET), max_size=3)),
    page_size=st.integers(1, 7),
)
def test_listing_matches_reference_model(
    sync_store: tuple[asyncio.Runner, Store],
    keys: set[str],
    deleted: set[str],
    prefix: str,
    delimiter: str,
    start_after: str,
    page_size: int,
) -> None:
    runner, store = sync_store

    async def check() -> None:
        b = await store.create_bucket(f"h{next(_bucket_names)}", "o", "r")
        await asyncio.gather(*(store.put_object(version(b.id, k)) for k in keys))
        await store.delete_objects(b.id, sorted(deleted))
        live = keys - deleted
        expected = reference_listing(live, prefix, delimiter, start_after)
        assert await walk(store, b.id, prefix, delimiter, start_after, page_size) == expected
        one = await store.list_objects(
            b.id, prefix=prefix, delimiter=delimiter, start_after=start_after, max_keys=page_size
        )
        assert merged(one) == expected[:page_size]
        assert one.is_truncated == (len(expected) > page_size)

    runner.run(check())


async def test_read_after_write(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")

    async def writer(i: int) -> None:
        obj = version(b.id, f"k{i}", manifest=(chunk(),))
        await store.put_object(obj)
        assert await store.get_object(b.id, obj.key) == obj
        assert obj.key in {e.key for e in (await store.list_objects(b.id, prefix=obj.key)).entries}

    await asyncio.gather(*(writer(i) for i in range(50)))


async def test_monotonic_last_modified(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.put_object(version(b.id, "k", lm=1_700_000_000.0))
    await store.put_object(version(b.id, "k", lm=1_600_000_000.0))  # a skewed clock
    second = await store.get_object(b.id, "k")
    assert second is not None
    assert 1_700_000_000.0 < second.last_modified < 1_700_000_000.001
    await store.put_object(version(b.id, "k", lm=second.last_modified))
    third = await store.get_object(b.id, "k")
    assert third is not None and third.last_modified > second.last_modified
    await store.put_object(version(b.id, "k", lm=1_800_000_000.0))
    fourth = await store.get_object(b.id, "k")
    assert fourth is not None and fourth.last_modified == 1_800_000_000.0


async def test_versions_and_delete_markers(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    await store.put_object(version(b.id, "k", version_id="v1", etag="one"))
    await store.put_object(version(b.id, "k", version_id="v2", etag="two"))
    latest = await store.get_object(b.id, "k")
    assert latest is not None and (latest.version_id, latest.etag, latest.is_latest) == ("v2", "two", True)
    assert [e.etag for e in (await store.list_objects(b.id)).entries] == ["two"]
    await store.put_object(version(b.id, "k", version_id="v3", size=0, is_delete_marker=True))
    marker = await store.get_object(b.id, "k")
    assert marker is not None and marker.is_delete_marker
    assert (await store.list_objects(b.id)).entries == []
    assert await store.delete_object(b.id, "k") is False  # the latest was a delete marker
    with pytest.raises(BucketNotEmptyError):  # older versions are still rows
        await store.delete_bucket("b")


async def test_closed_store_refuses_work(backend: str, tmp_path: Path) -> None:
    async with open_store(backend, tmp_path) as s:
        pass
    await s.close()
    with pytest.raises(RuntimeError):
        await s.create_bucket("b", "o", "r")
    with pytest.raises(RuntimeError):
        await s.get_bucket("b")


async def test_gc_queue_on_overwrite_and_delete(store: Store) -> None:
    b = await store.create_bucket("b", "o", "r")
    c1, c2, c3, c4 = chunk(), chunk(), chunk(), chunk()
    await store.put_object(version(b.id, "k", manifest=(c1, c2)))
    assert await store.take_garbage(10, NOW) == []
    await store.put_object(version(b.id, "k", manifest=(c2, c3)))  # c2 is kept by the new version
    # Chunks queued just now are held back while readers may still stream them.
    assert await store.take_garbage(10, time.time() - 60) == []
    garbage = await store.take_garbage(10, NOW)
    assert [c for _, c in garbage] == [c1.chunk_id]
    await store.put_object(version(b.id, "other", manifest=(c4,)))
    assert await store.delete_objects(b.id, ["k", "missing", "other"]) == [True, False, True]
    garbage = await store.take_garbage(10, NOW)
    assert [c for _, c in garbage] == [c1.chunk_id, c2.chunk_id, c3.chunk_id, c4.chunk_id]
    assert await store.take_garbage(2, NOW) == garbage[:2]
    assert await store.take_garbage(0, NOW) == []
    await store.ack_garbage([qid for qid, _ in garbage[:3]])
    assert await store.take_garbage(10, NOW) == garbage[3:]
    await store.ack_garbage([garbage[3][0]])
    await store.ack_garbage([])
    assert await store.take_garbage(10, NOW) == []
    # Queue ids are never reused.
    await store.put_object(version(b.id, "z", manifest=(chunk(),)))
    await store.delete_object(b.id, "z")
    assert (await store.take_garbage(1, NOW))[0][0] > garbage[-1][0]


async def test_referenced_chunks(store: Store) -> None:
    expected: set[bytes] = set()
    for name in ("one", "two"):
        b = await store.create_bucket(name, "o", "r")
        objs = [version(b.id, f"k{i}", manifest=(chunk(), chunk())) for i in range(700)]
        await asyncio.gather(*(store.put_object(o) for o in objs))
        expected |= {ref.chunk_id for o in objs for ref in o.manifest}
    seen = [chunk_id async for chunk_id in store.referenced_chunks()]
    assert len(seen) == len(expected) and set(seen) == expected
