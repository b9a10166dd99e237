"""Rows to values: the column lists both metadata backends select, and their decoders.

Both backends select the same columns in the same order, so one decoder serves each table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from pails.meta.encoding import decode_manifest, loads, loads_sizes
from pails.meta.models import Bucket, ObjectVersion, Part, Upload

BUCKET_COLS = "id, name, owner_id, region, created_at, versioning"
OBJECT_COLS = (
    "bucket_id, key, version_id, is_latest, is_delete_marker, size, etag, content_type, headers, "
    "user_metadata, checksums, storage_class, last_modified, manifest, tags, part_sizes, acl"
)
# HeadObject's: OBJECT_COLS without bucket_id and key (the caller's), manifest and acl.
OBJECT_HEAD_COLS = (
    "version_id, is_latest, is_delete_marker, size, etag, content_type, headers, "
    "user_metadata, checksums, storage_class, last_modified, tags, part_sizes"
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


def _slot_setter(name: str) -> Callable[[ObjectVersion, object], None]:
    setter: Callable[[ObjectVersion, object], None] = ObjectVersion.__dict__[name].__set__
    return setter


# object_of runs on every GET/HEAD: a frozen dataclass's __init__ sets each of the 17 fields through
# object.__setattr__ (~7 us here); setting the slots directly builds the same value in a third of it.
_new = object.__new__
_set_bucket_id = _slot_setter("bucket_id")
_set_key = _slot_setter("key")
_set_version_id = _slot_setter("version_id")
_set_size = _slot_setter("size")
_set_etag = _slot_setter("etag")
_set_last_modified = _slot_setter("last_modified")
_set_content_type = _slot_setter("content_type")
_set_headers = _slot_setter("headers")
_set_user_metadata = _slot_setter("user_metadata")
_set_checksums = _slot_setter("checksums")
_set_storage_class = _slot_setter("storage_class")
_set_is_latest = _slot_setter("is_latest")
_set_is_delete_marker = _slot_setter("is_delete_marker")
_set_manifest = _slot_setter("manifest")
_set_tags = _slot_setter("tags")
_set_part_sizes = _slot_setter("part_sizes")
_set_acl = _slot_setter("acl")
_SET_FIELDS = 17
if len(fields(ObjectVersion)) != _SET_FIELDS:  # a new field must be set by object_of and object_head_of
    raise RuntimeError("pails.meta.rows: ObjectVersion's fields changed; update object_of")


def _set_described(obj: ObjectVersion, row: Any, i: int) -> None:
    """The columns version_id .. last_modified, which both row shapes hold in this order from i."""
    _set_version_id(obj, row[i])
    _set_is_latest(obj, bool(row[i + 1]))
    _set_is_delete_marker(obj, bool(row[i + 2]))
    _set_size(obj, row[i + 3])
    _set_etag(obj, row[i + 4])
    _set_content_type(obj, row[i + 5])
    _set_headers(obj, loads(row[i + 6]))
    _set_user_metadata(obj, loads(row[i + 7]))
    _set_checksums(obj, loads(row[i + 8]))
    _set_storage_class(obj, row[i + 9])
    _set_last_modified(obj, row[i + 10])


def object_of(row: Any) -> ObjectVersion:
    """An ObjectVersion from a row of OBJECT_COLS (equal to ObjectVersion(...) with every field)."""
    obj: ObjectVersion = _new(ObjectVersion)
    _set_bucket_id(obj, row[0])
    _set_key(obj, bytes(row[1]).decode("utf-8"))
    _set_described(obj, row, 2)
    _set_manifest(obj, decode_manifest(row[13]))
    _set_tags(obj, loads(row[14]))
    _set_part_sizes(obj, loads_sizes(row[15]))
    _set_acl(obj, row[16])
    return obj


def object_head_of(row: Any, bucket_id: int, key: str) -> ObjectVersion:
    """An ObjectVersion from a row of OBJECT_HEAD_COLS: no manifest, the default ACL."""
    obj: ObjectVersion = _new(ObjectVersion)
    _set_bucket_id(obj, bucket_id)
    _set_key(obj, key)
    _set_described(obj, row, 0)
    _set_manifest(obj, ())
    _set_tags(obj, loads(row[11]))
    _set_part_sizes(obj, loads_sizes(row[12]))
    _set_acl(obj, "")
    return obj


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
