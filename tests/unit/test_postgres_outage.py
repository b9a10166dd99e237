"""PostgresMetadataStore while its database is down: MetadataUnavailableError, then recovery.

The database is a private PostgreSQL (tests/pginstance.py) that the test stops and starts; the
end-to-end counterpart under load is tests/s3/test_postgres_restart.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pginstance import PgInstance, pg_instance

from pails.meta import postgres as impl
from pails.meta.models import ChunkRef, ObjectVersion
from pails.meta.postgres import PostgresMetadataStore
from pails.meta.unavailable import MetadataUnavailableError, outcome_unknown

# serial: stops, crashes and restarts a PostgreSQL server under a connection pool (decision 0020)
pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def pg() -> Iterator[PgInstance]:
    with pg_instance() as instance:
        yield instance


@pytest.fixture
async def store(pg: PgInstance) -> AsyncIterator[PostgresMetadataStore]:
    s = PostgresMetadataStore(pg.dsn, pool_min=2, pool_max=4)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def obj(bucket_id: int, key: str, chunk_id: bytes) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=bucket_id,
        key=key,
        version_id="null",
        size=3,
        etag="e" * 32,
        last_modified=1_700_000_000.0,
        manifest=(ChunkRef(chunk_id, 3),),
    )


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_stopped_database_is_unavailable_then_the_pool_recovers(
    pg: PgInstance, store: PostgresMetadataStore, mode: str
) -> None:
    b = await store.create_bucket(f"b-{mode}", "o", "us-east-1")
    await store.put_object(obj(b.id, "before", b"\x01" * 16))
    await asyncio.to_thread(pg.stop, mode)
    try:
        with pytest.raises(MetadataUnavailableError) as read:
            await store.get_object(b.id, "before")
        with pytest.raises(MetadataUnavailableError) as write:
            await store.create_bucket(f"c-{mode}", "o", "us-east-1")
        # Nothing could be sent: no outcome is in doubt, the writer may free its chunks.
        assert not outcome_unknown(read.value) and not outcome_unknown(write.value)
        with pytest.raises(MetadataUnavailableError):
            await store.ping()
    finally:
        await asyncio.to_thread(pg.start)
    await store.ping()
    got = await store.get_object(b.id, "before")
    assert got is not None and got.manifest[0].chunk_id == b"\x01" * 16
    assert (await store.create_bucket(f"c-{mode}", "o", "us-east-1")).name == f"c-{mode}"


async def test_a_connection_lost_under_an_operation_leaves_its_outcome_unknown(
    store: PostgresMetadataStore,
) -> None:
    async def doomed(conn: Any) -> None:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        async with store.pool.acquire() as other:
            await other.fetchval("SELECT pg_terminate_backend($1)", backend)
        await conn.fetchval("SELECT 1")  # on the connection just killed

    with pytest.raises(MetadataUnavailableError) as lost:
        await store._run(doomed, retry=False)
    assert outcome_unknown(lost.value)
    await store.ping()  # the pool replaced the dead connection


async def test_a_retried_versioned_put_rewrites_its_own_version(store: PostgresMetadataStore) -> None:
    """put_object may run its transaction twice (the first commit's answer lost with the
    connection): with versioning on, both attempts must write one version, not two."""
    b = await store.create_bucket("versioned", "o", "us-east-1")
    await store.set_versioning(b.id, "Enabled")
    o = obj(b.id, "k", b"\x02" * 16)
    async with store.pool.acquire() as conn:
        for _ in range(2):
            async with conn.transaction():
                await impl._write_object_row(conn, o, keep_renamed=True, condition=None, fresh_version="v1")
    page = await store.list_versions(b.id)
    assert [(e.key, e.version_id) for e in page.entries] == [("k", "v1")]
