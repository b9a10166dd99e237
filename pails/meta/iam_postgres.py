"""The IAM tables on PostgreSQL: the shared SQL with `$n` placeholders and PostgreSQL type names."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from pails.meta.iam_store import IdentityStore
from pails.meta.postgres import PostgresMetadataStore

_TYPES = {"TEXT": "text", "BLOB": "bytea", "REAL": "double precision"}
_TOKEN = re.compile(r"\?|AS (TEXT|BLOB|REAL)\)")


@functools.lru_cache(maxsize=256)
def to_postgres(sql: str) -> str:
    """`?` -> `$1, $2, ...`; CAST(x AS BLOB) -> CAST(x AS bytea) (the SQL has no `?` in literals)."""
    counter = iter(range(1, 1000))

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "?":
            return f"${next(counter)}"
        return f"AS {_TYPES[match.group(1)]})"

    return _TOKEN.sub(replace, sql)


class PostgresRunner:
    def __init__(self, store: PostgresMetadataStore) -> None:
        self._store = store

    async def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async def op(conn: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in await conn.fetch(to_postgres(sql), *args)]

        return await self._store._run(op, retry=True)

    async def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        async def op(conn: Any) -> int:
            status: str = await conn.execute(to_postgres(sql), *args)
            tail = status.rsplit(" ", 1)[-1]
            return int(tail) if tail.isdigit() else 0

        return await self._store._run(op, retry=False)


def postgres_identity_store(store: PostgresMetadataStore) -> IdentityStore:
    return IdentityStore(PostgresRunner(store))
