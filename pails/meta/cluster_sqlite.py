"""ClusterStore on the SQLite metadata file (one gateway; see pails/meta/cluster.py).

Membership changes are rare and the repair queue is small, so this store has its own connection
(WAL lets it write beside the object store's writer thread; busy_timeout waits for its commits)
and runs each operation in a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar, cast

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
from pails.meta.migrate import migrate_sqlite

T = TypeVar("T")

_NODE_COLS = "node_id, address, zone, weight, state, added_at, changed_at"


def _node(row: Sequence[object]) -> NodeRecord:
    return NodeRecord(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        float(cast(float, row[3])),
        cast(MemberState, str(row[4])),
        float(cast(float, row[5])),
        float(cast(float, row[6])),
    )


class SqliteClusterStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA busy_timeout = 10000")
                migrate_sqlite(conn)
            except BaseException:
                conn.close()
                raise
            return conn

        if self._conn is None:
            self._conn = await asyncio.to_thread(connect)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _run(self, op: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the cluster store is not open")

        def call() -> T:
            with self._lock:
                if not write:
                    return op(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = op(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result

        return await asyncio.to_thread(call)

    # membership

    async def list_nodes(self, *, include_removed: bool = False) -> list[NodeRecord]:
        where = "" if include_removed else " WHERE state <> 'removed'"

        def op(conn: sqlite3.Connection) -> list[NodeRecord]:
            rows = conn.execute(f"SELECT {_NODE_COLS} FROM nodes{where} ORDER BY added_at, node_id")
            return [_node(row) for row in rows.fetchall()]

        return await self._run(op)

    @staticmethod
    def _next_ring(conn: sqlite3.Connection, now: float) -> Ring:
        rows = conn.execute(f"SELECT {_NODE_COLS} FROM nodes WHERE state <> 'removed'").fetchall()
        version = int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM ring").fetchone()[0]) + 1
        ring = ring_of((_node(r) for r in rows), version)
        conn.execute(
            "INSERT INTO ring (version, layout, created_at) VALUES (?, ?, ?)", (version, ring.to_json(), now)
        )
        return ring

    async def add_node(self, address: str, zone: str, weight: float) -> tuple[NodeRecord, Ring]:
        check_weight(weight)

        def op(conn: sqlite3.Connection) -> tuple[NodeRecord, Ring]:
            now = time.time()
            taken = conn.execute(
                "SELECT 1 FROM nodes WHERE address = ? AND state <> 'removed'", (address,)
            ).fetchone()
            if taken is not None:
                raise NodeExistsError(address)
            record = NodeRecord(new_node_id(), address, zone, weight, "active", now, now)
            conn.execute(
                f"INSERT INTO nodes ({_NODE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.node_id, address, zone, weight, "active", now, now),
            )
            return record, self._next_ring(conn, now)

        return await self._run(op, write=True)

    async def set_node_state(self, ref: str, state: MemberState) -> tuple[NodeRecord, Ring]:
        def op(conn: sqlite3.Connection) -> tuple[NodeRecord, Ring]:
            now = time.time()
            row = conn.execute(
                f"SELECT {_NODE_COLS} FROM nodes WHERE (node_id = ? OR address = ?) AND state <> 'removed'",
                (ref, ref),
            ).fetchone()
            if row is None:
                raise NoSuchNodeError(ref)
            node = _node(row)
            conn.execute(
                "UPDATE nodes SET state = ?, changed_at = ? WHERE node_id = ?", (state, now, node.node_id)
            )
            updated = NodeRecord(
                node.node_id, node.address, node.zone, node.weight, state, node.added_at, now
            )
            return updated, self._next_ring(conn, now)

        return await self._run(op, write=True)

    async def rings(self, limit: int = 2) -> list[Ring]:
        def op(conn: sqlite3.Connection) -> list[Ring]:
            rows = conn.execute("SELECT layout FROM ring ORDER BY version DESC LIMIT ?", (limit,))
            return [Ring.from_json(str(row[0])) for row in rows.fetchall()]

        return await self._run(op)

    # repairs

    async def queue_repairs(self, items: Sequence[tuple[bytes, str, str]]) -> None:
        if not items:
            return
        now = time.time()
        rows = [(chunk_id, node_id, reason, now) for chunk_id, node_id, reason in items]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO repair_queue (chunk_id, node_id, reason, queued_at) VALUES (?, ?, ?, ?)", rows
            )

        await self._run(op, write=True)

    async def take_repairs(self, limit: int) -> list[RepairItem]:
        def op(conn: sqlite3.Connection) -> list[RepairItem]:
            rows = conn.execute(
                "SELECT id, chunk_id, node_id, reason, queued_at FROM repair_queue ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            return [RepairItem(int(r[0]), bytes(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in rows]

        return await self._run(op)

    async def ack_repairs(self, ids: Sequence[int]) -> None:
        if not ids:
            return

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM repair_queue WHERE id = ?", [(i,) for i in ids])

        await self._run(op, write=True)

    async def repair_backlog(self) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT node_id, COUNT(*) FROM repair_queue GROUP BY node_id").fetchall()
            return {str(r[0]): int(r[1]) for r in rows}

        return await self._run(op)

    # the background lease

    async def acquire_lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            conn.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE leases.holder = excluded.holder OR leases.expires_at < ?",
                (name, holder, now + ttl, now),
            )
            row = conn.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
            return row is not None and str(row[0]) == holder

        return await self._run(op, write=True)

    async def release_lease(self, name: str, holder: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

        await self._run(op, write=True)
