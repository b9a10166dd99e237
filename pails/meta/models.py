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
