"""The embedded metadata store: one SQLite file in WAL mode.

Writes go through one writer thread that commits in groups: callers enqueue an operation (a
function of the connection) and await a future; the writer runs everything queued in one
transaction, each operation in its own SAVEPOINT (one failing operation does not fail the others),
commits once (one fsync for the whole batch, synchronous=FULL), then resolves the futures.

Reads run on the caller's (event-loop) thread through a separate read-only connection: indexed
lookups take microseconds, less than a thread hop. A read that follows a completed write sees it,
because the write's future is resolved only after its COMMIT.

Object keys are stored as BLOBs of their UTF-8 bytes, so the primary key (bucket_id, key,
version_id) orders them the way S3 does and listings seek on it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar, cast

from pails.meta.access_sqlite import SqliteAccess
from pails.meta.encoding import decode_manifest, dumps_sizes, encode_manifest
from pails.meta.encoding import dumps as _dumps
from pails.meta.encoding import loads as _loads
from pails.meta.encoding import manifest_chunk_ids as _chunk_ids
from pails.meta.listing import ListingPlan, VersionPlan, byte_successor
from pails.meta.migrate import migrate_sqlite
from pails.meta.models import (
    Bucket,
    DeleteOutcome,
    ListPage,
    ObjectVersion,
    SharedChunks,
    VersionPage,
    WriteCondition,
)
from pails.meta.read_cache import CommitValidatedCache
from pails.meta.rows import BUCKET_COLS, OBJECT_COLS, OBJECT_HEAD_COLS, bucket_of, object_head_of, object_of
from pails.meta.rules import check_write_condition, version_for_write
from pails.meta.sqlite_lock import WriterLock
from pails.meta.sqlite_multipart import (
    SqliteMultipart,
    drop_bucket_uploads,
    part_manifest_batches,
    release_chunks,
    take_shares,
)
from pails.meta.store import BucketExists, BucketNotEmptyError, NoSuchBucketError

T = TypeVar("T")
WriteOp = Callable[[sqlite3.Connection], T]

_MISSING = object()

__all__ = ["SqliteMetadataStore", "byte_successor", "decode_manifest", "encode_manifest"]

_MAX_BATCH = 1000  # operations per group commit
_SCAN_BATCH = 500  # manifests per referenced_chunks query
_BUSY_TIMEOUT_MS = 10_000


# --- SQL (constant strings, so sqlite3's statement cache keeps them prepared) -----------------

_SQL_BUCKET_BY_NAME = f"SELECT {BUCKET_COLS} FROM buckets WHERE name = ?"
_SQL_BUCKETS_ALL = f"SELECT {BUCKET_COLS} FROM buckets ORDER BY name"
_SQL_BUCKETS_OF = f"SELECT {BUCKET_COLS} FROM buckets WHERE owner_id = ? ORDER BY name"
_SQL_BUCKET_INSERT = (
    "INSERT INTO buckets (name, owner_id, region, created_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (name) DO NOTHING"
)
_SQL_BUCKET_OWNER = "SELECT owner_id FROM buckets WHERE name = ?"
_SQL_BUCKET_ID = "SELECT id FROM buckets WHERE name = ?"
_SQL_BUCKET_EXISTS = "SELECT 1 FROM buckets WHERE id = ?"
_SQL_BUCKET_VERSIONING = "SELECT versioning FROM buckets WHERE id = ?"
_SQL_BUCKET_SET_VERSIONING = "UPDATE buckets SET versioning = ? WHERE id = ?"
_SQL_BUCKET_HAS_ROWS = "SELECT 1 FROM objects WHERE bucket_id = ? LIMIT 1"
_SQL_BUCKET_DELETE = "DELETE FROM buckets WHERE id = ?"

_SQL_OBJECT_GET = f"SELECT {OBJECT_COLS} FROM objects WHERE bucket_id = ? AND key = ? AND is_latest = 1"
_SQL_OBJECT_HEAD = f"SELECT {OBJECT_HEAD_COLS} FROM objects WHERE bucket_id = ? AND key = ? AND is_latest = 1"
_SQL_OBJECT_HEAD_VERSION = (
    f"SELECT {OBJECT_HEAD_COLS} FROM objects WHERE bucket_id = ? AND key = ? AND version_id = ?"
)
_SQL_OBJECT_PREVIOUS = (
    "SELECT version_id, last_modified, manifest FROM objects "
    "WHERE bucket_id = ? AND key = ? AND (version_id = ? OR is_latest = 1)"
)
_SQL_OBJECT_DEMOTE = (
    "UPDATE objects SET is_latest = 0 WHERE bucket_id = ? AND key = ? AND is_latest = 1 AND version_id <> ?"
)
_SQL_OBJECT_REPLACE = f"INSERT OR REPLACE INTO objects ({OBJECT_COLS}) VALUES ({', '.join('?' * 17)})"
_SQL_OBJECT_LATEST = (
    "SELECT is_delete_marker, manifest FROM objects WHERE bucket_id = ? AND key = ? AND is_latest = 1"
)
_SQL_OBJECT_DELETE_LATEST = "DELETE FROM objects WHERE bucket_id = ? AND key = ? AND is_latest = 1"
_SQL_OBJECT_GET_VERSION = (
    f"SELECT {OBJECT_COLS} FROM objects WHERE bucket_id = ? AND key = ? AND version_id = ?"
)
_SQL_VERSION_ROW = (
    "SELECT is_latest, is_delete_marker, manifest FROM objects "
    "WHERE bucket_id = ? AND key = ? AND version_id = ?"
)
_SQL_VERSION_DELETE = "DELETE FROM objects WHERE bucket_id = ? AND key = ? AND version_id = ?"
# The newest remaining version becomes the latest (seeks on objects_versions).
_SQL_VERSION_PROMOTE = (
    "UPDATE objects SET is_latest = 1 WHERE bucket_id = ? AND key = ? AND version_id = ("
    "SELECT version_id FROM objects WHERE bucket_id = ? AND key = ? "
    "ORDER BY last_modified DESC, version_id DESC LIMIT 1)"
)
_SQL_VERSION_POSITION = (
    "SELECT last_modified, version_id FROM objects WHERE bucket_id = ? AND key = ? AND version_id = ?"
)
_VERSION_COLS = "key, version_id, is_latest, is_delete_marker, size, etag, last_modified, storage_class"
_SQL_VERSIONS_WITHIN = (
    f"SELECT {_VERSION_COLS} FROM objects WHERE bucket_id = ? AND key = ? "
    "AND (last_modified < ? OR (last_modified = ? AND version_id < ?)) "
    "ORDER BY last_modified DESC, version_id DESC LIMIT ?"
)
_SQL_VERSIONS: dict[tuple[bool, bool], str] = {
    (inclusive, bounded): (
        f"SELECT {_VERSION_COLS} FROM objects WHERE bucket_id = ? AND key {'>=' if inclusive else '>'} ?"
        f"{' AND key < ?' if bounded else ''} ORDER BY key, last_modified DESC, version_id DESC LIMIT ?"
    )
    for inclusive in (False, True)
    for bounded in (False, True)
}

_LIST_COLS = "key, size, etag, last_modified, storage_class"
_LIST_VISIBLE = "is_latest = 1 AND is_delete_marker = 0"
# (lower bound inclusive?, upper bound present?) -> query; all seek on the primary key. A key has
# one latest row, so "key, version_id" orders as "key" does; it is spelled out because only the
# primary key gives that order without a sort: otherwise the planner may pick objects_versions
# (narrower than the table rows) and look every row up in the table.
_SQL_LIST: dict[tuple[bool, bool], str] = {
    (inclusive, bounded): (
        f"SELECT {_LIST_COLS} FROM objects WHERE bucket_id = ? AND key {'>=' if inclusive else '>'} ?"
        f"{' AND key < ?' if bounded else ''} AND {_LIST_VISIBLE} ORDER BY key, version_id LIMIT ?"
    )
    for inclusive in (False, True)
    for bounded in (False, True)
}

_SQL_MANIFESTS_FIRST = (
    "SELECT bucket_id, key, version_id, manifest FROM objects ORDER BY bucket_id, key, version_id LIMIT ?"
)
_SQL_MANIFESTS_AFTER = (
    "SELECT bucket_id, key, version_id, manifest FROM objects "
    "WHERE (bucket_id, key, version_id) > (?, ?, ?) ORDER BY bucket_id, key, version_id LIMIT ?"
)
_SQL_GC_PUSH = "INSERT INTO gc_queue (chunk_id, queued_at) VALUES (?, ?)"
# Tagging: a version's tags change in place (no new version); delete markers have none.
_SQL_TAGS_SET_LATEST = (
    "UPDATE objects SET tags = ? WHERE bucket_id = ? AND key = ? AND is_latest = 1 "
    "AND is_delete_marker = 0 RETURNING version_id"
)
_SQL_TAGS_SET_VERSION = (
    "UPDATE objects SET tags = ? WHERE bucket_id = ? AND key = ? AND version_id = ? "
    "AND is_delete_marker = 0 RETURNING version_id"
)
_SQL_BUCKET_TAGS = "SELECT tags FROM buckets WHERE id = ?"
_SQL_BUCKET_SET_TAGS = "UPDATE buckets SET tags = ? WHERE id = ?"
_SQL_GC_TAKE = "SELECT id, chunk_id FROM gc_queue WHERE queued_at < ? ORDER BY id LIMIT ?"
_SQL_GC_TAKE_OWNED = (
    "SELECT id, chunk_id FROM gc_queue WHERE queued_at < ? AND substr(chunk_id, 1, 1) = ? ORDER BY id LIMIT ?"
)
_SQL_GC_ACK = "DELETE FROM gc_queue WHERE id = ?"


def _queue_garbage(conn: sqlite3.Connection, chunk_ids: Iterable[bytes]) -> None:
    """Drop one reference per occurrence (a chunk may be shared by copies; see sqlite_multipart)."""
    release_chunks(conn, chunk_ids)


_SQL_OBJECT_CURRENT_ETAG = (
    "SELECT etag FROM objects WHERE bucket_id = ? AND key = ? AND is_latest = 1 AND is_delete_marker = 0"
)


def _write_object_row(
    conn: sqlite3.Connection,
    obj: ObjectVersion,
    *,
    keep_renamed: bool = True,
    condition: WriteCondition | None = None,
) -> ObjectVersion:
    """Commit obj as the latest version of its key inside the caller's transaction.

    keep_renamed: chunks the replaced version names again keep their reference (a plain PUT);
    False when obj's references were taken elsewhere (shared chunks, completed parts), so every
    occurrence in the replaced version is released.
    """
    key = obj.key.encode("utf-8")
    bucket = conn.execute(_SQL_BUCKET_VERSIONING, (obj.bucket_id,)).fetchone()
    if bucket is None:
        raise NoSuchBucketError(obj.bucket_id)
    version_id = version_for_write(bucket[0], obj.version_id)
    if version_id != obj.version_id:
        obj = replace(obj, version_id=version_id)
    if condition is not None:
        current = conn.execute(_SQL_OBJECT_CURRENT_ETAG, (obj.bucket_id, key)).fetchone()
        check_write_condition(condition, current[0] if current is not None else None)
    kept = frozenset(ref.chunk_id for ref in obj.manifest) if keep_renamed else frozenset()
    last_modified = obj.last_modified
    garbage: list[bytes] = []
    other_latest = False  # another version is the latest: demote it
    for version_id, previous_modified, previous_manifest in conn.execute(
        _SQL_OBJECT_PREVIOUS, (obj.bucket_id, key, obj.version_id)
    ).fetchall():
        last_modified = max(last_modified, previous_modified + 1e-6)
        if version_id == obj.version_id:
            garbage = [c for c in _chunk_ids(previous_manifest) if c not in kept]
        else:
            other_latest = True  # the query returns other versions only when they are the latest
    if garbage:
        _queue_garbage(conn, garbage)
    if other_latest:
        conn.execute(_SQL_OBJECT_DEMOTE, (obj.bucket_id, key, obj.version_id))
    columns = (
        obj.bucket_id,
        key,
        obj.version_id,
        1,  # is_latest
        int(obj.is_delete_marker),
        obj.size,
        obj.etag,
        obj.content_type,
        _dumps(obj.headers),
        _dumps(obj.user_metadata),
        _dumps(obj.checksums),
        obj.storage_class,
    )
    conn.execute(
        _SQL_OBJECT_REPLACE,
        (
            *columns,
            last_modified,
            encode_manifest(obj.manifest),
            _dumps(obj.tags),
            dumps_sizes(obj.part_sizes),
            obj.acl,
        ),
    )
    if last_modified == obj.last_modified and obj.is_latest:
        return obj  # as stored (the usual case: no copy of a 17-field value)
    return replace(obj, last_modified=last_modified, is_latest=True)


def _delete_one(
    conn: sqlite3.Connection, bucket_id: int, versioning: str, key: str, version_id: str | None, now: float
) -> DeleteOutcome:
    """S3 DeleteObject inside the caller's transaction (see MetadataStore.delete_version)."""
    raw = key.encode("utf-8")
    if version_id is None:
        rows = conn.execute(_SQL_OBJECT_LATEST, (bucket_id, raw)).fetchall()
        existed = any(not marker for marker, _ in rows)
        if not versioning:
            if rows:
                conn.execute(_SQL_OBJECT_DELETE_LATEST, (bucket_id, raw))
                _queue_garbage(conn, (c for _, manifest in rows for c in _chunk_ids(manifest)))
            return DeleteOutcome(existed, None, False)
        marker = ObjectVersion(bucket_id, key, "null", 0, "", now, content_type="", is_delete_marker=True)
        stored = _write_object_row(conn, marker)
        return DeleteOutcome(existed, stored.version_id, True)
    row = conn.execute(_SQL_VERSION_ROW, (bucket_id, raw, version_id)).fetchone()
    if row is None:
        return DeleteOutcome(False, version_id, False)
    was_latest, was_marker, manifest = row
    conn.execute(_SQL_VERSION_DELETE, (bucket_id, raw, version_id))
    _queue_garbage(conn, _chunk_ids(manifest))
    if was_latest:
        conn.execute(_SQL_VERSION_PROMOTE, (bucket_id, raw, bucket_id, raw))
    return DeleteOutcome(not was_marker, version_id, bool(was_marker))


# --- the writer thread -------------------------------------------------------------------------


@dataclass(slots=True)
class _Job:
    op: Callable[[sqlite3.Connection], object]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[object]
    prepare: Callable[[], None] | None = None
    """Blocking; runs in the writer thread before the transaction (e.g. the chunks' fsync)."""


_Outcome = tuple[asyncio.Future[object], object, BaseException | None]


def _resolve(outcomes: list[_Outcome]) -> None:
    """Runs on the event loop: settle the futures of one batch (skipping cancelled callers)."""
    for future, value, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class _TransactionLost(Exception):
    """The database rolled the whole transaction back (e.g. disk full): no operation in it committed."""


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


class _Writer:
    """One thread, one read-write connection, group commit."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, name=f"pails-sqlite-writer:{path.name}", daemon=True
        )
        self.commits = 0
        self._writer_lock: WriterLock | None = None

    def start(self) -> concurrent.futures.Future[None]:
        self._thread.start()
        return self._ready

    def submit(
        self, op: Callable[[sqlite3.Connection], object], prepare: Callable[[], None] | None = None
    ) -> asyncio.Future[object]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the metadata store is closed")
            self._queue.put(_Job(op, loop, future, prepare))
        return future

    def stop(self) -> None:
        """Refuse new operations; those already queued still run, then the thread exits."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)

    def join(self) -> None:
        self._thread.join()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, cached_statements=256)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"{self._path}: SQLite refused WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")  # the WAL is fsynced at every commit
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            migrate_sqlite(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            with self._lock:
                self._closed = True
            self._ready.set_exception(exc)
            return
        self._writer_lock = WriterLock(self._path)
        self._ready.set_result(None)
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                jobs = [first]
                while len(jobs) < _MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    jobs.append(item)
                while jobs:
                    try:
                        jobs = self._transaction(conn, jobs)
                    except Exception as exc:  # e.g. SAVEPOINT itself failed: no caller may hang
                        conn.rollback()
                        self._deliver([(job, None, exc) for job in jobs])
                        jobs = []
        finally:
            with self._lock:
                self._closed = True
            leftovers: list[_Job] = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    leftovers.append(item)
            self._deliver([(job, None, RuntimeError("the metadata store is closed")) for job in leftovers])
            conn.close()
            if self._writer_lock is not None:
                self._writer_lock.close()

    def _transaction(self, conn: sqlite3.Connection, jobs: list[_Job]) -> list[_Job]:
        """Run jobs in one transaction and settle them; return the jobs left for another one.

        Jobs are left over only when the database aborted the transaction under us.

        Each job's prepare step (the chunks' fsync) runs before the transaction, so that the
        cross-process writer lock (pails.meta.sqlite_lock) is held only for the statements and
        the commit's own WAL fsync.
        """
        ready: list[_Job] = []
        for job in jobs:
            if job.prepare is None:
                ready.append(job)
                continue
            prepare, job.prepare = job.prepare, None  # once, even if the job is retried
            try:
                prepare()
            except Exception as exc:
                self._deliver([(job, None, exc)])
            else:
                ready.append(job)
        if not ready:
            return []
        assert self._writer_lock is not None
        self._writer_lock.acquire()
        try:
            done, left = self._locked_transaction(conn, ready)
        finally:
            self._writer_lock.release()
        if done:
            self.commits += 1
            self._deliver(done)
        return left

    def _locked_transaction(
        self, conn: sqlite3.Connection, jobs: list[_Job]
    ) -> tuple[list[tuple[_Job, object, BaseException | None]], list[_Job]]:
        """(results of a committed transaction, still to be delivered; jobs left for another one)."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._deliver([(job, None, exc) for job in jobs])
            return [], []
        if len(jobs) == 1:
            return self._single_job_transaction(conn, jobs[0])
        done: list[tuple[_Job, object, BaseException | None]] = []
        for index, job in enumerate(jobs):
            conn.execute("SAVEPOINT op")
            try:
                value = job.op(conn)
            except Exception as exc:
                if not self._rollback_to_savepoint(conn):
                    lost = _TransactionLost(f"the transaction was rolled back: {exc!r}")
                    self._deliver([(j, None, lost) for j, _, _ in done] + [(job, None, exc)])
                    return [], jobs[index + 1 :]
                done.append((job, None, exc))
            else:
                conn.execute("RELEASE op")
                done.append((job, value, None))
        if not self._commit(conn, [job for job, _, _ in done]):
            return [], []
        return done, []

    def _single_job_transaction(
        self, conn: sqlite3.Connection, job: _Job
    ) -> tuple[list[tuple[_Job, object, BaseException | None]], list[_Job]]:
        """A batch of one needs no SAVEPOINT: a failing operation rolls the whole transaction back,
        which undoes exactly that operation (two statements fewer on every lone write)."""
        try:
            value = job.op(conn)
        except Exception as exc:
            _rollback(conn)
            self._deliver([(job, None, exc)])
            return [], []
        if not self._commit(conn, [job]):
            return [], []
        return [(job, value, None)], []

    def _commit(self, conn: sqlite3.Connection, jobs: list[_Job]) -> bool:
        """COMMIT; if that fails, roll back and fail every job of the transaction."""
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            self._deliver([(job, None, exc) for job in jobs])
            return False
        return True

    @staticmethod
    def _rollback_to_savepoint(conn: sqlite3.Connection) -> bool:
        """Undo the failed operation only; False if the whole transaction is already gone."""
        if not conn.in_transaction:
            return False
        try:
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
        except sqlite3.Error:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            return False
        return True

    @staticmethod
    def _deliver(results: list[tuple[_Job, object, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for job, value, error in results:
            by_loop.setdefault(job.loop, []).append((job.future, value, error))
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, outcomes)
            except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
                pass


# --- the store ---------------------------------------------------------------------------------


class SqliteMetadataStore(SqliteMultipart, SqliteAccess):
    """MetadataStore on one SQLite file (see the module docstring for the threading model)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._writer: _Writer | None = None
        self._reader: sqlite3.Connection | None = None
        self._objects: CommitValidatedCache[ObjectVersion] | None = None

    # lifecycle

    async def open(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = _Writer(self.path)
        await asyncio.wrap_future(writer.start())  # creates the file and runs the migrations
        try:
            reader = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                cached_statements=256,
            )
            reader.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        except BaseException:
            writer.stop()
            await asyncio.to_thread(writer.join)
            raise
        self._writer, self._reader = writer, reader
        self._objects = CommitValidatedCache(reader)

    async def close(self) -> None:
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        self._objects = None
        if reader is not None:
            reader.close()
        if writer is not None:
            writer.stop()
            await asyncio.to_thread(writer.join)

    @property
    def commit_count(self) -> int:
        """Transactions committed by the writer since open (one per group of writes)."""
        return self._writer.commits if self._writer is not None else 0

    def set_read_trace(self, callback: Callable[[str], None] | None) -> None:
        """Call `callback` with every SQL statement the read connection runs (tests, debugging)."""
        self._read().set_trace_callback(callback)

    def _read(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("the metadata store is not open")
        return self._reader

    async def _write(self, op: WriteOp[T], prepare: Callable[[], None] | None = None) -> T:
        if self._writer is None:
            raise RuntimeError("the metadata store is not open")
        return cast(T, await self._writer.submit(op, prepare))

    # buckets

    async def create_bucket(self, name: str, owner_id: str, region: str) -> Bucket:
        created_at = time.time()

        def op(conn: sqlite3.Connection) -> Bucket:
            cursor = conn.execute(_SQL_BUCKET_INSERT, (name, owner_id, region, created_at))
            if cursor.rowcount == 0:  # the name is taken: the winner's owner decides the S3 error
                raise BucketExists(conn.execute(_SQL_BUCKET_OWNER, (name,)).fetchone()[0])
            assert cursor.lastrowid is not None
            return Bucket(cursor.lastrowid, name, owner_id, region, created_at)

        return await self._write(op)

    async def get_bucket(self, name: str) -> Bucket | None:
        rows = self._read().execute(_SQL_BUCKET_BY_NAME, (name,)).fetchall()
        return bucket_of(rows[0]) if rows else None

    async def list_buckets(self, owner_id: str | None = None) -> list[Bucket]:
        conn = self._read()
        if owner_id is None:
            rows = conn.execute(_SQL_BUCKETS_ALL).fetchall()
        else:
            rows = conn.execute(_SQL_BUCKETS_OF, (owner_id,)).fetchall()
        return [bucket_of(row) for row in rows]

    async def delete_bucket(self, name: str) -> None:
        """Raises NoSuchBucketError if there is no such bucket, BucketNotEmptyError if any row is left."""

        def op(conn: sqlite3.Connection) -> None:
            row = conn.execute(_SQL_BUCKET_ID, (name,)).fetchone()
            if row is None:
                raise NoSuchBucketError(name)
            if conn.execute(_SQL_BUCKET_HAS_ROWS, (row[0],)).fetchone() is not None:
                raise BucketNotEmptyError(name)
            drop_bucket_uploads(conn, row[0])
            conn.execute(_SQL_BUCKET_DELETE, (row[0],))

        await self._write(op)

    # objects

    _write_object_row = staticmethod(_write_object_row)

    async def put_object(
        self,
        obj: ObjectVersion,
        *,
        before_commit: Callable[[], None] | None = None,
        condition: WriteCondition | None = None,
        shared: SharedChunks | None = None,
    ) -> ObjectVersion:
        def op(conn: sqlite3.Connection) -> ObjectVersion:
            if shared is not None:
                take_shares(conn, shared)
            return _write_object_row(conn, obj, keep_renamed=shared is None, condition=condition)

        return await self._write(op, before_commit)  # before the transaction, so before its COMMIT

    async def get_object(
        self, bucket_id: int, key: str, version_id: str | None = None, *, head_only: bool = False
    ) -> ObjectVersion | None:
        """The latest version of the key, delete markers included (callers check is_delete_marker),
        or the version given (head_only: without manifest and ACL, see MetadataStore)."""
        cache = self._objects
        if cache is None:
            raise RuntimeError("the metadata store is not open")
        entries = cache.current()
        cache_key = (bucket_id, key, version_id, head_only)
        found = entries.get(cache_key, _MISSING)
        if found is _MISSING and head_only:  # a whole version read before serves a HEAD too
            found = entries.get((bucket_id, key, version_id, False), _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        obj = self._read_object(bucket_id, key, version_id, head_only)
        cache.put(entries, cache_key, obj)
        return obj

    def _read_object(
        self, bucket_id: int, key: str, version_id: str | None, head_only: bool
    ) -> ObjectVersion | None:
        raw = key.encode("utf-8")
        conn = self._read()
        if head_only:
            if version_id is None:
                row = conn.execute(_SQL_OBJECT_HEAD, (bucket_id, raw)).fetchone()
            else:
                row = conn.execute(_SQL_OBJECT_HEAD_VERSION, (bucket_id, raw, version_id)).fetchone()
            return None if row is None else object_head_of(row, bucket_id, key)
        if version_id is None:
            row = conn.execute(_SQL_OBJECT_GET, (bucket_id, raw)).fetchone()
        else:
            row = conn.execute(_SQL_OBJECT_GET_VERSION, (bucket_id, raw, version_id)).fetchone()
        return None if row is None else object_of(row)

    async def set_versioning(self, bucket_id: int, status: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(_SQL_BUCKET_SET_VERSIONING, (status, bucket_id)).rowcount == 0:
                raise NoSuchBucketError(bucket_id)

        await self._write(op)

    async def set_object_tags(
        self, bucket_id: int, key: str, version_id: str | None, tags: dict[str, str]
    ) -> str | None:
        params: tuple[object, ...] = (_dumps(tags), bucket_id, key.encode("utf-8"))

        def op(conn: sqlite3.Connection) -> str | None:
            if version_id is None:
                row = conn.execute(_SQL_TAGS_SET_LATEST, params).fetchone()
            else:
                row = conn.execute(_SQL_TAGS_SET_VERSION, (*params, version_id)).fetchone()
            return None if row is None else str(row[0])

        return await self._write(op)

    async def get_bucket_tags(self, bucket_id: int) -> dict[str, str] | None:
        row = self._read().execute(_SQL_BUCKET_TAGS, (bucket_id,)).fetchone()
        if row is None:
            raise NoSuchBucketError(bucket_id)
        return None if row[0] is None else _loads(row[0])

    async def set_bucket_tags(self, bucket_id: int, tags: dict[str, str] | None) -> None:
        value = None if tags is None else _dumps(tags)

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(_SQL_BUCKET_SET_TAGS, (value, bucket_id)).rowcount == 0:
                raise NoSuchBucketError(bucket_id)

        await self._write(op)

    async def delete_object(self, bucket_id: int, key: str) -> bool:
        return (await self.delete_objects(bucket_id, [key]))[0]

    async def delete_objects(self, bucket_id: int, keys: Sequence[str]) -> list[bool]:
        """Delete the latest version of each key, in one transaction; True where an object existed.
        On a versioned bucket each key gets a delete marker instead (see delete_version)."""
        outcomes = await self.delete_versions(bucket_id, [(key, None) for key in keys], now=time.time())
        return [outcome.existed for outcome in outcomes]

    async def delete_version(
        self, bucket_id: int, key: str, version_id: str | None, *, now: float
    ) -> DeleteOutcome:
        return (await self.delete_versions(bucket_id, [(key, version_id)], now=now))[0]

    async def delete_versions(
        self, bucket_id: int, items: Sequence[tuple[str, str | None]], *, now: float
    ) -> list[DeleteOutcome]:
        """Every version flip here (delete marker, promotion) runs in the single writer's transaction."""
        todo = list(items)

        def op(conn: sqlite3.Connection) -> list[DeleteOutcome]:
            row = conn.execute(_SQL_BUCKET_VERSIONING, (bucket_id,)).fetchone()
            versioning = row[0] if row is not None else ""
            return [_delete_one(conn, bucket_id, versioning, key, vid, now) for key, vid in todo]

        return await self._write(op)

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
        conn = self._read()
        conn.execute("BEGIN")
        try:
            resume: tuple[float, str] | None = None
            if key_marker and version_id_marker:
                found = conn.execute(
                    _SQL_VERSION_POSITION, (bucket_id, key_marker.encode("utf-8"), version_id_marker)
                ).fetchone()
                if found is not None:
                    resume = (found[0], found[1])
            plan = VersionPlan(prefix, delimiter, key_marker, max_keys, resume=resume)
            query = plan.next_query()
            while query is not None:
                if query.key is not None:
                    sql = _SQL_VERSIONS_WITHIN
                    params: tuple[object, ...] = (
                        bucket_id,
                        query.key,
                        query.modified,
                        query.modified,
                        query.version_id,
                        query.limit,
                    )
                else:
                    sql = _SQL_VERSIONS[query.inclusive, query.upper is not None]
                    if query.upper is not None:
                        params = (bucket_id, query.lower, query.upper, query.limit)
                    else:
                        params = (bucket_id, query.lower, query.limit)
                cursor = conn.execute(sql, params)
                try:
                    for raw, vid, latest, marker, size, etag, modified, storage_class in cursor:
                        if not plan.offer(
                            bytes(raw), vid, latest, marker, size, etag, modified, storage_class
                        ):
                            break
                finally:
                    cursor.close()
                plan.end_batch()
                query = plan.next_query()
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
        return plan.page()

    async def list_objects(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        """One page of S3 ListObjects, in UTF-8 byte order, from one read snapshot.

        The seeks are planned by pails.meta.listing.ListingPlan; each query's cursor is read lazily,
        so a query that stops at a common prefix reads one row.
        """
        plan = ListingPlan(prefix, delimiter, start_after, max_keys)
        if (query := plan.next_query()) is None:
            return plan.page()
        conn = self._read()
        conn.execute("BEGIN")
        try:
            while query is not None:
                sql = _SQL_LIST[query.inclusive, query.upper is not None]
                if query.upper is not None:
                    params: tuple[object, ...] = (bucket_id, query.lower, query.upper, query.limit)
                else:
                    params = (bucket_id, query.lower, query.limit)
                cursor = conn.execute(sql, params)
                try:
                    for raw_key, size, etag, last_modified, storage_class in cursor:
                        if not plan.offer(bytes(raw_key), size, etag, last_modified, storage_class):
                            break
                finally:
                    cursor.close()
                plan.end_batch()
                query = plan.next_query()
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
        return plan.page()

    # garbage collection

    async def take_garbage(
        self, limit: int, queued_before: float, owner: int | None = None
    ) -> list[tuple[int, bytes]]:
        """The oldest chunks queued before the given time (not removed until ack_garbage).

        Chunk ids are owned by one object version: a chunk is queued only when the version that
        named it is replaced or deleted, minus the chunks the replacing version names again.
        """
        if limit <= 0:
            return []
        if owner is None:
            rows = self._read().execute(_SQL_GC_TAKE, (queued_before, limit)).fetchall()
        else:
            args = (queued_before, bytes([owner]), limit)
            rows = self._read().execute(_SQL_GC_TAKE_OWNED, args).fetchall()
        return [(row[0], bytes(row[1])) for row in rows]

    async def ack_garbage(self, queue_ids: Sequence[int]) -> None:
        ids = [(queue_id,) for queue_id in queue_ids]
        if not ids:
            return

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(_SQL_GC_ACK, ids)

        await self._write(op)

    async def referenced_chunks(self) -> AsyncIterator[bytes]:
        """Every chunk id named by an object or part row, from one snapshot of the database.

        A private read connection holds one read transaction for the whole walk, so a reference
        that moves while it runs (a completion moving parts into an object, a copy, then a delete
        of the source) is always seen at one of its places.
        """
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("BEGIN")
            rows = conn.execute(_SQL_MANIFESTS_FIRST, (_SCAN_BATCH,)).fetchall()
            while rows:
                for row in rows:
                    for chunk_id in _chunk_ids(row[3]):
                        yield chunk_id
                if len(rows) < _SCAN_BATCH:
                    break
                bucket_id, key, version_id = rows[-1][:3]
                await asyncio.sleep(0)
                rows = conn.execute(
                    _SQL_MANIFESTS_AFTER, (bucket_id, key, version_id, _SCAN_BATCH)
                ).fetchall()
            for manifests in part_manifest_batches(conn, _SCAN_BATCH):
                for manifest in manifests:
                    for chunk_id in _chunk_ids(manifest):
                        yield chunk_id
                await asyncio.sleep(0)
        finally:
            conn.close()
