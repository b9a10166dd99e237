"""GetObjectAttributes (GET /bucket/key?attributes): what the object's row already knows."""

from __future__ import annotations

from pails.api import xml
from pails.api.context import RequestContext
from pails.api.handlers.common import version_id_headers, xml_response
from pails.api.http import StreamResponse
from pails.api.httpdate import http_date
from pails.errors import S3Error
from pails.limits import MAX_PART_NUMBER, MAX_PARTS_PER_LIST
from pails.meta.models import ObjectVersion
from pails.meta.rules import checksum_type_of

ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
_BY_LOWER = {name.lower(): name for name in ATTRIBUTES}


def requested_attributes(value: str | None) -> set[str]:
    """x-amz-object-attributes: a comma-separated list of ATTRIBUTES (case as documented)."""
    names = [part.strip() for part in (value or "").split(",") if part.strip()]
    if not names:
        raise S3Error(
            "InvalidRequest",
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either "
            "missing or empty",
        )
    chosen: set[str] = set()
    for name in names:
        canonical = _BY_LOWER.get(name.lower())
        if canonical is None:
            raise S3Error(
                "InvalidArgument",
                "Invalid attribute name specified.",
                extra={"ArgumentName": "x-amz-object-attributes", "ArgumentValue": name},
            )
        chosen.add(canonical)
    return chosen


def _header_int(ctx: RequestContext, name: str, default: int, upper: int) -> int:
    raw = ctx.request.headers.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not text.isdigit() or len(text) > 10:
        raise S3Error(
            "InvalidArgument",
            f"Argument {name} must be an integer between 0 and 2147483647",
            extra={"ArgumentName": name, "ArgumentValue": raw},
        )
    return min(int(text), upper)


def parts_count(obj: ObjectVersion) -> int | None:
    """The part count of an object completed from a multipart upload (its ETag ends in -N)."""
    _, dash, count = obj.etag.rpartition("-")
    return int(count) if dash and count.isdigit() else None


def _checksum_xml(obj: ObjectVersion) -> str:
    if not obj.checksums:
        return ""
    items = [xml.element("Checksum" + name, value) for name, value in sorted(obj.checksums.items())]
    items.append(xml.element("ChecksumType", checksum_type_of(obj)))
    return "<Checksum>" + "".join(items) + "</Checksum>"


def _parts_xml(obj: ObjectVersion, count: int, marker: int, max_parts: int) -> str:
    """ObjectParts: the count, and a page of <Part> (number, size) after `marker` when the row
    records the part sizes (objects completed before schema version 5 answer only the count).
    Per-part checksums are not kept once an upload completes, so parts carry none."""
    sizes = obj.part_sizes
    last = max(marker, min(len(sizes), marker + max_parts))
    listed = [(number, sizes[number - 1]) for number in range(marker + 1, last + 1)]
    truncated = last < len(sizes)
    items = [
        xml.element("PartsCount", count),
        xml.element("PartNumberMarker", marker),
    ]
    if listed:
        items.append(xml.element("NextPartNumberMarker", listed[-1][0]))
    items += [
        xml.element("MaxParts", max_parts),
        xml.element("IsTruncated", "true" if truncated else "false"),
    ]
    for number, size in listed:
        items.append("<Part>" + xml.element("PartNumber", number) + xml.element("Size", size) + "</Part>")
    return "<ObjectParts>" + "".join(items) + "</ObjectParts>"


async def get_object_attributes(ctx: RequestContext) -> StreamResponse:
    wanted = requested_attributes(ctx.request.headers.get("x-amz-object-attributes"))
    max_parts = _header_int(ctx, "x-amz-max-parts", MAX_PARTS_PER_LIST, MAX_PARTS_PER_LIST)
    marker = _header_int(ctx, "x-amz-part-number-marker", 0, MAX_PART_NUMBER)
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    version = ctx.query.get("versionId")
    obj = await ctx.services.objects.head(bucket, ctx.key, version)
    parts: list[str] = []
    if "ETag" in wanted:
        parts.append(xml.element("ETag", obj.etag))  # unquoted here, unlike everywhere else in S3
    if "Checksum" in wanted:
        parts.append(_checksum_xml(obj))
    if "ObjectParts" in wanted and (count := parts_count(obj)) is not None:
        parts.append(_parts_xml(obj, count, marker, max_parts))
    if "StorageClass" in wanted:
        parts.append(xml.element("StorageClass", obj.storage_class))
    if "ObjectSize" in wanted:
        parts.append(xml.element("ObjectSize", obj.size))
    response = xml_response(xml.document("GetObjectAttributesResponse", parts))
    response.headers["Last-Modified"] = http_date(obj.last_modified)
    response.headers.update(version_id_headers(version, obj.version_id))
    return response
