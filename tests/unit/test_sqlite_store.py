"""SqliteMetadataStore: round trips, byte ordering, S3 listing semantics, seeks, group commit, GC."""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pails.meta.migrate import (
    Migration,
    MigrationError,
    load_migrations,
    migrate_sqlite,
    pending,
    split_sqlite_statements,
)
from pails.meta.models import ChunkRef, ListPage, ObjectVersion
from pails.meta.sqlite import SqliteMetadataStore, byte_successor, decode_manifest, encode_manifest
from pails.meta.store import BucketExists, BucketNotEmptyError, MetadataStore, NoSuchBucketError

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


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteMetadataStore]:
    s = SqliteMetadataStore(tmp_path / "meta" / "pails.db")
    await s.open()
    yield s
    await s.close()


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
    store: SqliteMetadataStore, bucket_id: int, prefix: str, delimiter: str, start_after: str, page_size: int
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


# --- protocol, encoding, migrations ------------------------------------------------------------


def test_implements_protocol(tmp_path: Path) -> None:
    s: MetadataStore = SqliteMetadataStore(tmp_path / "x.db")
    assert s is not None


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


def test_split_statements() -> None:
    sql = """
    -- leading comment; with a semicolon
    CREATE TABLE t (a TEXT DEFAULT ';');  CREATE TABLE u (b);
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); DELETE FROM u; END;
    -- trailing comment
    """
    statements = split_sqlite_statements(sql)
    assert len(statements) == 3
    assert statements[2].startswith("CREATE TRIGGER") and statements[2].endswith("END;")
    conn = sqlite3.connect(":memory:")
    for statement in statements:
        conn.execute(statement)
    with pytest.raises(MigrationError):
        split_sqlite_statements("CREATE TABLE v (a)")


def test_migrations_are_versioned_and_idempotent(tmp_path: Path) -> None:
    migrations = load_migrations("sqlite")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert migrate_sqlite(conn) == len(migrations)
    assert migrate_sqlite(conn) == len(migrations)
    rows = conn.execute("SELECT version, name FROM schema_version").fetchall()
    assert rows == [(1, "initial")]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"buckets", "objects", "gc_queue", "schema_version"} <= tables
    # A later migration is applied on top, once.
    extra = [*migrations, Migration(2, "more", "CREATE TABLE extra (a);")]
    assert migrate_sqlite(conn, extra) == 2
    assert migrate_sqlite(conn, extra) == 2
    # A database newer than the code is refused.
    with pytest.raises(MigrationError):
        migrate_sqlite(conn, migrations)
    with pytest.raises(MigrationError):
        pending(migrations, 99)


# --- buckets -------------------------------------------------------------------------------------


async def test_bucket_round_trip(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("photos", "alice", "us-east-1")
    assert (b.name, b.owner_id, b.region, b.versioning) == ("photos", "alice", "us-east-1", "")
    assert await store.get_bucket("photos") == b
    assert await store.get_bucket("nope") is None
    await store.create_bucket("archive", "bob", "us-east-1")
    await store.create_bucket("zeta", "alice", "us-east-1")
    assert [x.name for x in await store.list_buckets()] == ["archive", "photos", "zeta"]
    assert [x.name for x in await store.list_buckets("alice")] == ["photos", "zeta"]
    assert await store.list_buckets("nobody") == []


async def test_concurrent_creates_one_wins(store: SqliteMetadataStore) -> None:
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


async def test_delete_bucket(store: SqliteMetadataStore) -> None:
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


async def test_put_into_missing_bucket(store: SqliteMetadataStore) -> None:
    with pytest.raises(NoSuchBucketError):
        await store.put_object(version(12345, "k"))


# --- objects ---------------------------------------------------------------------------------------

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


async def test_round_trip_hostile_keys(store: SqliteMetadataStore) -> None:
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


async def test_keys_list_in_utf8_byte_order(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    ordered = ["", "\x00", "a", "a/", "a0", "ab", "é", "ﬀ", "\uffff", "😀"]
    shuffled = ordered[:]
    random.Random(7).shuffle(shuffled)
    await asyncio.gather(*(store.put_object(version(b.id, k)) for k in shuffled))
    page = await store.list_objects(b.id)
    assert [e.key for e in page.entries] == ordered
    assert [e.key for e in page.entries] == sorted(ordered, key=lambda k: k.encode())


async def test_list_entry_fields_and_basic_pagination(store: SqliteMetadataStore) -> None:
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


async def test_delimiter_listing(store: SqliteMetadataStore) -> None:
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


@pytest.fixture(scope="module")
def sync_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[asyncio.Runner, SqliteMetadataStore]]:
    runner = asyncio.Runner()
    s = SqliteMetadataStore(tmp_path_factory.mktemp("hyp") / "pails.db")
    runner.run(s.open())
    yield runner, s
    runner.run(s.close())
    runner.close()


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
    sync_store: tuple[asyncio.Runner, SqliteMetadataStore],
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


async def test_listing_seeks_past_common_prefixes(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    await asyncio.gather(*(store.put_object(version(b.id, f"dir{i % 5}/file{i:05}")) for i in range(5000)))
    statements: list[str] = []
    store.set_read_trace(statements.append)

    page = await store.list_objects(b.id, delimiter="/")
    assert page.common_prefixes == [f"dir{i}/" for i in range(5)] and page.entries == []
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) <= 6, selects  # one seek per common prefix, plus the one that finds the end

    statements.clear()
    page = await store.list_objects(b.id, prefix="dir3/", delimiter="/", max_keys=999)  # of 1000
    assert len(page.entries) == 999 and page.is_truncated
    assert len([s for s in statements if s.startswith("SELECT")]) <= 2

    # start_after inside a huge common prefix: one seek into it, one past it.
    statements.clear()
    page = await store.list_objects(b.id, delimiter="/", start_after="dir2/file00007")
    assert page.common_prefixes == ["dir2/", "dir3/", "dir4/"]
    assert len([s for s in statements if s.startswith("SELECT")]) <= 4
    statements.clear()
    page = await store.list_objects(b.id, delimiter="/", start_after="dir2/")
    assert page.common_prefixes == ["dir3/", "dir4/"]
    assert len([s for s in statements if s.startswith("SELECT")]) <= 4
    store.set_read_trace(None)


async def test_listing_queries_use_the_primary_key(store: SqliteMetadataStore) -> None:
    from pails.meta import sqlite as impl

    conn = sqlite3.connect(store.path)
    for sql in impl._SQL_LIST.values():
        plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, (1,) * sql.count("?")))
        assert "USING PRIMARY KEY (bucket_id=? AND key>" in plan and "TEMP B-TREE" not in plan, plan
    conn.close()


async def test_read_after_write(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")

    async def writer(i: int) -> None:
        obj = version(b.id, f"k{i}", manifest=(chunk(),))
        await store.put_object(obj)
        assert await store.get_object(b.id, obj.key) == obj
        assert obj.key in {e.key for e in (await store.list_objects(b.id, prefix=obj.key)).entries}

    await asyncio.gather(*(writer(i) for i in range(50)))


async def test_monotonic_last_modified(store: SqliteMetadataStore) -> None:
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


async def test_versions_and_delete_markers(store: SqliteMetadataStore) -> None:
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


# --- group commit ----------------------------------------------------------------------------------


async def test_group_commit(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    before = store.commit_count
    n = 200
    await asyncio.gather(*(store.put_object(version(b.id, f"k{i}")) for i in range(n)))
    commits = store.commit_count - before
    assert 1 <= commits <= n // 20, commits
    assert len((await store.list_objects(b.id)).entries) == n


async def test_failing_op_does_not_fail_its_batch(store: SqliteMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    before = store.commit_count
    calls: list[Coroutine[Any, Any, object]] = [store.put_object(version(b.id, f"k{i}")) for i in range(30)]
    calls.insert(15, store.put_object(version(999_999, "orphan")))
    calls.insert(5, store.create_bucket("b", "someone", "r"))
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 2
    assert {type(e) for e in errors} == {NoSuchBucketError, BucketExists}
    assert len((await store.list_objects(b.id)).entries) == 30
    assert store.commit_count - before <= 5


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    s = SqliteMetadataStore(tmp_path / "c.db")
    await s.open()
    await s.close()
    await s.close()
    with pytest.raises(RuntimeError):
        await s.create_bucket("b", "o", "r")
    with pytest.raises(RuntimeError):
        await s.get_bucket("b")


# --- garbage collection ----------------------------------------------------------------------------


async def test_gc_queue_on_overwrite_and_delete(store: SqliteMetadataStore) -> None:
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


async def test_referenced_chunks(store: SqliteMetadataStore) -> None:
    expected: set[bytes] = set()
    for name in ("one", "two"):
        b = await store.create_bucket(name, "o", "r")
        objs = [version(b.id, f"k{i}", manifest=(chunk(), chunk())) for i in range(700)]
        await asyncio.gather(*(store.put_object(o) for o in objs))
        expected |= {ref.chunk_id for o in objs for ref in o.manifest}
    seen = [chunk_id async for chunk_id in store.referenced_chunks()]
    assert len(seen) == len(expected) and set(seen) == expected


# --- durability ------------------------------------------------------------------------------------


async def test_reopen_persists(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    s = SqliteMetadataStore(path)
    await s.open()
    b = await s.create_bucket("b", "o", "r")
    obj = version(b.id, "dir/ключ", manifest=(chunk(),))
    await s.put_object(obj)
    await s.put_object(version(b.id, "dir/ключ", manifest=(chunk(),), lm=obj.last_modified - 10))
    await s.close()

    s2 = SqliteMetadataStore(path)
    await s2.open()
    assert await s2.get_bucket("b") == b
    got = await s2.get_object(b.id, "dir/ключ")
    assert got is not None and got.last_modified > obj.last_modified
    assert (await s2.list_objects(b.id, delimiter="/")).common_prefixes == ["dir/"]
    assert [c for _, c in await s2.take_garbage(5, NOW)] == [obj.manifest[0].chunk_id]
    await s2.close()

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
    conn.close()
