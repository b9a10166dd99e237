"""Metadata records: plain frozen values, free of any storage or HTTP detail."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One chunk of an object's body, as the data service stored it."""

    chunk_id: bytes  # 16 random bytes
    size: int


@dataclass(frozen=True, slots=True)
class Bucket:
    id: int
    name: str
    owner_id: str
    region: str
    created_at: float  # unix seconds
    versioning: str = ""  # "", "Enabled" or "Suspended"


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of an object (version_id "null" while versioning is off)."""

    bucket_id: int
    key: str
    version_id: str
    size: int
    etag: str  # without quotes, e.g. "9e107d9d372bb6826bd81d3542a419d6"
    last_modified: float  # unix seconds with microseconds
    content_type: str = "binary/octet-stream"
    # Stored system headers returned on GET/HEAD (content-encoding, content-disposition,
    # content-language, cache-control, expires), lower-case names.
    headers: dict[str, str] = field(default_factory=dict)
    # x-amz-meta-* values, names lower-case and without the prefix.
    user_metadata: dict[str, str] = field(default_factory=dict)
    # e.g. {"CRC32": "base64..."}
    checksums: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    is_latest: bool = True
    is_delete_marker: bool = False
    manifest: tuple[ChunkRef, ...] = ()
    # Object tags (S3 tagging), part of this version.
    tags: dict[str, str] = field(default_factory=dict)
    # The sizes of the parts of an object completed from a multipart upload, in part order
    # (GET ?partNumber=N, GetObjectAttributes); empty for an object written in one piece.
    part_sizes: tuple[int, ...] = ()
    # The version's ACL (JSON, pails.iam.acl); "" is the default: the bucket owner has FULL_CONTROL.
    acl: str = ""


@dataclass(frozen=True, slots=True)
class ListEntry:
    key: str
    size: int
    etag: str
    last_modified: float
    storage_class: str


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing, in UTF-8 byte order of keys and common prefixes merged."""

    entries: list[ListEntry]
    common_prefixes: list[str]
    is_truncated: bool
    # The last key or common prefix returned: where the next page starts after.
    next_marker: str | None


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """One row of ListObjectVersions: a version or a delete marker."""

    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    size: int
    etag: str
    last_modified: float
    storage_class: str


@dataclass(frozen=True, slots=True)
class VersionPage:
    """One page of ListObjectVersions: by key (UTF-8 byte order), newest version first within a
    key; versions and common prefixes count together against max-keys."""

    entries: list[VersionEntry]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None  # None when the page ended on a common prefix


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """What a DeleteObject did: S3's x-amz-version-id / x-amz-delete-marker answer."""

    existed: bool  # a live object (not a delete marker) was removed or hidden
    version_id: str | None  # the version removed, or the delete marker created; None unversioned
    delete_marker: bool  # a delete marker was created, or the version removed was one


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """A conditional write (If-None-Match: * / If-Match: etag), checked inside the commit."""

    if_none_match: bool = False  # the key must not exist (a delete marker counts as absent)
    if_match: str | None = None  # the current object's ETag, without quotes


@dataclass(frozen=True, slots=True)
class SharedChunks:
    """Chunks a new object or part takes from an existing object (CopyObject, UploadPartCopy).

    The store checks, inside the commit, that the source key still holds `source_manifest` (so
    none of its chunks can have been queued for GC since it was read) and adds one reference to
    every occurrence of `chunk_ids`.
    """

    bucket_id: int
    key: str
    source_manifest: tuple[ChunkRef, ...]
    chunk_ids: tuple[bytes, ...]
    # The source version (CopyObject ?versionId=, or the version that was read); None: the latest.
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    """A multipart upload; what CreateMultipartUpload said about the future object."""

    bucket_id: int
    key: str
    upload_id: str
    initiated: float
    content_type: str = "binary/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    user_metadata: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    checksum_algorithm: str = ""  # "" or one of pails.checksums.ALGORITHMS
    checksum_type: str = ""  # "" (no algorithm), "COMPOSITE" or "FULL_OBJECT"
    state: str = "uploading"  # "uploading", "complete" or "aborted"
    final_etag: str | None = None
    tags: dict[str, str] = field(default_factory=dict)  # x-amz-tagging, for the completed object
    acl: str = ""  # x-amz-acl / x-amz-grant-* (JSON), for the completed object


@dataclass(frozen=True, slots=True)
class Part:
    bucket_id: int
    upload_id: str
    part_number: int
    size: int
    etag: str  # MD5 hex of the part, without quotes
    last_modified: float
    checksums: dict[str, str] = field(default_factory=dict)
    manifest: tuple[ChunkRef, ...] = ()


@dataclass(frozen=True, slots=True)
class UploadPage:
    """One page of ListMultipartUploads (uploads in state 'uploading'), by key then upload id."""

    uploads: list[Upload]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_upload_id_marker: str | None
