"""S3 rules both metadata backends apply inside their transactions. Pure functions over values."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pails.checksums import combine_b64, new_checksum
from pails.meta.models import ChunkRef, ObjectVersion, Part, Upload, WriteCondition
from pails.meta.store import (
    ChecksumMismatchError,
    EntityTooSmallError,
    InvalidPartError,
    InvalidPartOrderError,
    NoSuchKeyError,
    NoSuchUploadError,
    PreconditionFailedError,
)

NULL_VERSION = "null"
VERSIONING_STATES = ("Enabled", "Suspended")
_NEWEST = (1 << 64) - 1


def new_version_id() -> str:
    """A version id: 16 hex digits of (2**64 - 1 - now in ns), then 16 random ones.

    Unique, and ordered by time newest first: the primary key (bucket_id, key, version_id) holds
    a key's versions newest first, and "null" (which sorts after every hex id) last.
    """
    return f"{_NEWEST - time.time_ns():016x}{secrets.token_hex(8)}"


def is_version_id(value: str) -> bool:
    """A version id Pails could have issued: "null" or 32 lower-case hex digits."""
    if value == NULL_VERSION:
        return True
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def version_for_write(versioning: str, requested: str) -> str:
    """The version id a new write gets: a fresh one while versioning is Enabled (unless the caller
    chose one), else the caller's (normally "null", which replaces the null version)."""
    if versioning == "Enabled" and requested == NULL_VERSION:
        return new_version_id()
    return requested


def check_write_condition(condition: WriteCondition | None, current_etag: str | None) -> None:
    """current_etag: the key's latest version's ETag, None if absent (or a delete marker)."""
    if condition is None:
        return
    if condition.if_none_match and current_etag is not None:
        raise PreconditionFailedError("If-None-Match")
    if condition.if_match is not None:
        if current_etag is None:
            raise NoSuchKeyError()
        if condition.if_match != "*" and condition.if_match != current_etag:
            raise PreconditionFailedError("If-Match")


def multipart_etag(part_etags: Sequence[str]) -> str:
    """S3's ETag of a multipart object: MD5 of the concatenated binary part MD5s, dash, count."""
    digest = hashlib.md5(b"".join(bytes.fromhex(etag) for etag in part_etags)).hexdigest()
    return f"{digest}-{len(part_etags)}"


def composite_checksum(algorithm: str, values: Sequence[str]) -> str:
    """The checksum of checksums S3 reports for a multipart object: "<base64>-<parts>"."""
    summed = new_checksum(algorithm)
    for value in values:
        summed.update(base64.b64decode(value))
    return f"{summed.b64digest()}-{len(values)}"


def checksum_type_of(obj: ObjectVersion) -> str:
    """An object's checksum type: COMPOSITE when its checksum is "<base64>-<parts>" (a checksum of
    the parts' checksums), else FULL_OBJECT (single PUTs, and FULL_OBJECT multipart uploads)."""
    return "COMPOSITE" if any("-" in value for value in obj.checksums.values()) else "FULL_OBJECT"


def check_expected_checksums(
    expected: Mapping[str, str], computed: Mapping[str, str], checksum_type: str
) -> None:
    """CompleteMultipartUpload's x-amz-checksum-<alg> (the whole object's checksum; for a COMPOSITE
    upload with or without its "-<parts>") and x-amz-checksum-type ("type" here) must match."""
    for algorithm, value in expected.items():
        if algorithm == "type":
            if value.strip().upper() != (checksum_type or "COMPOSITE"):
                raise ChecksumMismatchError("type")
            continue
        actual = computed.get(algorithm)
        if actual is None or value.strip() not in (
            actual,
            actual.rpartition("-")[0] if "-" in actual else actual,
        ):
            raise ChecksumMismatchError(algorithm)


@dataclass(frozen=True, slots=True)
class Assembled:
    manifest: tuple[ChunkRef, ...]
    size: int
    etag: str
    checksums: dict[str, str]
    used: frozenset[int]  # part numbers that became the object
    part_sizes: tuple[int, ...] = ()  # the sizes of those parts, in order


def completion_retry(
    upload: Upload | None, key: str, upload_id: str, last_modified: float
) -> ObjectVersion | None:
    """Check an upload about to be completed: NoSuchUploadError unless it is this key's upload and
    still open; for an upload already completed (a client retrying), the object it became (only
    its ETag matters to the caller), else None: go on and complete it."""
    if upload is None or upload.key != key:
        raise NoSuchUploadError(upload_id)
    if upload.state == "complete" and upload.final_etag is not None:
        return ObjectVersion(upload.bucket_id, key, "null", 0, upload.final_etag, last_modified)
    if upload.state != "uploading":
        raise NoSuchUploadError(upload_id)
    return None


def completed_object(
    upload: Upload, assembled: Assembled, *, key: str, last_modified: float
) -> ObjectVersion:
    """The object a completed upload becomes (its version id is settled when it is written)."""
    return ObjectVersion(
        bucket_id=upload.bucket_id,
        key=key,
        version_id="null",
        size=assembled.size,
        etag=assembled.etag,
        last_modified=last_modified,
        content_type=upload.content_type,
        headers=upload.headers,
        user_metadata=upload.user_metadata,
        checksums=assembled.checksums,
        storage_class=upload.storage_class,
        manifest=assembled.manifest,
        tags=upload.tags,
        part_sizes=assembled.part_sizes,
        acl=upload.acl,
    )


def _normal_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def assemble_parts(
    requested: Sequence[tuple[int, str, Mapping[str, str]]],
    stored: Mapping[int, Part],
    *,
    min_part_size: int,
    checksum_algorithm: str = "",
    checksum_type: str = "",
    expected_checksums: Mapping[str, str] | None = None,
) -> Assembled:
    """Validate a CompleteMultipartUpload part list against the stored parts, in S3's order of
    checks: ascending order, then each part exists with that ETag (and checksum, when given), then
    every part but the last has at least min_part_size bytes, then the object's checksum against
    `expected_checksums` (ChecksumMismatchError).

    The object's checksum: with checksum_type FULL_OBJECT, the parts' CRCs combined in part order
    into the CRC of the whole object (no data read); otherwise the composite "<base64>-<parts>"."""
    if not requested:
        raise InvalidPartError("no parts")
    previous = 0
    for number, _, _ in requested:
        if number <= previous:
            raise InvalidPartOrderError(number)
        previous = number
    parts: list[Part] = []
    for number, etag, given in requested:
        part = stored.get(number)
        if part is None or _normal_etag(etag) != part.etag:
            raise InvalidPartError(number)
        for algorithm, value in given.items():
            if part.checksums.get(algorithm) != value:
                raise InvalidPartError(number)
        parts.append(part)
    for part in parts[:-1]:
        if part.size < min_part_size:
            raise EntityTooSmallError(part.part_number, part.size)
    checksums: dict[str, str] = {}
    if checksum_algorithm and all(checksum_algorithm in part.checksums for part in parts):
        try:
            values = [part.checksums[checksum_algorithm] for part in parts]
            if checksum_type == "FULL_OBJECT":
                sized = [(value, part.size) for value, part in zip(values, parts, strict=True)]
                checksums[checksum_algorithm] = combine_b64(checksum_algorithm, sized)
            else:
                checksums[checksum_algorithm] = composite_checksum(checksum_algorithm, values)
        except (binascii.Error, ValueError):
            pass
    check_expected_checksums(expected_checksums or {}, checksums, checksum_type)
    return Assembled(
        manifest=tuple(ref for part in parts for ref in part.manifest),
        size=sum(part.size for part in parts),
        etag=multipart_etag([part.etag for part in parts]),
        checksums=checksums,
        used=frozenset(part.part_number for part in parts),
        part_sizes=tuple(part.size for part in parts),
    )
