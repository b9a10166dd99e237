"""ListObjectVersions (GET /bucket?versions).

The metadata store lists versions and delete markers in S3's order (by key, newest first) with
common prefixes; the markers are (key, version id) pairs. A never-versioned bucket holds one
version per key, "null", the latest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pails.api import xml
from pails.api.context import RequestContext
from pails.api.handlers.common import xml_response
from pails.api.handlers.listing import key_encoder, max_keys_param
from pails.api.http import StreamResponse
from pails.errors import S3Error
from pails.meta.models import Bucket
from pails.meta.models import VersionPage as StoredVersionPage
from pails.meta.rules import is_version_id


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


def _stored_versions(listed: StoredVersionPage) -> VersionPage:
    entries = [
        VersionEntry(
            key=e.key,
            version_id=e.version_id,
            is_latest=e.is_latest,
            last_modified=e.last_modified,
            is_delete_marker=e.is_delete_marker,
            etag=e.etag,
            size=e.size,
            storage_class=e.storage_class,
        )
        for e in listed.entries
    ]
    return VersionPage(
        entries,
        listed.common_prefixes,
        listed.is_truncated,
        listed.next_key_marker,
        listed.next_version_id_marker,
    )


def _check_markers(key_marker: str, version_id_marker: str) -> None:
    if not version_id_marker:
        return
    if not key_marker:
        raise S3Error(
            "InvalidArgument",
            "A version-id marker cannot be specified without a key marker.",
            extra={"ArgumentName": "version-id-marker", "ArgumentValue": version_id_marker},
        )
    if not is_version_id(version_id_marker):
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


async def list_object_versions(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    encode = key_encoder(ctx)
    prefix = ctx.query.get("prefix", "")
    delimiter = ctx.query.get("delimiter", "")
    key_marker = ctx.query.get("key-marker", "")
    version_id_marker = ctx.query.get("version-id-marker", "")
    max_keys = max_keys_param(ctx)
    _check_markers(key_marker, version_id_marker)
    listed = await ctx.services.objects.list_versions(
        bucket,
        prefix=prefix,
        delimiter=delimiter,
        key_marker=key_marker,
        version_id_marker=version_id_marker,
        max_keys=max_keys,
    )
    page = _stored_versions(listed)
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
