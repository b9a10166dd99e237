"""The shared metadata store: PostgreSQL through an asyncpg pool, for many gateways at once.

Semantics are those of SqliteMetadataStore (pails/meta/store.py is the contract). Every rule that
two gateways could race on is enforced by the database, never by read-then-write in Python:

- bucket names: a UNIQUE constraint and INSERT ... ON CONFLICT DO NOTHING;
- a write into a deleted bucket, deleting a non-empty bucket: the foreign keys to buckets, and
  delete_bucket's FOR UPDATE on the bucket row (which waits for, and then blocks, writers);
- replacing a version: its row is locked (SELECT ... FOR UPDATE) before its chunks are released;
  a first insert races through INSERT ... ON CONFLICT DO NOTHING (the loser's transaction is
  retried and then finds, and locks, the winner's row); "one latest version per key" is a
  partial unique index; conditions (If-Match / If-None-Match) are checked under those locks;
- multipart: every write to an upload locks its row (FOR NO KEY UPDATE), so parts, completion
  and abort of one upload are serialised; a copy's source row is locked FOR SHARE while its chunks
  gain references;
- chunk references: one set-based statement per release (see _SQL_RELEASE).

The store holds no state besides the pool, so any number of gateways can share one database.
Keys are bytea (their UTF-8 bytes): the primary key (bucket_id, key, version_id) orders them the
way S3 does, and listings seek on it (pails.meta.listing plans the seeks).

Connection failures (a restarted server, pg_terminate_backend): while no connection can be opened,
an operation waits for the database for up to _UNREACHABLE_WAIT seconds (nothing was sent yet); a
connection lost under an operation is retried on a fresh one for reads and idempotent writes
(put_object, complete_upload, ack_garbage). Otherwise the operation fails with
MetadataUnavailableError (HTTP 503). The pool replaces dead connections by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

import asyncpg
from asyncpg import exceptions as pgerr

from pails.meta.access_postgres import PostgresAccess
from pails.meta.encoding import dumps, dumps_sizes, encode_manifest, loads, manifest_chunk_ids
from pails.meta.listing import KeyIdListingPlan, ListingPlan, ListQuery, VersionPlan, VersionQuery
from pails.meta.migrate import migrate_postgres
from pails.meta.models import (
    Bucket,
    DeleteOutcome,
    ListPage,
    ObjectVersion,
    Part,
    SharedChunks,
    Upload,
    UploadPage,
    VersionPage,
    WriteCondition,
)
from pails.meta.rows import (
    BUCKET_COLS,
    OBJECT_COLS,
    PART_COLS,
    UPLOAD_COLS,
    bucket_of,
    object_of,
    part_of,
    upload_checksum_column,
    upload_of,
)
from pails.meta.rules import (
    assemble_parts,
    check_write_condition,
    completed_object,
    completion_retry,
    new_version_id,
    version_for_write,
)
from pails.meta.store import (
    BucketExists,
    BucketNotEmptyError,
    NoSuchBucketError,
    NoSuchUploadError,
    SourceChangedError,
)
from pails.meta.unavailable import MetadataUnavailableError

T = TypeVar("T")
log = logging.getLogger("pails.meta.postgres")

_ATTEMPTS = 3  # for operations that may be retried after a lost connection
_UNREACHABLE_WAIT = 1.0  # seconds to wait for a connection (a restart) before answering 503
_CONNECT_TIMEOUT = 5.0  # seconds, per new connection (a database that does not answer at all)
_PING_TIMEOUT = 2.0  # seconds, for the readiness probe
_RACE_ATTEMPTS = 50  # transactions re-run after losing a race on one key
_SCAN_BATCH = 500
_UPLOAD_BATCH = 200
_FIRST_DELIMITED_FETCH = 8  # rows; a delimited listing often re-seeks after the first row

# Errors after which the same operation may succeed on another connection.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pgerr.PostgresConnectionError,  # 08xxx, ConnectionDoesNotExistError
    pgerr.OperatorInterventionError,  # 57xxx: admin shutdown, pg_terminate_backend, cannot connect now
    pgerr.TransactionRollbackError,  # 40001 serialization failure, 40P01 deadlock
    pgerr.InterfaceError,
    pgerr.InternalClientError,  # e.g. a protocol state confused by a connection killed mid-query
    ConnectionError,
    OSError,
)

# --- SQL -----------------------------------------------------------------------------------------

_SQL_BUCKET_BY_NAME = f"SELECT {BUCKET_COLS} FROM buckets WHERE name = $1"
_SQL_BUCKETS_ALL = f"SELECT {BUCKET_COLS} FROM buckets ORDER BY name"
_SQL_BUCKETS_OF = f"SELECT {BUCKET_COLS} FROM buckets WHERE owner_id = $1 ORDER BY name"
_SQL_BUCKET_INSERT = (
    "INSERT INTO buckets (name, owner_id, region, created_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (name) DO NOTHING RETURNING id"
)
_SQL_BUCKET_OWNER = "SELECT owner_id FROM buckets WHERE name = $1"
_SQL_BUCKET_LOCK = "SELECT id FROM buckets WHERE name = $1 FOR UPDATE"
_SQL_BUCKET_EXISTS = "SELECT 1 FROM buckets WHERE id = $1"
_SQL_BUCKET_VERSIONING = "SELECT versioning FROM buckets WHERE id = $1"
_SQL_BUCKET_SET_VERSIONING = "UPDATE buckets SET versioning = $2 WHERE id = $1 RETURNING id"
_SQL_BUCKET_HAS_ROWS = "SELECT 1 FROM objects WHERE bucket_id = $1 LIMIT 1"
_SQL_BUCKET_DELETE = "DELETE FROM buckets WHERE id = $1"

_SQL_OBJECT_GET = f"SELECT {OBJECT_COLS} FROM objects WHERE bucket_id = $1 AND key = $2 AND is_latest"
_SQL_OBJECT_LOCK_PREVIOUS = (
    "SELECT version_id, last_modified, manifest, is_latest, is_delete_marker, etag FROM objects "
    "WHERE bucket_id = $1 AND key = $2 AND (version_id = $3 OR is_latest) FOR UPDATE"
)
_SQL_OBJECT_DEMOTE = (
    "UPDATE objects SET is_latest = false "
    "WHERE bucket_id = $1 AND key = $2 AND is_latest AND version_id <> $3 "
    "RETURNING last_modified, is_delete_marker, etag"
)
_SQL_OBJECT_INSERT = (
    f"INSERT INTO objects ({OBJECT_COLS}) VALUES "
    "($1, $2, $3, true, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, $12, $13, $14::jsonb, "
    "$15::jsonb, $16) "
    "ON CONFLICT (bucket_id, key, version_id) DO NOTHING RETURNING true"
)
_SQL_OBJECT_UPDATE = (
    "UPDATE objects SET is_latest = true, is_delete_marker = $4, size = $5, etag = $6, "
    "content_type = $7, headers = $8::jsonb, user_metadata = $9::jsonb, checksums = $10::jsonb, "
    "storage_class = $11, last_modified = $12, manifest = $13, tags = $14::jsonb, "
    "part_sizes = $15::jsonb, acl = $16 "
    "WHERE bucket_id = $1 AND key = $2 AND version_id = $3"
)
_SQL_OBJECTS_DELETE_LATEST = (
    "DELETE FROM objects WHERE bucket_id = $1 AND key = ANY($2::bytea[]) AND is_latest "
    "RETURNING key, is_delete_marker, manifest"
)
_SQL_OBJECT_GET_VERSION = (
    f"SELECT {OBJECT_COLS} FROM objects WHERE bucket_id = $1 AND key = $2 AND version_id = $3"
)
_SQL_OBJECT_LATEST_MARKER = (
    "SELECT is_delete_marker FROM objects WHERE bucket_id = $1 AND key = $2 AND is_latest"
)
# Deleting one version locks every version of its key, in one order (so two such deletes
# serialise instead of deadlocking); a put locks the latest row, so it waits too.
_SQL_KEY_LOCK = (
    "SELECT version_id, is_latest, is_delete_marker, manifest, last_modified FROM objects "
    "WHERE bucket_id = $1 AND key = $2 ORDER BY version_id FOR UPDATE"
)
_SQL_VERSION_DELETE = "DELETE FROM objects WHERE bucket_id = $1 AND key = $2 AND version_id = $3"
_SQL_VERSION_PROMOTE = (
    "UPDATE objects SET is_latest = true WHERE bucket_id = $1 AND key = $2 AND version_id = $3"
)
_SQL_VERSION_POSITION = (
    "SELECT last_modified, version_id FROM objects WHERE bucket_id = $1 AND key = $2 AND version_id = $3"
)
_VERSION_COLS = "key, version_id, is_latest, is_delete_marker, size, etag, last_modified, storage_class"
_SQL_VERSIONS_WITHIN = (
    f"SELECT {_VERSION_COLS} FROM objects WHERE bucket_id = $1 AND key = $2 "
    "AND (last_modified, version_id) < ($3, $4) "
    "ORDER BY last_modified DESC, version_id DESC LIMIT $5"
)
_SQL_VERSIONS: dict[tuple[bool, bool], str] = {
    (inclusive, bounded): (
        f"SELECT {_VERSION_COLS} FROM objects WHERE bucket_id = $1 AND key {'>=' if inclusive else '>'} $2"
        f"{' AND key < $4' if bounded else ''} "
        "ORDER BY key, last_modified DESC, version_id DESC LIMIT $3"
    )
    for inclusive in (False, True)
    for bounded in (False, True)
}
_SQL_SOURCE_VERSION_LOCK = (
    "SELECT manifest FROM objects WHERE bucket_id = $1 AND key = $2 AND version_id = $3 "
    "AND NOT is_delete_marker FOR SHARE"
)
_SQL_SOURCE_LOCK = (
    "SELECT manifest FROM objects WHERE bucket_id = $1 AND key = $2 AND is_latest "
    "AND NOT is_delete_marker FOR SHARE"
)

_LIST_COLS = "key, size, etag, last_modified, storage_class"
# (lower bound inclusive?, upper bound present?) -> query; all seek on (bucket_id, key).
_SQL_LIST: dict[tuple[bool, bool], str] = {
    (inclusive, bounded): (
        f"SELECT {_LIST_COLS} FROM objects WHERE bucket_id = $1 AND key {'>=' if inclusive else '>'} $2"
        f"{' AND key < $4' if bounded else ''} AND is_latest AND NOT is_delete_marker "
        "ORDER BY key LIMIT $3"
    )
    for inclusive in (False, True)
    for bounded in (False, True)
}

_SQL_MANIFESTS_FIRST = (
    "SELECT bucket_id, key, version_id, manifest FROM objects ORDER BY bucket_id, key, version_id LIMIT $1"
)
_SQL_MANIFESTS_AFTER = (
    "SELECT bucket_id, key, version_id, manifest FROM objects "
    "WHERE (bucket_id, key, version_id) > ($1, $2, $3) ORDER BY bucket_id, key, version_id LIMIT $4"
)
_SQL_PART_MANIFESTS_FIRST = (
    "SELECT bucket_id, upload_id, part_number, manifest FROM parts "
    "ORDER BY bucket_id, upload_id, part_number LIMIT $1"
)
_SQL_PART_MANIFESTS_AFTER = (
    "SELECT bucket_id, upload_id, part_number, manifest FROM parts "
    "WHERE (bucket_id, upload_id, part_number) > ($1, $2, $3) "
    "ORDER BY bucket_id, upload_id, part_number LIMIT $4"
)

# Drop one reference per occurrence of each chunk id in $1, in one statement: a chunk with more
# extra references than released keeps its row (decremented); exactly as many: the row goes and the
# chunk keeps its first reference; fewer (or no row): the chunk is queued for GC, once, in the order
# of first occurrence. Rows are locked by the UPDATE/DELETE, so concurrent releases serialise.
_SQL_RELEASE = """
WITH released AS (
    SELECT u.chunk_id, count(*)::integer AS n, min(u.ord) AS first
    FROM unnest($1::bytea[]) WITH ORDINALITY AS u (chunk_id, ord) GROUP BY u.chunk_id
), kept AS (
    UPDATE chunk_shares s SET extra = s.extra - r.n FROM released r
    WHERE s.chunk_id = r.chunk_id AND s.extra > r.n RETURNING s.chunk_id
), dropped AS (
    DELETE FROM chunk_shares s USING released r
    WHERE s.chunk_id = r.chunk_id AND s.extra <= r.n RETURNING s.chunk_id, s.extra = r.n AS survives
)
INSERT INTO gc_queue (bucket_id, chunk_id, queued_at)
SELECT $2, r.chunk_id, $3 FROM released r
WHERE NOT EXISTS (SELECT 1 FROM kept k WHERE k.chunk_id = r.chunk_id)
  AND NOT EXISTS (SELECT 1 FROM dropped d WHERE d.chunk_id = r.chunk_id AND d.survives)
ORDER BY r.first
"""
_SQL_SHARE = (
    "INSERT INTO chunk_shares (chunk_id, extra) "
    "SELECT u.chunk_id, count(*) FROM unnest($1::bytea[]) AS u (chunk_id) GROUP BY u.chunk_id "
    "ON CONFLICT (chunk_id) DO UPDATE SET extra = chunk_shares.extra + excluded.extra"
)
# Tagging: a version's tags change in place (no new version); delete markers have none.
_SQL_TAGS_SET_LATEST = (
    "UPDATE objects SET tags = $1::jsonb WHERE bucket_id = $2 AND key = $3 AND is_latest "
    "AND NOT is_delete_marker RETURNING version_id"
)
_SQL_TAGS_SET_VERSION = (
    "UPDATE objects SET tags = $1::jsonb WHERE bucket_id = $2 AND key = $3 AND version_id = $4 "
    "AND NOT is_delete_marker RETURNING version_id"
)
_SQL_BUCKET_TAGS = "SELECT tags FROM buckets WHERE id = $1"
_SQL_BUCKET_SET_TAGS = "UPDATE buckets SET tags = $2::jsonb WHERE id = $1 RETURNING id"
_SQL_GC_TAKE = "SELECT id, chunk_id FROM gc_queue WHERE queued_at < $1 ORDER BY id LIMIT $2"
_SQL_GC_TAKE_OWNED = "SELECT id, chunk_id FROM gc_queue WHERE queued_at < $1 AND get_byte(chunk_id, 0) = $3 ORDER BY id LIMIT $2"
_SQL_GC_ACK = "DELETE FROM gc_queue WHERE id = ANY($1::bigint[])"

_SQL_UPLOAD_INSERT = (
    f"INSERT INTO uploads ({UPLOAD_COLS}) VALUES "
    "($1, $2, $3, 'uploading', $4, $5, $6::jsonb, $7::jsonb, $8, $9, NULL, $10::jsonb, $11)"
)
_SQL_UPLOAD_GET = f"SELECT {UPLOAD_COLS} FROM uploads WHERE bucket_id = $1 AND upload_id = $2"
_SQL_UPLOAD_LOCK = f"{_SQL_UPLOAD_GET} FOR NO KEY UPDATE"
_SQL_PURGE_FINISHED = (
    "DELETE FROM uploads WHERE (bucket_id, upload_id) IN (SELECT bucket_id, upload_id FROM uploads "
    "WHERE state <> 'uploading' AND initiated < $1 LIMIT $2)"
)
_SQL_UPLOAD_FINISH = "UPDATE uploads SET state = $3, final_etag = $4 WHERE bucket_id = $1 AND upload_id = $2"
_SQL_UPLOADS_DROP = "DELETE FROM uploads WHERE bucket_id = $1"
_SQL_UPLOADS_LIST = (
    f"SELECT {UPLOAD_COLS} FROM uploads WHERE bucket_id = $1 AND state = 'uploading' "
    "AND (key, upload_id) > ($2, $3) ORDER BY key, upload_id LIMIT $4"
)
_SQL_PART_OLD = (
    "SELECT manifest FROM parts WHERE bucket_id = $1 AND upload_id = $2 AND part_number = $3 FOR UPDATE"
)
_SQL_PART_UPSERT = (
    f"INSERT INTO parts ({PART_COLS}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) "
    "ON CONFLICT (bucket_id, upload_id, part_number) DO UPDATE SET size = excluded.size, "
    "etag = excluded.etag, checksums = excluded.checksums, last_modified = excluded.last_modified, "
    "manifest = excluded.manifest"
)
_SQL_PARTS_ALL = f"SELECT {PART_COLS} FROM parts WHERE bucket_id = $1 AND upload_id = $2 ORDER BY part_number"
_SQL_PARTS_PAGE = (
    f"SELECT {PART_COLS} FROM parts WHERE bucket_id = $1 AND upload_id = $2 AND part_number > $3 "
    "ORDER BY part_number LIMIT $4"
)
_SQL_PARTS_DROP = "DELETE FROM parts WHERE bucket_id = $1 AND upload_id = $2 RETURNING manifest"
_SQL_PARTS_OF_BUCKET_DROP = "DELETE FROM parts WHERE bucket_id = $1 RETURNING manifest"


# --- rows ----------------------------------------------------------------------------------------


# --- helpers inside a transaction ------------------------------------------------------------------


class _LostRace(Exception):
    """A concurrent transaction inserted the row this one meant to insert: run it again."""


async def _release_chunks(conn: Any, bucket_id: int, chunk_ids: list[bytes]) -> None:
    """Drop one reference per occurrence; chunks whose last reference goes are queued for GC."""
    if chunk_ids:
        await conn.execute(_SQL_RELEASE, chunk_ids, bucket_id, time.time())


async def _take_shares(conn: Any, shared: SharedChunks) -> None:
    """Lock the source row, check it still names the manifest that was read, then add one
    reference per shared occurrence (a concurrent overwrite or delete of the source waits)."""
    raw = shared.key.encode("utf-8")
    if shared.version_id is None:
        manifest = await conn.fetchval(_SQL_SOURCE_LOCK, shared.bucket_id, raw)
    else:
        manifest = await conn.fetchval(_SQL_SOURCE_VERSION_LOCK, shared.bucket_id, raw, shared.version_id)
    if manifest is None or bytes(manifest) != encode_manifest(shared.source_manifest):
        raise SourceChangedError(shared.key)
    owned = {ref.chunk_id for ref in shared.source_manifest}
    if any(chunk_id not in owned for chunk_id in shared.chunk_ids):
        raise ValueError("a shared chunk must belong to the source object")
    if shared.chunk_ids:
        await conn.execute(_SQL_SHARE, list(shared.chunk_ids))


async def _write_object_row(
    conn: Any,
    obj: ObjectVersion,
    *,
    keep_renamed: bool,
    condition: WriteCondition | None,
    fresh_version: str | None = None,
) -> ObjectVersion:
    """Commit obj as the latest version of its key inside the caller's transaction.

    keep_renamed: chunks the replaced version names again keep their reference (a plain PUT);
    False when obj's references were taken elsewhere (shared chunks, completed parts).
    fresh_version: the id a new version gets (versioning Enabled), chosen once by a caller that
    may run this again after a lost connection, so that a retry rewrites the same row.
    Raises _LostRace when a concurrent transaction inserted the same version first.
    """
    key = obj.key.encode("utf-8")
    versioning = await conn.fetchval(_SQL_BUCKET_VERSIONING, obj.bucket_id)
    if versioning is None:
        raise NoSuchBucketError(obj.bucket_id)
    version_id = version_for_write(versioning, obj.version_id)
    if fresh_version is not None and version_id != obj.version_id:
        version_id = fresh_version
    if version_id != obj.version_id:
        obj = replace(obj, version_id=version_id)
    last_modified = obj.last_modified
    replaced: bytes | None = None
    current: tuple[bool, str] | None = None  # the latest version: (is delete marker, etag)
    other_latest = False
    for version_id, modified, manifest, is_latest, marker, etag in await conn.fetch(
        _SQL_OBJECT_LOCK_PREVIOUS, obj.bucket_id, key, obj.version_id
    ):
        last_modified = max(last_modified, modified + 1e-6)
        if version_id == obj.version_id:
            replaced = bytes(manifest)
        if is_latest:
            current = (marker, etag)
            other_latest = version_id != obj.version_id
    # Only a latest row of another version (locked above, so still the latest) needs demoting. A
    # latest version committed after the SELECT's snapshot is not missed: writing ours as the
    # latest then violates objects_one_latest (or finds our version_id taken), and the whole
    # transaction runs again with a new snapshot. The common overwrite thus costs no UPDATE.
    if other_latest:
        for modified, marker, etag in await conn.fetch(
            _SQL_OBJECT_DEMOTE, obj.bucket_id, key, obj.version_id
        ):
            last_modified = max(last_modified, modified + 1e-6)
            current = (marker, etag)
    if condition is not None:
        try:
            check_write_condition(condition, current[1] if current is not None and not current[0] else None)
        except Exception:
            if await conn.fetchval(_SQL_BUCKET_EXISTS, obj.bucket_id) is None:
                raise NoSuchBucketError(obj.bucket_id) from None
            raise
    args = (
        obj.bucket_id,
        key,
        obj.version_id,
        obj.is_delete_marker,
        obj.size,
        obj.etag,
        obj.content_type,
        dumps(obj.headers),
        dumps(obj.user_metadata),
        dumps(obj.checksums),
        obj.storage_class,
        last_modified,
        encode_manifest(obj.manifest),
        dumps(obj.tags),
        dumps_sizes(obj.part_sizes),
        obj.acl,
    )
    if replaced is not None:
        await conn.execute(_SQL_OBJECT_UPDATE, *args)
        kept = frozenset(ref.chunk_id for ref in obj.manifest) if keep_renamed else frozenset()
        await _release_chunks(conn, obj.bucket_id, [c for c in manifest_chunk_ids(replaced) if c not in kept])
    elif not await conn.fetchval(_SQL_OBJECT_INSERT, *args):
        raise _LostRace()
    return replace(obj, last_modified=last_modified, is_latest=True)


async def _delete_one(
    conn: Any, bucket_id: int, versioning: str, key: str, version_id: str | None, now: float
) -> DeleteOutcome:
    """S3 DeleteObject inside the caller's transaction (see MetadataStore.delete_version)."""
    raw = key.encode("utf-8")
    if version_id is None:
        if not versioning:
            rows = await conn.fetch(_SQL_OBJECTS_DELETE_LATEST, bucket_id, [raw])
            await _release_chunks(conn, bucket_id, [c for r in rows for c in manifest_chunk_ids(r[2])])
            return DeleteOutcome(any(not r[1] for r in rows), None, False)
        latest_marker = await conn.fetchval(_SQL_OBJECT_LATEST_MARKER, bucket_id, raw)
        marker = ObjectVersion(bucket_id, key, "null", 0, "", now, content_type="", is_delete_marker=True)
        stored = await _write_object_row(conn, marker, keep_renamed=True, condition=None)
        return DeleteOutcome(latest_marker is False, stored.version_id, True)
    rows = await conn.fetch(_SQL_KEY_LOCK, bucket_id, raw)
    target = next((row for row in rows if row[0] == version_id), None)
    if target is None:
        return DeleteOutcome(False, version_id, False)
    await conn.execute(_SQL_VERSION_DELETE, bucket_id, raw, version_id)
    await _release_chunks(conn, bucket_id, list(manifest_chunk_ids(target[3])))
    rest = [row for row in rows if row[0] != version_id]
    if target[1] and rest:
        newest = max(rest, key=lambda row: (row[4], row[0]))
        await conn.execute(_SQL_VERSION_PROMOTE, bucket_id, raw, newest[0])
    return DeleteOutcome(not target[2], version_id, bool(target[2]))


async def _in_transaction(conn: Any, body: Callable[[Any], Awaitable[T]], bucket_id: int) -> T:
    """Run body in a transaction, again from the start while it loses races on a key (a unique
    violation of 'one latest per key', or _LostRace); a foreign-key violation means the bucket is gone."""
    try:
        for _ in range(_RACE_ATTEMPTS):
            try:
                async with conn.transaction():
                    return await body(conn)
            except (_LostRace, pgerr.UniqueViolationError, pgerr.DeadlockDetectedError):
                continue
    except pgerr.ForeignKeyViolationError:
        raise NoSuchBucketError(bucket_id) from None
    raise RuntimeError(f"lost {_RACE_ATTEMPTS} races on one key in a row")


async def _release(pool: Any, conn: Any) -> None:
    """Give a connection back. If resetting it fails (it died under us), the pool has already
    terminated it and will open a new one: that is no failure of the operation, which is done."""
    try:
        await pool.release(conn)
    except Exception as exc:
        log.info("dropped a broken PostgreSQL connection: %r", exc)


# --- the store -------------------------------------------------------------------------------------


class PostgresMetadataStore(PostgresAccess):
    """MetadataStore on PostgreSQL (see the module docstring)."""

    def __init__(self, dsn: str, *, pool_min: int = 2, pool_max: int = 16) -> None:
        if not 0 <= pool_min <= pool_max or pool_max < 1:
            raise ValueError(f"need 0 <= pool_min <= pool_max and pool_max >= 1, got {pool_min}, {pool_max}")
        self.dsn = dsn
        self._pool_min, self._pool_max = pool_min, pool_max
        self._pool: Any = None

    # lifecycle

    async def open(self) -> None:
        if self._pool is not None:
            return
        conn = await asyncpg.connect(self.dsn)
        try:
            await migrate_postgres(conn)
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self._pool_min,
            max_size=self._pool_max,
            timeout=_CONNECT_TIMEOUT,
            server_settings={"application_name": "pails", "jit": "off"},
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def pool(self) -> Any:
        """The asyncpg pool (tests, benchmarks, administration)."""
        if self._pool is None:
            raise RuntimeError("the metadata store is not open")
        return self._pool

    async def _run(self, op: Callable[[Any], Awaitable[T]], *, retry: bool) -> T:
        """Run op with a pooled connection (see the module docstring on lost connections)."""
        lost = 0  # attempts whose connection was lost under op
        delay = 0.05
        give_up_at = time.monotonic() + _UNREACHABLE_WAIT
        while True:
            pool = self.pool
            try:
                conn = await pool.acquire()
            except _CONNECTION_ERRORS as exc:
                if time.monotonic() + delay > give_up_at:
                    raise MetadataUnavailableError(
                        f"cannot connect to PostgreSQL: {exc!r}", maybe_done=lost > 0
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.4)
                continue
            try:
                return await op(conn)
            except _CONNECTION_ERRORS as exc:
                lost += 1
                if not retry or lost >= _ATTEMPTS:
                    # op reached the database: whether it committed is unknown.
                    raise MetadataUnavailableError(
                        f"lost the PostgreSQL connection: {exc!r}", maybe_done=True
                    ) from exc
            finally:
                await _release(pool, conn)
            await asyncio.sleep(0.01 * lost)

    async def ping(self) -> None:
        """Raise MetadataUnavailableError unless the database answers now (the readiness probe)."""
        try:
            async with asyncio.timeout(_PING_TIMEOUT):
                pool = self.pool
                conn = await pool.acquire()
                try:
                    await conn.fetchval("SELECT 1")
                finally:
                    await _release(pool, conn)
        except _CONNECTION_ERRORS as exc:  # a timeout is an OSError too
            raise MetadataUnavailableError(f"PostgreSQL does not answer: {exc!r}", maybe_done=False) from exc

    # buckets

    async def create_bucket(self, name: str, owner_id: str, region: str) -> Bucket:
        created_at = time.time()

        async def op(conn: Any) -> Bucket:
            while True:
                bucket_id = await conn.fetchval(_SQL_BUCKET_INSERT, name, owner_id, region, created_at)
                if bucket_id is not None:
                    return Bucket(int(bucket_id), name, owner_id, region, created_at)
                owner = await conn.fetchval(_SQL_BUCKET_OWNER, name)
                if owner is not None:  # else the winner was deleted meanwhile: try again
                    raise BucketExists(str(owner))

        return await self._run(op, retry=False)

    async def get_bucket(self, name: str) -> Bucket | None:
        async def op(conn: Any) -> Bucket | None:
            row = await conn.fetchrow(_SQL_BUCKET_BY_NAME, name)
            return None if row is None else bucket_of(row)

        return await self._run(op, retry=True)

    async def list_buckets(self, owner_id: str | None = None) -> list[Bucket]:
        async def op(conn: Any) -> list[Bucket]:
            if owner_id is None:
                rows = await conn.fetch(_SQL_BUCKETS_ALL)
            else:
                rows = await conn.fetch(_SQL_BUCKETS_OF, owner_id)
            return [bucket_of(row) for row in rows]

        return await self._run(op, retry=True)

    async def delete_bucket(self, name: str) -> None:
        """Raises NoSuchBucketError if there is no such bucket, BucketNotEmptyError if any row is left.

        The bucket row is locked first: writers still inserting into the bucket finish (their
        foreign-key checks hold a share lock on it) and later ones wait, then fail (NoSuchBucket).
        Uploads in progress are dropped, their parts' chunks released.
        """

        async def op(conn: Any) -> None:
            async with conn.transaction():
                bucket_id = await conn.fetchval(_SQL_BUCKET_LOCK, name)
                if bucket_id is None:
                    raise NoSuchBucketError(name)
                if await conn.fetchval(_SQL_BUCKET_HAS_ROWS, bucket_id) is not None:
                    raise BucketNotEmptyError(name)
                manifests = await conn.fetch(_SQL_PARTS_OF_BUCKET_DROP, bucket_id)
                await _release_chunks(
                    conn, bucket_id, [c for (m,) in manifests for c in manifest_chunk_ids(m)]
                )
                await conn.execute(_SQL_UPLOADS_DROP, bucket_id)
                try:
                    await conn.execute(_SQL_BUCKET_DELETE, bucket_id)
                except pgerr.ForeignKeyViolationError:  # rows the check above cannot see
                    raise BucketNotEmptyError(name) from None

        await self._run(op, retry=False)

    # objects

    async def put_object(
        self,
        obj: ObjectVersion,
        *,
        before_commit: Callable[[], None] | None = None,
        condition: WriteCondition | None = None,
        shared: SharedChunks | None = None,
    ) -> ObjectVersion:
        """See MetadataStore.put_object.

        before_commit runs in a worker thread before the transaction starts (so before it commits),
        and before a pooled connection is taken, so a slow fsync holds neither a connection nor
        row locks.
        """
        if before_commit is not None:
            await asyncio.to_thread(before_commit)

        fresh_version = new_version_id()

        async def body(conn: Any) -> ObjectVersion:
            if shared is not None:
                await _take_shares(conn, shared)
            return await _write_object_row(
                conn, obj, keep_renamed=shared is None, condition=condition, fresh_version=fresh_version
            )

        async def op(conn: Any) -> ObjectVersion:
            return await _in_transaction(conn, body, obj.bucket_id)

        # Retried after a lost connection: writing the same row (the same version id) again is
        # harmless, its chunks are kept. Not with shared chunks, whose references must be taken
        # once, nor with a condition, which the first attempt's commit would make fail.
        return await self._run(op, retry=shared is None and condition is None)

    async def get_object(
        self, bucket_id: int, key: str, version_id: str | None = None, *, head_only: bool = False
    ) -> ObjectVersion | None:
        """The latest version of the key, delete markers included (callers check is_delete_marker),
        or the version given (head_only: the whole row all the same; the query is not the cost)."""
        raw = key.encode("utf-8")

        async def op(conn: Any) -> ObjectVersion | None:
            if version_id is None:
                row = await conn.fetchrow(_SQL_OBJECT_GET, bucket_id, raw)
            else:
                row = await conn.fetchrow(_SQL_OBJECT_GET_VERSION, bucket_id, raw, version_id)
            return None if row is None else object_of(row)

        return await self._run(op, retry=True)

    async def set_versioning(self, bucket_id: int, status: str) -> None:
        async def op(conn: Any) -> None:
            if await conn.fetchval(_SQL_BUCKET_SET_VERSIONING, bucket_id, status) is None:
                raise NoSuchBucketError(bucket_id)

        await self._run(op, retry=True)

    async def set_object_tags(
        self, bucket_id: int, key: str, version_id: str | None, tags: dict[str, str]
    ) -> str | None:
        raw = key.encode("utf-8")
        encoded = dumps(tags)

        async def op(conn: Any) -> str | None:
            if version_id is None:
                found = await conn.fetchval(_SQL_TAGS_SET_LATEST, encoded, bucket_id, raw)
            else:
                found = await conn.fetchval(_SQL_TAGS_SET_VERSION, encoded, bucket_id, raw, version_id)
            return None if found is None else str(found)

        # Setting the same tags again is harmless: retried after a lost connection.
        return await self._run(op, retry=True)

    async def get_bucket_tags(self, bucket_id: int) -> dict[str, str] | None:
        async def op(conn: Any) -> dict[str, str] | None:
            row = await conn.fetchrow(_SQL_BUCKET_TAGS, bucket_id)
            if row is None:
                raise NoSuchBucketError(bucket_id)
            return None if row[0] is None else loads(row[0])

        return await self._run(op, retry=True)

    async def set_bucket_tags(self, bucket_id: int, tags: dict[str, str] | None) -> None:
        value = None if tags is None else dumps(tags)

        async def op(conn: Any) -> None:
            if await conn.fetchval(_SQL_BUCKET_SET_TAGS, bucket_id, value) is None:
                raise NoSuchBucketError(bucket_id)

        await self._run(op, retry=True)

    async def delete_version(
        self, bucket_id: int, key: str, version_id: str | None, *, now: float
    ) -> DeleteOutcome:
        return (await self.delete_versions(bucket_id, [(key, version_id)], now=now))[0]

    async def delete_versions(
        self, bucket_id: int, items: Sequence[tuple[str, str | None]], *, now: float
    ) -> list[DeleteOutcome]:
        """One transaction; the version flips are decided under row locks (see _delete_one)."""
        todo = list(items)
        if not todo:
            return []

        async def body(conn: Any) -> list[DeleteOutcome]:
            versioning = await conn.fetchval(_SQL_BUCKET_VERSIONING, bucket_id) or ""
            return [await _delete_one(conn, bucket_id, versioning, key, vid, now) for key, vid in todo]

        async def op(conn: Any) -> list[DeleteOutcome]:
            return await _in_transaction(conn, body, bucket_id)

        # Not retried after a lost connection: a committed delete marker must not be doubled.
        return await self._run(op, retry=False)

    async def list_versions(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        max_keys: int = 1000,
    ) -> VersionPage:
        async def op(conn: Any) -> VersionPage:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                resume: tuple[float, str] | None = None
                if key_marker and version_id_marker:
                    found = await conn.fetchrow(
                        _SQL_VERSION_POSITION, bucket_id, key_marker.encode("utf-8"), version_id_marker
                    )
                    if found is not None:
                        resume = (found[0], found[1])
                plan = VersionPlan(prefix, delimiter, key_marker, max_keys, resume=resume)
                query: VersionQuery | None = plan.next_query()
                while query is not None:
                    if query.key is not None:
                        rows = await conn.fetch(
                            _SQL_VERSIONS_WITHIN,
                            bucket_id,
                            query.key,
                            query.modified,
                            query.version_id,
                            query.limit,
                        )
                    else:
                        args: tuple[object, ...] = (bucket_id, query.lower, query.limit)
                        if query.upper is not None:
                            args = (*args, query.upper)
                        rows = await conn.fetch(
                            _SQL_VERSIONS[query.inclusive, query.upper is not None], *args
                        )
                    for row in rows:
                        if not plan.offer(bytes(row[0]), *row[1:]):
                            break
                    plan.end_batch()
                    query = plan.next_query()
            return plan.page()

        return await self._run(op, retry=True)

    async def delete_object(self, bucket_id: int, key: str) -> bool:
        return (await self.delete_objects(bucket_id, [key]))[0]

    async def delete_objects(self, bucket_id: int, keys: Sequence[str]) -> list[bool]:
        """Delete the latest version of each key, in one transaction; True where an object existed.
        On a versioned bucket each key gets a delete marker instead (see delete_version)."""
        encoded = [key.encode("utf-8") for key in keys]
        if not encoded:
            return []

        async def op(conn: Any) -> list[bool] | None:
            async with conn.transaction():
                if await conn.fetchval(_SQL_BUCKET_VERSIONING, bucket_id):
                    return None  # versioned: delete markers, below
                rows = await conn.fetch(_SQL_OBJECTS_DELETE_LATEST, bucket_id, encoded)
                live: set[bytes] = set()
                garbage: list[bytes] = []
                for raw_key, marker, manifest in sorted(rows, key=lambda r: bytes(r[0])):
                    if not marker:
                        live.add(bytes(raw_key))
                    garbage.extend(manifest_chunk_ids(manifest))
                await _release_chunks(conn, bucket_id, garbage)
            existed: list[bool] = []
            for key in encoded:  # a key named twice existed only the first time
                existed.append(key in live)
                live.discard(key)
            return existed

        done = await self._run(op, retry=False)
        if done is not None:
            return done
        outcomes = await self.delete_versions(bucket_id, [(key, None) for key in keys], now=time.time())
        return [outcome.existed for outcome in outcomes]

    async def list_objects(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        """One page of S3 ListObjects, in UTF-8 byte order, from one snapshot (REPEATABLE READ).

        Without a delimiter each seek fetches its rows at once; with one, rows come through a
        cursor in growing batches, since a seek often ends at its first row (a common prefix).
        """
        if max_keys <= 0:
            return ListPage([], [], False, None)

        async def fetch_all(conn: Any, plan: ListingPlan, sql: str, args: tuple[object, ...]) -> None:
            for row in await conn.fetch(sql, *args):
                if not plan.offer(row[0], row[1], row[2], row[3], row[4]):
                    break

        async def fetch_lazily(conn: Any, plan: ListingPlan, sql: str, args: tuple[object, ...]) -> None:
            cursor = await conn.cursor(sql, *args)
            size = _FIRST_DELIMITED_FETCH
            while True:
                rows = await cursor.fetch(size)
                for row in rows:
                    if not plan.offer(row[0], row[1], row[2], row[3], row[4]):
                        return
                if len(rows) < size:
                    return
                size *= 2

        async def op(conn: Any) -> ListPage:
            plan = ListingPlan(prefix, delimiter, start_after, max_keys)
            fetch = fetch_lazily if plan.wants_few_rows else fetch_all
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                query: ListQuery | None = plan.next_query()
                while query is not None:
                    sql = _SQL_LIST[query.inclusive, query.upper is not None]
                    args: tuple[object, ...] = (bucket_id, query.lower, query.limit)
                    if query.upper is not None:
                        args = (*args, query.upper)
                    await fetch(conn, plan, sql, args)
                    plan.end_batch()
                    query = plan.next_query()
            return plan.page()

        return await self._run(op, retry=True)

    # garbage collection

    async def take_garbage(
        self, limit: int, queued_before: float, owner: int | None = None
    ) -> list[tuple[int, bytes]]:
        """The oldest chunks queued before the given time (not removed until ack_garbage)."""
        if limit <= 0:
            return []

        async def op(conn: Any) -> list[tuple[int, bytes]]:
            if owner is None:
                rows = await conn.fetch(_SQL_GC_TAKE, queued_before, limit)
            else:
                rows = await conn.fetch(_SQL_GC_TAKE_OWNED, queued_before, limit, owner)
            return [(int(row[0]), bytes(row[1])) for row in rows]

        return await self._run(op, retry=True)

    async def ack_garbage(self, queue_ids: Sequence[int]) -> None:
        ids = list(queue_ids)
        if not ids:
            return

        async def op(conn: Any) -> None:
            await conn.execute(_SQL_GC_ACK, ids)

        await self._run(op, retry=True)

    async def referenced_chunks(self) -> AsyncIterator[bytes]:
        """Every chunk id named by an object or part row, from one snapshot (REPEATABLE READ on one
        connection held for the walk), so a reference that moves while it runs (a completion moving
        parts into an object, a copy, then a delete of the source) is seen at one of its places."""
        pool = self.pool
        conn = await pool.acquire()
        try:
            transaction = conn.transaction(isolation="repeatable_read", readonly=True)
            await transaction.start()
            try:
                for first, after in (
                    (_SQL_MANIFESTS_FIRST, _SQL_MANIFESTS_AFTER),
                    (_SQL_PART_MANIFESTS_FIRST, _SQL_PART_MANIFESTS_AFTER),
                ):
                    rows = await conn.fetch(first, _SCAN_BATCH)
                    while rows:
                        for row in rows:
                            for chunk_id in manifest_chunk_ids(row[3]):
                                yield chunk_id
                        if len(rows) < _SCAN_BATCH:
                            break
                        last = rows[-1]
                        rows = await conn.fetch(after, last[0], last[1], last[2], _SCAN_BATCH)
            finally:
                if not conn.is_closed():
                    await transaction.rollback()
        finally:
            await _release(pool, conn)

    # multipart uploads

    async def create_upload(self, upload: Upload) -> None:
        args = (
            upload.bucket_id,
            upload.upload_id,
            upload.key.encode("utf-8"),
            upload.initiated,
            upload.content_type,
            dumps(upload.headers),
            dumps(upload.user_metadata),
            upload.storage_class,
            upload_checksum_column(upload),
            dumps(upload.tags),
            upload.acl,
        )

        async def op(conn: Any) -> None:
            try:
                await conn.execute(_SQL_UPLOAD_INSERT, *args)
            except pgerr.ForeignKeyViolationError:
                raise NoSuchBucketError(upload.bucket_id) from None

        await self._run(op, retry=False)

    async def get_upload(self, bucket_id: int, upload_id: str) -> Upload | None:
        async def op(conn: Any) -> Upload | None:
            row = await conn.fetchrow(_SQL_UPLOAD_GET, bucket_id, upload_id)
            return None if row is None else upload_of(row)

        return await self._run(op, retry=True)

    async def put_part(
        self,
        part: Part,
        *,
        before_commit: Callable[[], None] | None = None,
        shared: SharedChunks | None = None,
    ) -> None:
        if before_commit is not None:
            await asyncio.to_thread(before_commit)
        args = (
            part.bucket_id,
            part.upload_id,
            part.part_number,
            part.size,
            part.etag,
            dumps(part.checksums),
            part.last_modified,
            encode_manifest(part.manifest),
        )

        async def op(conn: Any) -> None:
            async with conn.transaction():
                upload = await conn.fetchrow(_SQL_UPLOAD_LOCK, part.bucket_id, part.upload_id)
                if upload is None or upload["state"] != "uploading":
                    raise NoSuchUploadError(part.upload_id)
                if shared is not None:
                    await _take_shares(conn, shared)
                old = await conn.fetchval(_SQL_PART_OLD, part.bucket_id, part.upload_id, part.part_number)
                if old is not None:
                    await _release_chunks(conn, part.bucket_id, list(manifest_chunk_ids(old)))
                await conn.execute(_SQL_PART_UPSERT, *args)

        # Not retried after a lost connection: had the first attempt committed, the retry would
        # release the chunks it wrote (a replaced part's chunks are all released).
        await self._run(op, retry=False)

    async def list_parts(self, bucket_id: int, upload_id: str, *, after: int, limit: int) -> list[Part]:
        if limit <= 0:
            return []

        async def op(conn: Any) -> list[Part]:
            rows = await conn.fetch(_SQL_PARTS_PAGE, bucket_id, upload_id, after, limit)
            return [part_of(row) for row in rows]

        return await self._run(op, retry=True)

    async def list_uploads(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = 1000,
    ) -> UploadPage:
        """As SqliteMetadataStore.list_uploads: by key then upload id, seeking past common prefixes."""

        async def op(conn: Any) -> UploadPage:
            plan: KeyIdListingPlan[Upload] = KeyIdListingPlan(
                prefix, delimiter, key_marker, upload_id_marker, max_uploads
            )
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                while not plan.done:
                    rows = await conn.fetch(
                        _SQL_UPLOADS_LIST, bucket_id, plan.after_key, plan.after_id, _UPLOAD_BATCH
                    )
                    for row in rows:
                        if not plan.offer(bytes(row[2]), row[1], partial(upload_of, row)):
                            break
                    plan.end_batch(len(rows))
            return UploadPage(
                uploads=plan.items,
                common_prefixes=plan.prefixes,
                is_truncated=plan.truncated,
                next_key_marker=plan.next_key_marker,
                next_upload_id_marker=plan.last_id,
            )

        return await self._run(op, retry=True)

    async def complete_upload(
        self,
        bucket_id: int,
        upload_id: str,
        key: str,
        requested: Sequence[tuple[int, str, dict[str, str]]],
        *,
        last_modified: float,
        min_part_size: int,
        condition: WriteCondition | None = None,
        expected_checksums: Mapping[str, str] | None = None,
    ) -> ObjectVersion:

        async def body(conn: Any) -> ObjectVersion:
            row = await conn.fetchrow(_SQL_UPLOAD_LOCK, bucket_id, upload_id)
            upload = None if row is None else upload_of(row)
            if (retried := completion_retry(upload, key, upload_id, last_modified)) is not None:
                return retried
            assert upload is not None
            parts = {
                p.part_number: p for p in map(part_of, await conn.fetch(_SQL_PARTS_ALL, bucket_id, upload_id))
            }
            assembled = assemble_parts(
                requested,
                parts,
                min_part_size=min_part_size,
                checksum_algorithm=upload.checksum_algorithm,
                checksum_type=upload.checksum_type,
                expected_checksums=expected_checksums,
            )
            obj = completed_object(upload, assembled, key=key, last_modified=last_modified)
            # The named parts' references move to the object; the others are dropped.
            stored = await _write_object_row(conn, obj, keep_renamed=False, condition=condition)
            unused = [
                ref.chunk_id
                for number, part in parts.items()
                if number not in assembled.used
                for ref in part.manifest
            ]
            await _release_chunks(conn, bucket_id, unused)
            await conn.execute(_SQL_PARTS_DROP, bucket_id, upload_id)
            await conn.execute(_SQL_UPLOAD_FINISH, bucket_id, upload_id, "complete", assembled.etag)
            return stored

        async def op(conn: Any) -> ObjectVersion:
            return await _in_transaction(conn, body, bucket_id)

        # Retried after a lost connection: a completion that did commit answers the retry with
        # its recorded ETag.
        return await self._run(op, retry=True)

    async def purge_finished_uploads(self, initiated_before: float, limit: int) -> int:
        async def op(conn: Any) -> int:
            status = await conn.execute(_SQL_PURGE_FINISHED, initiated_before, limit)
            return int(status.rsplit(" ", 1)[-1])

        return await self._run(op, retry=True)

    async def abort_upload(self, bucket_id: int, upload_id: str) -> bool:
        async def op(conn: Any) -> bool:
            async with conn.transaction():
                row = await conn.fetchrow(_SQL_UPLOAD_LOCK, bucket_id, upload_id)
                if row is None or row["state"] != "uploading":
                    return False
                manifests = await conn.fetch(_SQL_PARTS_DROP, bucket_id, upload_id)
                await _release_chunks(
                    conn, bucket_id, [c for (m,) in manifests for c in manifest_chunk_ids(m)]
                )
                await conn.execute(_SQL_UPLOAD_FINISH, bucket_id, upload_id, "aborted", None)
                return True

        return await self._run(op, retry=False)
