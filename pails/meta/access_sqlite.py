"""AccessStore on SQLite (mixed into SqliteMetadataStore)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pails.meta.access import BucketAccess
from pails.meta.rows import BUCKET_COLS, bucket_of
from pails.meta.store import NoSuchBucketError

T = TypeVar("T")

_SQL_GET = f"SELECT {BUCKET_COLS}, policy_json, acl, public_access_block FROM buckets WHERE name = ?"
_SQL_SET = {
    "policy": "UPDATE buckets SET policy_json = ? WHERE id = ?",
    "acl": "UPDATE buckets SET acl = ? WHERE id = ?",
    "pab": "UPDATE buckets SET public_access_block = ? WHERE id = ?",
}
_SQL_ACL_LATEST = (
    "UPDATE objects SET acl = ? WHERE bucket_id = ? AND key = ? AND is_latest = 1 "
    "AND is_delete_marker = 0 RETURNING version_id"
)
_SQL_ACL_VERSION = (
    "UPDATE objects SET acl = ? WHERE bucket_id = ? AND key = ? AND version_id = ? "
    "AND is_delete_marker = 0 RETURNING version_id"
)


class SqliteAccess:
    if TYPE_CHECKING:

        def _read(self) -> sqlite3.Connection: ...

        async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T: ...

    async def get_bucket_access(self, name: str) -> BucketAccess | None:
        row = self._read().execute(_SQL_GET, (name,)).fetchone()
        if row is None:
            return None
        return BucketAccess(bucket_of(row), row[6], row[7], row[8])

    async def _set(self, what: str, bucket_id: int, value: str | None) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(_SQL_SET[what], (value, bucket_id)).rowcount == 0:
                raise NoSuchBucketError(bucket_id)

        await self._write(op)

    async def set_bucket_policy(self, bucket_id: int, policy: str | None) -> None:
        await self._set("policy", bucket_id, policy)

    async def set_bucket_acl(self, bucket_id: int, acl: str) -> None:
        await self._set("acl", bucket_id, acl)

    async def set_public_access_block(self, bucket_id: int, config: str | None) -> None:
        await self._set("pab", bucket_id, config)

    async def set_object_acl(self, bucket_id: int, key: str, version_id: str | None, acl: str) -> str | None:
        params: tuple[object, ...] = (acl, bucket_id, key.encode("utf-8"))

        def op(conn: sqlite3.Connection) -> str | None:
            if version_id is None:
                row = conn.execute(_SQL_ACL_LATEST, params).fetchone()
            else:
                row = conn.execute(_SQL_ACL_VERSION, (*params, version_id)).fetchone()
            return None if row is None else str(row[0])

        return await self._write(op)
