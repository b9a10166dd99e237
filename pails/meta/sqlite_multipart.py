"""SQLite: multipart uploads, their parts, and the reference counts of shared chunks.

A mixin of SqliteMetadataStore (it uses the store's reader connection, its group-commit writer
and its object-row writer); the rules themselves (assembling parts, conditions) are the pure
functions of pails.meta.rules, shared with PostgreSQL.

Chunk references (table chunk_shares): a chunk is born with one reference, held by the object or
part row that names it. Sharing it (CopyObject, UploadPartCopy) adds one per new occurrence;
release_chunks() drops one per occurrence and queues the chunk for GC only when none is left.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from pails.meta.encoding import dumps as _dumps
from pails.meta.encoding import encode_manifest
from pails.meta.encoding import manifest_chunk_ids as _chunk_ids
from pails.meta.listing import KeyIdListingPlan
from pails.meta.models import ObjectVersion, Part, SharedChunks, Upload, UploadPage, WriteCondition
from pails.meta.rows import PART_COLS, UPLOAD_COLS, part_of, upload_checksum_column, upload_of
from pails.meta.rules import assemble_parts, completed_object, completion_retry
from pails.meta.store import NoSuchBucketError, NoSuchUploadError, SourceChangedError

T = TypeVar("T")

_SQL_GC_PUSH = "INSERT INTO gc_queue (chunk_id, queued_at) VALUES (?, ?)"
_SQL_SHARE_GET = "SELECT extra FROM chunk_shares WHERE chunk_id = ?"
_SQL_SHARE_DROP = "UPDATE chunk_shares SET extra = extra - 1 WHERE chunk_id = ?"
_SQL_SHARE_GONE = "DELETE FROM chunk_shares WHERE chunk_id = ?"
_SQL_SHARE_ADD = (
    "INSERT INTO chunk_shares (chunk_id, extra) VALUES (?, 1) "
    "ON CONFLICT (chunk_id) DO UPDATE SET extra = extra + 1"
)
_SQL_SOURCE_MANIFEST = (
    "SELECT manifest FROM objects WHERE bucket_id = ? AND key = ? AND is_latest = 1 AND is_delete_marker = 0"
)
_SQL_SOURCE_VERSION_MANIFEST = (
    "SELECT manifest FROM objects WHERE bucket_id = ? AND key = ? AND version_id = ? AND is_delete_marker = 0"
)

_SQL_UPLOAD_INSERT = f"INSERT INTO uploads ({UPLOAD_COLS}) VALUES ({', '.join('?' * 13)})"
_SQL_UPLOAD_GET = f"SELECT {UPLOAD_COLS} FROM uploads WHERE bucket_id = ? AND upload_id = ?"
_SQL_UPLOAD_STATE = "SELECT state FROM uploads WHERE bucket_id = ? AND upload_id = ?"
_SQL_PURGE_FINISHED = (
    "DELETE FROM uploads WHERE (bucket_id, upload_id) IN (SELECT bucket_id, upload_id FROM uploads "
    "WHERE state != 'uploading' AND initiated < ? LIMIT ?)"
)
_SQL_UPLOAD_FINISH = "UPDATE uploads SET state = ?, final_etag = ? WHERE bucket_id = ? AND upload_id = ?"
_SQL_UPLOADS_OF_BUCKET = "SELECT upload_id FROM uploads WHERE bucket_id = ?"
_SQL_UPLOADS_DROP = "DELETE FROM uploads WHERE bucket_id = ?"
_SQL_UPLOADS_LIST = (
    f"SELECT {UPLOAD_COLS} FROM uploads WHERE bucket_id = ? AND state = 'uploading' "
    "AND (key > ? OR (key = ? AND upload_id > ?)) ORDER BY key, upload_id LIMIT ?"
)

_SQL_PART_REPLACE = f"INSERT OR REPLACE INTO parts ({PART_COLS}) VALUES ({', '.join('?' * 8)})"
_SQL_PART_MANIFEST = "SELECT manifest FROM parts WHERE bucket_id = ? AND upload_id = ? AND part_number = ?"
_SQL_PARTS_ALL = f"SELECT {PART_COLS} FROM parts WHERE bucket_id = ? AND upload_id = ? ORDER BY part_number"
_SQL_PARTS_MANIFESTS = "SELECT manifest FROM parts WHERE bucket_id = ? AND upload_id = ?"
_SQL_PARTS_PAGE = (
    f"SELECT {PART_COLS} FROM parts WHERE bucket_id = ? AND upload_id = ? AND part_number > ? "
    "ORDER BY part_number LIMIT ?"
)
_SQL_PARTS_DROP = "DELETE FROM parts WHERE bucket_id = ? AND upload_id = ?"
_SQL_PARTS_OF_BUCKET_DROP = "DELETE FROM parts WHERE bucket_id = ?"
_SQL_PART_MANIFESTS_FIRST = (
    "SELECT bucket_id, upload_id, part_number, manifest FROM parts "
    "ORDER BY bucket_id, upload_id, part_number LIMIT ?"
)
_SQL_PART_MANIFESTS_AFTER = (
    "SELECT bucket_id, upload_id, part_number, manifest FROM parts "
    "WHERE (bucket_id, upload_id, part_number) > (?, ?, ?) "
    "ORDER BY bucket_id, upload_id, part_number LIMIT ?"
)


# --- chunk references ----------------------------------------------------------------------------


def release_chunks(conn: sqlite3.Connection, chunk_ids: Iterable[bytes]) -> None:
    """Drop one reference per occurrence; a chunk whose last reference goes is queued for GC."""
    now = time.time()
    for chunk_id in chunk_ids:
        row = conn.execute(_SQL_SHARE_GET, (chunk_id,)).fetchone()
        if row is None:
            conn.execute(_SQL_GC_PUSH, (chunk_id, now))
        elif row[0] > 1:
            conn.execute(_SQL_SHARE_DROP, (chunk_id,))
        else:
            conn.execute(_SQL_SHARE_GONE, (chunk_id,))


def take_shares(conn: sqlite3.Connection, shared: SharedChunks) -> None:
    """Check that the source still names exactly the manifest that was read, then add one
    reference per shared occurrence. Both happen in the caller's transaction."""
    source = (shared.bucket_id, shared.key.encode("utf-8"))
    if shared.version_id is None:
        row = conn.execute(_SQL_SOURCE_MANIFEST, source).fetchone()
    else:
        row = conn.execute(_SQL_SOURCE_VERSION_MANIFEST, (*source, shared.version_id)).fetchone()
    if row is None or bytes(row[0]) != encode_manifest(shared.source_manifest):
        raise SourceChangedError(shared.key)
    owned = {ref.chunk_id for ref in shared.source_manifest}
    for chunk_id in shared.chunk_ids:
        if chunk_id not in owned:
            raise ValueError("a shared chunk must belong to the source object")
        conn.execute(_SQL_SHARE_ADD, (chunk_id,))


def drop_bucket_uploads(conn: sqlite3.Connection, bucket_id: int) -> None:
    """Before a bucket row goes: release every part's chunks and forget its uploads."""
    for (upload_id,) in conn.execute(_SQL_UPLOADS_OF_BUCKET, (bucket_id,)).fetchall():
        rows = conn.execute(_SQL_PARTS_MANIFESTS, (bucket_id, upload_id)).fetchall()
        release_chunks(conn, (c for (manifest,) in rows for c in _chunk_ids(manifest)))
    conn.execute(_SQL_PARTS_OF_BUCKET_DROP, (bucket_id,))
    conn.execute(_SQL_UPLOADS_DROP, (bucket_id,))


def part_manifest_batches(conn: sqlite3.Connection, batch: int) -> Iterable[list[bytes]]:
    """Every part's encoded manifest, a batch at a time (one snapshot if conn is in a transaction)."""
    rows = conn.execute(_SQL_PART_MANIFESTS_FIRST, (batch,)).fetchall()
    while rows:
        yield [bytes(row[3]) for row in rows]
        if len(rows) < batch:
            return
        last = rows[-1]
        rows = conn.execute(_SQL_PART_MANIFESTS_AFTER, (last[0], last[1], last[2], batch)).fetchall()


# --- rows ----------------------------------------------------------------------------------------


class SqliteMultipart:
    """The multipart half of SqliteMetadataStore."""

    if TYPE_CHECKING:

        def _read(self) -> sqlite3.Connection: ...

        async def _write(
            self, op: Callable[[sqlite3.Connection], T], prepare: Callable[[], None] | None = None
        ) -> T: ...

        @staticmethod
        def _write_object_row(
            conn: sqlite3.Connection,
            obj: ObjectVersion,
            *,
            keep_renamed: bool,
            condition: WriteCondition | None,
        ) -> ObjectVersion: ...

    async def create_upload(self, upload: Upload) -> None:
        values = (
            upload.bucket_id,
            upload.upload_id,
            upload.key.encode("utf-8"),
            "uploading",
            upload.initiated,
            upload.content_type,
            _dumps(upload.headers),
            _dumps(upload.user_metadata),
            upload.storage_class,
            upload_checksum_column(upload),
            None,
            _dumps(upload.tags),
            upload.acl,
        )

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM buckets WHERE id = ?", (upload.bucket_id,)).fetchone() is None:
                raise NoSuchBucketError(upload.bucket_id)
            conn.execute(_SQL_UPLOAD_INSERT, values)

        await self._write(op)

    async def get_upload(self, bucket_id: int, upload_id: str) -> Upload | None:
        row = self._read().execute(_SQL_UPLOAD_GET, (bucket_id, upload_id)).fetchone()
        return upload_of(row) if row is not None else None

    async def put_part(
        self,
        part: Part,
        *,
        before_commit: Callable[[], None] | None = None,
        shared: SharedChunks | None = None,
    ) -> None:
        values = (
            part.bucket_id,
            part.upload_id,
            part.part_number,
            part.size,
            part.etag,
            _dumps(part.checksums),
            part.last_modified,
            encode_manifest(part.manifest),
        )
        where = (part.bucket_id, part.upload_id)

        def op(conn: sqlite3.Connection) -> None:
            state = conn.execute(_SQL_UPLOAD_STATE, where).fetchone()
            if state is None or state[0] != "uploading":
                raise NoSuchUploadError(part.upload_id)
            if shared is not None:
                take_shares(conn, shared)
            old = conn.execute(_SQL_PART_MANIFEST, (*where, part.part_number)).fetchone()
            if old is not None:
                release_chunks(conn, _chunk_ids(old[0]))
            conn.execute(_SQL_PART_REPLACE, values)

        await self._write(op, before_commit)  # before the transaction, so before its COMMIT

    async def list_parts(self, bucket_id: int, upload_id: str, *, after: int, limit: int) -> list[Part]:
        if limit <= 0:
            return []
        rows = self._read().execute(_SQL_PARTS_PAGE, (bucket_id, upload_id, after, limit)).fetchall()
        return [part_of(row) for row in rows]

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
        plan: KeyIdListingPlan[Upload] = KeyIdListingPlan(
            prefix, delimiter, key_marker, upload_id_marker, max_uploads
        )
        conn = self._read()
        conn.execute("BEGIN")
        try:
            while not plan.done:
                rows = conn.execute(
                    _SQL_UPLOADS_LIST, (bucket_id, plan.after_key, plan.after_key, plan.after_id, 200)
                ).fetchall()
                for row in rows:
                    if not plan.offer(bytes(row[2]), row[1], partial(upload_of, row)):
                        break
                plan.end_batch(len(rows))
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
        return UploadPage(
            uploads=plan.items,
            common_prefixes=plan.prefixes,
            is_truncated=plan.truncated,
            next_key_marker=plan.next_key_marker,
            next_upload_id_marker=plan.last_id,
        )

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
        where = (bucket_id, upload_id)

        def op(conn: sqlite3.Connection) -> ObjectVersion:
            row = conn.execute(_SQL_UPLOAD_GET, where).fetchone()
            upload = None if row is None else upload_of(row)
            if (retried := completion_retry(upload, key, upload_id, last_modified)) is not None:
                return retried
            assert upload is not None
            parts = {part.part_number: part for part in map(part_of, conn.execute(_SQL_PARTS_ALL, where))}
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
            stored = self._write_object_row(conn, obj, keep_renamed=False, condition=condition)
            unused = (part for number, part in parts.items() if number not in assembled.used)
            release_chunks(conn, (ref.chunk_id for part in unused for ref in part.manifest))
            conn.execute(_SQL_PARTS_DROP, where)
            conn.execute(_SQL_UPLOAD_FINISH, ("complete", assembled.etag, *where))
            return stored

        return await self._write(op)

    async def purge_finished_uploads(self, initiated_before: float, limit: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(_SQL_PURGE_FINISHED, (initiated_before, limit))
            return cursor.rowcount

        return await self._write(op)

    async def abort_upload(self, bucket_id: int, upload_id: str) -> bool:
        where = (bucket_id, upload_id)

        def op(conn: sqlite3.Connection) -> bool:
            state = conn.execute(_SQL_UPLOAD_STATE, where).fetchone()
            if state is None or state[0] != "uploading":
                return False
            rows = conn.execute(_SQL_PARTS_MANIFESTS, where).fetchall()
            release_chunks(conn, (c for (manifest,) in rows for c in _chunk_ids(manifest)))
            conn.execute(_SQL_PARTS_DROP, where)
            conn.execute(_SQL_UPLOAD_FINISH, ("aborted", None, *where))
            return True

        return await self._write(op)
