"""AccessStore on PostgreSQL (mixed into PostgresMetadataStore)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pails.meta.access import BucketAccess
from pails.meta.rows import BUCKET_COLS, bucket_of
from pails.meta.store import NoSuchBucketError

T = TypeVar("T")

_SQL_GET = f"SELECT {BUCKET_COLS}, policy_json, acl::text, public_access_block FROM buckets WHERE name = $1"
_SQL_SET = {
    "policy": "UPDATE buckets SET policy_json = $2 WHERE id = $1 RETURNING id",
    "acl": "UPDATE buckets SET acl = $2::jsonb WHERE id = $1 RETURNING id",
    "pab": "UPDATE buckets SET public_access_block = $2 WHERE id = $1 RETURNING id",
}
_SQL_ACL_LATEST = (
    "UPDATE objects SET acl = $1 WHERE bucket_id = $2 AND key = $3 AND is_latest "
    "AND NOT is_delete_marker RETURNING version_id"
)
_SQL_ACL_VERSION = (
    "UPDATE objects SET acl = $1 WHERE bucket_id = $2 AND key = $3 AND version_id = $4 "
    "AND NOT is_delete_marker RETURNING version_id"
)


class PostgresAccess:
    if TYPE_CHECKING:

        async def _run(self, op: Callable[[Any], Awaitable[T]], *, retry: bool) -> T: ...

    async def get_bucket_access(self, name: str) -> BucketAccess | None:
        async def op(conn: Any) -> BucketAccess | None:
            row = await conn.fetchrow(_SQL_GET, name)
            if row is None:
                return None
            return BucketAccess(bucket_of(row), row[6], row[7], row[8])

        return await self._run(op, retry=True)

    async def _set(self, what: str, bucket_id: int, value: str | None) -> None:
        async def op(conn: Any) -> None:
            if await conn.fetchval(_SQL_SET[what], bucket_id, value) is None:
                raise NoSuchBucketError(bucket_id)

        # Setting the same value again is harmless: retried after a lost connection.
        await self._run(op, retry=True)

    async def set_bucket_policy(self, bucket_id: int, policy: str | None) -> None:
        await self._set("policy", bucket_id, policy)

    async def set_bucket_acl(self, bucket_id: int, acl: str) -> None:
        await self._set("acl", bucket_id, acl)

    async def set_public_access_block(self, bucket_id: int, config: str | None) -> None:
        await self._set("pab", bucket_id, config)

    async def set_object_acl(self, bucket_id: int, key: str, version_id: str | None, acl: str) -> str | None:
        async def op(conn: Any) -> str | None:
            raw = key.encode("utf-8")
            if version_id is None:
                value = await conn.fetchval(_SQL_ACL_LATEST, acl, bucket_id, raw)
            else:
                value = await conn.fetchval(_SQL_ACL_VERSION, acl, bucket_id, raw, version_id)
            return None if value is None else str(value)

        return await self._run(op, retry=True)
