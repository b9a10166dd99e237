"""SqliteMetadataStore only: migrations, statement tracing of listing seeks, query plans, group commit,
reopening. Behaviour shared with PostgreSQL is tested on both in test_metadata_store.py."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest

from pails.meta.migrate import (
    Migration,
    MigrationError,
    load_migrations,
    migrate_sqlite,
    pending,
    split_sqlite_statements,
)
from pails.meta.models import ChunkRef, ObjectVersion
from pails.meta.sqlite import SqliteMetadataStore
from pails.meta.store import BucketExists, MetadataStore, NoSuchBucketError

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


# --- protocol, encoding, migrations ------------------------------------------------------------


def test_implements_protocol(tmp_path: Path) -> None:
    s: MetadataStore = SqliteMetadataStore(tmp_path / "x.db")
    assert s is not None


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
    assert rows == [(m.version, m.name) for m in migrations]
    assert rows[:2] == [(1, "initial"), (2, "multipart")]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"buckets", "objects", "gc_queue", "schema_version"} <= tables
    # A later migration is applied on top, once.
    extra = [*migrations, Migration(len(migrations) + 1, "more", "CREATE TABLE extra (a);")]
    assert migrate_sqlite(conn, extra) == len(extra)
    assert migrate_sqlite(conn, extra) == len(extra)
    # A database newer than the code is refused.
    with pytest.raises(MigrationError):
        migrate_sqlite(conn, migrations)
    with pytest.raises(MigrationError):
        pending(migrations, 99)


# --- listing seeks (statement tracing) -----------------------------------------------------------


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
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == len(
        load_migrations("sqlite")
    )
    conn.close()
