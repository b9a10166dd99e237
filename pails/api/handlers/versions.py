"""ListObjectVersions (GET /bucket?versions).

Pails has no versioning yet, so every object is one version, "null", the latest. The handler is
split so that real versions only replace :func:`_null_versions`: the page is a list of
:class:`VersionEntry` (versions and delete markers in S3's order: by key, newest first) plus common
prefixes, and the markers are (key, version id) pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from pails.api import xml
from pails.api.context import RequestContext
from pails.api.handlers.common import xml_response
from pails.api.handlers.listing import _encoder, _max_keys
from pails.errors import S3Error
from pails.meta.models import Bucket, ListPage

NULL_VERSION = "null"


@dataclass(frozen=True, slots=True)
class VersionEntry:
    key: str
    version_id: str
    is_latest: bool
    last_modified: float
    is_delete_marker: bool = False
    etag: str = ""
    size: int = 0
    storage_class: str = "STANDARD"


@dataclass(frozen=True, slots=True)
class VersionPage:
    entries: list[VersionEntry]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None


def _null_versions(page: ListPage) -> VersionPage:
    """A listing of a never-versioned bucket, as versions: each object is its own "null" version."""
    entries = [
        VersionEntry(
            key=entry.key,
            version_id=NULL_VERSION,
            is_latest=True,
            last_modified=entry.last_modified,
            etag=entry.etag,
            size=entry.size,
            storage_class=entry.storage_class,
        )
        for entry in page.entries
    ]
    next_key = page.next_marker if page.is_truncated else None
    next_version: str | None = None
    if next_key is not None and entries and entries[-1].key == next_key:
        next_version = NULL_VERSION  # the page ended on a version, not on a common prefix
    return VersionPage(entries, page.common_prefixes, page.is_truncated, next_key, next_version)


def _check_markers(key_marker: str, version_id_marker: str) -> None:
    if not version_id_marker:
        return
    if not key_marker:
        raise S3Error(
            "InvalidArgument",
            "A version-id marker cannot be specified without a key marker.",
            extra={"ArgumentName": "version-id-marker", "ArgumentValue": version_id_marker},
        )
    if version_id_marker != NULL_VERSION:
        raise S3Error(
            "InvalidArgument",
            "Invalid version id specified",
            extra={"ArgumentName": "version-id-marker", "ArgumentValue": version_id_marker},
        )


def _owner_xml(ctx: RequestContext, bucket: Bucket) -> str:
    owner = ctx.services.credentials.identity_of(bucket.owner_id)
    display = owner.display_name if owner is not None else ""
    return "<Owner>" + xml.element("ID", bucket.owner_id) + xml.element("DisplayName", display) + "</Owner>"


def _entry_xml(entry: VersionEntry, encode: Callable[[str], str], owner: str) -> str:
    head = (
        xml.element("Key", encode(entry.key))
        + xml.element("VersionId", entry.version_id)
        + xml.element("IsLatest", "true" if entry.is_latest else "false")
        + xml.element("LastModified", xml.iso8601(entry.last_modified))
    )
    if entry.is_delete_marker:
        return "<DeleteMarker>" + head + owner + "</DeleteMarker>"
    return (
        "<Version>"
        + head
        + f"<ETag>&quot;{xml.escape(entry.etag)}&quot;</ETag>"
        + f"<Size>{entry.size}</Size>"
        + owner
        + xml.element("StorageClass", entry.storage_class)
        + "</Version>"
    )


async def list_object_versions(ctx: RequestContext) -> web.StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    encode = _encoder(ctx)
    prefix = ctx.query.get("prefix", "")
    delimiter = ctx.query.get("delimiter", "")
    key_marker = ctx.query.get("key-marker", "")
    version_id_marker = ctx.query.get("version-id-marker", "")
    max_keys = _max_keys(ctx)
    _check_markers(key_marker, version_id_marker)
    if bucket.versioning:
        raise S3Error("NotImplemented", "Listing the versions of a versioned bucket is not supported yet.")
    # Without versioning each key has one version, so "after (key, null)" is "after key".
    listed = await ctx.services.objects.list(
        bucket, prefix=prefix, delimiter=delimiter, start_after=key_marker, max_keys=max_keys
    )
    page = _null_versions(listed)
    parts = [
        xml.element("Name", bucket.name),
        xml.element("Prefix", encode(prefix)),
        xml.element("KeyMarker", encode(key_marker)),
        xml.element("VersionIdMarker", version_id_marker),
    ]
    if page.next_key_marker is not None:
        parts.append(xml.element("NextKeyMarker", encode(page.next_key_marker)))
    if page.next_version_id_marker is not None:
        parts.append(xml.element("NextVersionIdMarker", page.next_version_id_marker))
    parts.append(xml.element("MaxKeys", max_keys))
    if delimiter:
        parts.append(xml.element("Delimiter", encode(delimiter)))
    parts.append(xml.element("IsTruncated", "true" if page.is_truncated else "false"))
    if "encoding-type" in ctx.query:
        parts.append(xml.element("EncodingType", "url"))
    owner = _owner_xml(ctx, bucket)
    parts.extend(_entry_xml(entry, encode, owner) for entry in page.entries)
    parts.extend(
        "<CommonPrefixes>" + xml.element("Prefix", encode(p)) + "</CommonPrefixes>"
        for p in page.common_prefixes
    )
    return xml_response(xml.document("ListVersionsResult", parts))
