"""Rows to values: the column lists both metadata backends select, and their decoders.

Both backends select the same columns in the same order, so one decoder serves each table.
"""

from __future__ import annotations

from typing import Any

from pails.meta.encoding import decode_manifest, loads, loads_sizes
from pails.meta.models import Bucket, ObjectVersion, Part, Upload

BUCKET_COLS = "id, name, owner_id, region, created_at, versioning"
OBJECT_COLS = (
    "bucket_id, key, version_id, is_latest, is_delete_marker, size, etag, content_type, headers, "
    "user_metadata, checksums, storage_class, last_modified, manifest, tags, part_sizes, acl"
)
UPLOAD_COLS = (
    "bucket_id, upload_id, key, state, initiated, content_type, headers, user_metadata, "
    "storage_class, checksum_algorithm, final_etag, tags, acl"
)
PART_COLS = "bucket_id, upload_id, part_number, size, etag, checksums, last_modified, manifest"


def upload_checksum_column(upload: Upload) -> str:
    """uploads.checksum_algorithm holds the algorithm and, for FULL_OBJECT, ":FULL_OBJECT" after
    it ("CRC32:FULL_OBJECT"); a bare algorithm is COMPOSITE, as every row before FULL_OBJECT was."""
    if upload.checksum_algorithm and upload.checksum_type == "FULL_OBJECT":
        return upload.checksum_algorithm + ":FULL_OBJECT"
    return upload.checksum_algorithm


def upload_checksum_type(column: str) -> str:
    algorithm, _, kind = column.partition(":")
    return (kind or "COMPOSITE") if algorithm else ""


def bucket_of(row: Any) -> Bucket:
    return Bucket(
        id=row[0], name=row[1], owner_id=row[2], region=row[3], created_at=row[4], versioning=row[5]
    )


def object_of(row: Any) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=row[0],
        key=bytes(row[1]).decode("utf-8"),
        version_id=row[2],
        is_latest=bool(row[3]),
        is_delete_marker=bool(row[4]),
        size=row[5],
        etag=row[6],
        content_type=row[7],
        headers=loads(row[8]),
        user_metadata=loads(row[9]),
        checksums=loads(row[10]),
        storage_class=row[11],
        last_modified=row[12],
        manifest=decode_manifest(row[13]),
        tags=loads(row[14]),
        part_sizes=loads_sizes(row[15]),
        acl=row[16],
    )


def upload_of(row: Any) -> Upload:
    return Upload(
        bucket_id=row[0],
        upload_id=row[1],
        key=bytes(row[2]).decode("utf-8"),
        state=row[3],
        initiated=row[4],
        content_type=row[5],
        headers=loads(row[6]),
        user_metadata=loads(row[7]),
        storage_class=row[8],
        checksum_algorithm=row[9].partition(":")[0],
        checksum_type=upload_checksum_type(row[9]),
        final_etag=row[10],
        tags=loads(row[11]),
        acl=row[12],
    )


def part_of(row: Any) -> Part:
    return Part(
        bucket_id=row[0],
        upload_id=row[1],
        part_number=row[2],
        size=row[3],
        etag=row[4],
        checksums=loads(row[5]),
        last_modified=row[6],
        manifest=decode_manifest(row[7]),
    )
