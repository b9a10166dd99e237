"""PostgresMetadataStore only: races decided by the database, query plans, lost connections,
migrations. Behaviour shared with SQLite is tested on both in test_metadata_store.py."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from pgtestdb import create_database, drop_database, fresh_database, require_postgres

from pails.meta import postgres as impl
from pails.meta.migrate import Migration, MigrationError, load_migrations, migrate_postgres
from pails.meta.models import ChunkRef, ObjectVersion, SharedChunks, WriteCondition
from pails.meta.postgres import PostgresMetadataStore
from pails.meta.store import BucketExists, PreconditionFailedError, SourceChangedError
from pails.meta.unavailable import MetadataUnavailableError

NOW = 1e12
_ids = itertools.count(1)


def chunk() -> ChunkRef:
    n = next(_ids)
    return ChunkRef(n.to_bytes(16, "big"), n)


def version(bucket_id: int, key: str, **kw: Any) -> ObjectVersion:
    kw.setdefault("version_id", "null")
    kw.setdefault("size", 3)
    kw.setdefault("etag", "e" * 32)
    kw.setdefault("last_modified", 1_700_000_000.0)
    return ObjectVersion(bucket_id=bucket_id, key=key, **kw)


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    async with fresh_database() as url:
        yield url


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[PostgresMetadataStore]:
    s = PostgresMetadataStore(dsn, pool_min=2, pool_max=16)
    await s.open()
    yield s
    await s.close()


# --- races the database decides -----------------------------------------------------------------


async def test_50_concurrent_creates_of_one_name_one_wins(store: PostgresMetadataStore) -> None:
    results = await asyncio.gather(
        *(store.create_bucket("race", f"owner{i}", "us-east-1") for i in range(50)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1, results
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(losers) == 49
    assert all(isinstance(e, BucketExists) and e.owner_id == winners[0].owner_id for e in losers), losers
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM buckets WHERE name = 'race'") == 1


async def test_concurrent_overwrites_queue_every_replaced_chunk_once(store: PostgresMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    objs = [version(b.id, "hot", etag=f"{i:032}", manifest=(chunk(),)) for i in range(40)]
    await asyncio.gather(*(store.put_object(o) for o in objs))
    final = await store.get_object(b.id, "hot")
    assert final is not None
    garbage = {c for _, c in await store.take_garbage(1000, NOW)}
    written = {o.manifest[0].chunk_id for o in objs}
    # Every version but the survivor was replaced exactly once, by someone holding its row lock.
    assert garbage == written - {final.manifest[0].chunk_id}
    assert len(await store.take_garbage(1000, NOW)) == len(objs) - 1


async def test_concurrent_versions_leave_one_latest(store: PostgresMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    await asyncio.gather(*(store.put_object(version(b.id, "k", version_id=f"v{i:02}")) for i in range(30)))
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT version_id, is_latest, last_modified FROM objects WHERE key = 'k'::bytea"
        )
    assert len(rows) == 30
    latest = [r for r in rows if r["is_latest"]]
    assert len(latest) == 1
    # The latest is the one committed last: its last_modified is strictly the greatest.
    assert latest[0]["last_modified"] == max(r["last_modified"] for r in rows)
    assert len({r["last_modified"] for r in rows}) == 30


# --- query plans ---------------------------------------------------------------------------------


async def test_listing_queries_use_an_index_not_a_seq_scan(store: PostgresMetadataStore) -> None:
    buckets = [await store.create_bucket(f"b{i}", "o", "r") for i in range(3)]
    target = buckets[1].id
    manifest = b"\x00" * 24
    async with store.pool.acquire() as conn:
        for bucket in buckets:
            records = [
                (bucket.id, f"dir{i % 7}/file{i:06}".encode(), "null", 10, "e", "t", 1.0, manifest)
                for i in range(20_000)
            ]
            await conn.copy_records_to_table(
                "objects",
                records=records,
                columns=[
                    "bucket_id",
                    "key",
                    "version_id",
                    "size",
                    "etag",
                    "content_type",
                    "last_modified",
                    "manifest",
                ],
            )
        await conn.execute("ANALYZE objects")
        for (inclusive, bounded), sql in impl._SQL_LIST.items():
            args: list[object] = [target, b"dir3/" if inclusive else b"dir3/file000100", 1001]
            if bounded:
                args.append(b"dir30")
            for mode in ("force_custom_plan", "force_generic_plan"):
                await conn.execute(f"SET plan_cache_mode = {mode}")
                plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
                assert "Index" in plan and "Seq Scan" not in plan and "Sort" not in plan, (mode, plan)
                assert "Bitmap" not in plan, (mode, plan)
        await conn.execute("RESET plan_cache_mode")
    page = await store.list_objects(target, prefix="dir3/", max_keys=5)
    assert [e.key for e in page.entries] == [f"dir3/file{i:06}" for i in (3, 10, 17, 24, 31)]
    page = await store.list_objects(target, delimiter="/")
    assert page.common_prefixes == [f"dir{i}/" for i in range(7)]


# --- lost connections ------------------------------------------------------------------------------

# A lost connection the store's retries do not hide surfaces as this one error (HTTP 503).
_CLEAN_FAILURES = (MetadataUnavailableError,)


async def test_terminated_connections_fail_cleanly_and_the_pool_recovers(
    store: PostgresMetadataStore, dsn: str
) -> None:
    b = await store.create_bucket("b", "o", "r")
    database = dsn.rsplit("/", 1)[1]
    stop = asyncio.Event()
    done: list[int] = [0]
    failures: list[BaseException] = []

    async def worker(n: int) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            try:
                key = f"w{n}/k{i % 50}"
                await store.put_object(version(b.id, key, manifest=(chunk(),)))
                await store.get_object(b.id, key)
                await store.list_objects(b.id, prefix=f"w{n}/", delimiter="/", max_keys=20)
                done[0] += 1
            except _CLEAN_FAILURES as exc:
                failures.append(exc)

    async def killer() -> None:
        admin = await asyncpg.connect(dsn)
        try:
            for _ in range(5):
                await asyncio.sleep(0.2)
                await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    database,
                )
        finally:
            await admin.close()
        stop.set()

    before = time.monotonic()
    await asyncio.wait_for(asyncio.gather(killer(), *(worker(n) for n in range(16))), timeout=60)
    assert time.monotonic() - before < 30
    assert done[0] > 50  # work went on between the kills
    # Whatever failed, failed with a connection error (no hang, no corrupted state); the retries
    # keep these few.
    assert len(failures) < done[0], failures[:5]

    # The pool replaced the dead connections: everything works again, on every connection.
    async def check(i: int) -> None:
        obj = version(b.id, f"after/{i}", manifest=(chunk(),))
        await store.put_object(obj)
        assert await store.get_object(b.id, obj.key) == obj

    await asyncio.gather(*(check(i) for i in range(32)))
    assert len((await store.list_objects(b.id, prefix="after/")).entries) == 32
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1


# --- migrations ------------------------------------------------------------------------------------


async def _tables(conn: Any) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' ORDER BY c.relname"
    )
    return [(r[0], r[1]) for r in rows]


async def test_migrations_from_empty_and_rerun_is_a_no_op(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert await _tables(conn) == []
        latest = len(load_migrations("postgres"))
        assert await migrate_postgres(conn) == latest
        schema = await _tables(conn)
        rows = await conn.fetch("SELECT version, name FROM schema_version ORDER BY version")
        assert (rows[0][0], rows[0][1]) == (1, "initial")
        partitions = await conn.fetch(
            "SELECT p.relname, count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relkind = 'p' GROUP BY p.relname ORDER BY p.relname"
        )
        assert {(r[0], r[1]) for r in partitions} >= {("gc_queue", 16), ("objects", 16)}
        keys = await conn.fetch(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'p' AND conrelid::regclass::text IN ('objects', 'gc_queue')"
        )
        assert all("bucket_id" in r[1] for r in keys) and len(keys) == 2
        # Again: nothing applied, nothing changed.
        assert await migrate_postgres(conn) == latest
        assert await _tables(conn) == schema
        assert await conn.fetchval("SELECT count(*) FROM schema_version") == latest
        # A later migration goes on top, once; a database newer than the code is refused.
        extra = [*load_migrations("postgres"), Migration(latest + 1, "more", "CREATE TABLE extra (a int);")]
        assert await migrate_postgres(conn, extra) == latest + 1
        assert await migrate_postgres(conn, extra) == latest + 1
        with pytest.raises(MigrationError):
            await migrate_postgres(conn)
    finally:
        await conn.close()


async def test_gateways_starting_at_once_migrate_once() -> None:
    require_postgres()
    name, url = await create_database()
    try:
        stores = [PostgresMetadataStore(url, pool_min=1, pool_max=2) for _ in range(6)]
        await asyncio.gather(*(s.open() for s in stores))
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM schema_version") == len(
                load_migrations("postgres")
            )
        finally:
            await conn.close()
        b = await stores[0].create_bucket("shared", "o", "r")
        await stores[1].put_object(version(b.id, "k"))
        assert await stores[2].get_object(b.id, "k") is not None
        await asyncio.gather(*(s.close() for s in stores))
    finally:
        await drop_database(name)


async def test_concurrent_if_none_match_puts_one_wins(store: PostgresMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    results = await asyncio.gather(
        *(
            store.put_object(
                version(b.id, "once", etag=f"{i:032}"), condition=WriteCondition(if_none_match=True)
            )
            for i in range(30)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ObjectVersion)]
    assert len(winners) == 1, results
    assert all(isinstance(r, PreconditionFailedError) for r in results if r is not winners[0])
    stored = await store.get_object(b.id, "once")
    assert stored is not None and stored.etag == winners[0].etag


async def test_copies_racing_deletes_never_queue_a_referenced_chunk(store: PostgresMetadataStore) -> None:
    b = await store.create_bucket("b", "o", "r")
    for round_ in range(5):
        manifest = (chunk(), chunk())
        src = f"src{round_}"
        await store.put_object(version(b.id, src, manifest=manifest))
        share = SharedChunks(b.id, src, manifest, tuple(r.chunk_id for r in manifest))

        async def copy(i: int, src: str = src, share: SharedChunks = share) -> None:
            try:
                await store.put_object(
                    version(b.id, f"{src}-copy{i}", manifest=share.source_manifest), shared=share
                )
            except SourceChangedError:
                pass

        await asyncio.gather(*(copy(i) for i in range(8)), store.delete_object(b.id, src))
    referenced = {c async for c in store.referenced_chunks()}
    queued = {c for _, c in await store.take_garbage(10_000, NOW)}
    assert not referenced & queued
    # Deleting every copy frees every chunk exactly when its last reference goes.
    page = await store.list_objects(b.id)
    await store.delete_objects(b.id, [e.key for e in page.entries])
    queued_now = {c for _, c in await store.take_garbage(10_000, NOW)}
    assert referenced <= queued_now
