"""ClusterStore on PostgreSQL (several gateways share it; see pails/meta/cluster.py).

Membership changes take a transaction-scoped advisory lock, so two gateways changing membership
at once write consecutive ring versions; the lease is one conditional upsert.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import asyncpg

from pails.data.ring import Ring
from pails.meta.cluster import (
    MemberState,
    NodeExistsError,
    NodeRecord,
    NoSuchNodeError,
    RepairItem,
    check_weight,
    new_node_id,
    ring_of,
)
from pails.meta.migrate import migrate_postgres

_NODE_COLS = "node_id, address, zone, weight, state, added_at, changed_at"
_RING_LOCK = 0x7061696C7301  # "pails" + 1: serialises membership changes


def _node(row: Any) -> NodeRecord:
    return NodeRecord(
        str(row[0]), str(row[1]), str(row[2]), float(row[3]), cast(MemberState, row[4]), row[5], row[6]
    )


class PostgresClusterStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool: Any = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        conn = await asyncpg.connect(self.dsn)
        try:
            await migrate_postgres(conn)
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=4, server_settings={"application_name": "pails-cluster"}
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("the cluster store is not open")
        return self._pool

    async def list_nodes(self, *, include_removed: bool = False) -> list[NodeRecord]:
        where = "" if include_removed else " WHERE state <> 'removed'"
        rows = await self.pool.fetch(f"SELECT {_NODE_COLS} FROM nodes{where} ORDER BY added_at, node_id")
        return [_node(r) for r in rows]

    @staticmethod
    async def _next_ring(conn: Any, now: float) -> Ring:
        rows = await conn.fetch(f"SELECT {_NODE_COLS} FROM nodes WHERE state <> 'removed'")
        version = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM ring")) + 1
        ring = ring_of((_node(r) for r in rows), version)
        await conn.execute(
            "INSERT INTO ring (version, layout, created_at) VALUES ($1, $2, $3)", version, ring.to_json(), now
        )
        return ring

    async def add_node(self, address: str, zone: str, weight: float) -> tuple[NodeRecord, Ring]:
        check_weight(weight)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _RING_LOCK)
            now = time.time()
            record = NodeRecord(new_node_id(), address, zone, weight, "active", now, now)
            try:
                await conn.execute(
                    f"INSERT INTO nodes ({_NODE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    record.node_id,
                    address,
                    zone,
                    weight,
                    "active",
                    now,
                    now,
                )
            except asyncpg.UniqueViolationError:
                raise NodeExistsError(address) from None
            return record, await self._next_ring(conn, now)

    async def set_node_state(self, ref: str, state: MemberState) -> tuple[NodeRecord, Ring]:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _RING_LOCK)
            now = time.time()
            row = await conn.fetchrow(
                f"UPDATE nodes SET state = $2, changed_at = $3 "
                f"WHERE (node_id = $1 OR address = $1) AND state <> 'removed' RETURNING {_NODE_COLS}",
                ref,
                state,
                now,
            )
            if row is None:
                raise NoSuchNodeError(ref)
            return _node(row), await self._next_ring(conn, now)

    async def rings(self, limit: int = 2) -> list[Ring]:
        rows = await self.pool.fetch("SELECT layout FROM ring ORDER BY version DESC LIMIT $1", limit)
        return [Ring.from_json(str(r[0])) for r in rows]

    async def queue_repairs(self, items: Sequence[tuple[bytes, str, str]]) -> None:
        if not items:
            return
        now = time.time()
        await self.pool.executemany(
            "INSERT INTO repair_queue (chunk_id, node_id, reason, queued_at) VALUES ($1, $2, $3, $4)",
            [(c, n, r, now) for c, n, r in items],
        )

    async def take_repairs(self, limit: int) -> list[RepairItem]:
        rows = await self.pool.fetch(
            "SELECT id, chunk_id, node_id, reason, queued_at FROM repair_queue ORDER BY id LIMIT $1", limit
        )
        return [RepairItem(int(r[0]), bytes(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in rows]

    async def ack_repairs(self, ids: Sequence[int]) -> None:
        if ids:
            await self.pool.execute("DELETE FROM repair_queue WHERE id = ANY($1::bigint[])", list(ids))

    async def repair_backlog(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT node_id, COUNT(*) FROM repair_queue GROUP BY node_id")
        return {str(r[0]): int(r[1]) for r in rows}

    async def acquire_lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        got = await self.pool.fetchval(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
            "WHERE leases.holder = excluded.holder OR leases.expires_at < $4 RETURNING holder",
            name,
            holder,
            now + ttl,
            now,
        )
        return bool(got == holder)

    async def release_lease(self, name: str, holder: str) -> None:
        await self.pool.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)
