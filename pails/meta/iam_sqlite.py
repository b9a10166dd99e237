"""The IAM tables on SQLite: reads on the store's reader connection, writes through its group-commit
writer (each statement in its own savepoint, like every other write)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from pails.meta.iam_store import IdentityStore
from pails.meta.sqlite import SqliteMetadataStore


class SqliteRunner:
    def __init__(self, store: SqliteMetadataStore) -> None:
        self._store = store

    async def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._store._read().execute(sql, tuple(args)).fetchall())

    async def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(sql, tuple(args)).rowcount

        return await self._store._write(op)


def sqlite_identity_store(store: SqliteMetadataStore) -> IdentityStore:
    return IdentityStore(SqliteRunner(store))
