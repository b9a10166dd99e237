"""CopyObject and UploadPartCopy: x-amz-copy-source, its preconditions, the metadata directive."""

from __future__ import annotations

from urllib.parse import unquote

from pails.api import xml
from pails.api.authz import new_object_acl
from pails.api.context import RequestContext
from pails.api.handlers.common import version_id_headers, xml_response
from pails.api.handlers.objects import _etag_matches, _http_time
from pails.api.handlers.writes import stored_headers, user_metadata, write_condition
from pails.api.http import Request, StreamResponse
from pails.api.owner import SOURCE_EXPECTED_OWNER, check_owner
from pails.errors import S3Error
from pails.meta.models import Bucket, ObjectVersion
from pails.service.copy import NewMetadata
from pails.service.multipart import check_part_number
from pails.service.tagging import parse_tagging_header, tagging_directive


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """'/bucket/key?versionId=v' (URL-encoded; leading slash optional) -> (bucket, key, version)."""
    path, _, query = value.partition("?")
    version: str | None = None
    if query:
        name, _, raw = query.partition("=")
        if name != "versionId":
            raise S3Error("InvalidArgument", "Unsupported copy source parameter.")
        version = unquote(raw)
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidArgument", "Invalid copy source encoding.") from None
    bucket, _, key = decoded.lstrip("/").partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            extra={"ArgumentName": "x-amz-copy-source", "ArgumentValue": value},
        )
    return bucket, key, version


def check_copy_source_conditions(request: Request, obj: ObjectVersion) -> None:
    """x-amz-copy-source-if-*: S3's rules (a matching If-Match overrides If-Unmodified-Since, a
    failing If-None-Match overrides If-Modified-Since); any failure is 412."""
    headers = request.headers
    etag = f'"{obj.etag}"'
    modified = int(obj.last_modified)
    if_match = headers.get("x-amz-copy-source-if-match")
    if_none_match = headers.get("x-amz-copy-source-if-none-match")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            raise S3Error("PreconditionFailed", extra={"Condition": "x-amz-copy-source-If-Match"})
    elif (since := _http_time(headers.get("x-amz-copy-source-if-unmodified-since"))) is not None and (
        modified > since
    ):
        raise S3Error("PreconditionFailed", extra={"Condition": "x-amz-copy-source-If-Unmodified-Since"})
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            raise S3Error("PreconditionFailed", extra={"Condition": "x-amz-copy-source-If-None-Match"})
    elif (since := _http_time(headers.get("x-amz-copy-source-if-modified-since"))) is not None and (
        modified <= since
    ):
        raise S3Error("PreconditionFailed", extra={"Condition": "x-amz-copy-source-If-Modified-Since"})


async def _source(ctx: RequestContext) -> tuple[Bucket, str, str | None]:
    """The copy source's bucket, key and version id (None: the latest)."""
    bucket_name, key, version = parse_copy_source(ctx.request.headers["x-amz-copy-source"])
    bucket = await ctx.services.buckets.get(bucket_name)
    check_owner(ctx, bucket, SOURCE_EXPECTED_OWNER)
    return bucket, key, version


async def copy_object(ctx: RequestContext) -> StreamResponse:
    request = ctx.request
    source_bucket, source_key, source_version = await _source(ctx)
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.")
    storage_class = request.headers.get("x-amz-storage-class")
    metadata: NewMetadata | None = None
    if directive == "REPLACE":
        metadata = NewMetadata(
            content_type=request.headers.get("Content-Type") or "binary/octet-stream",
            headers=stored_headers(request),
            user_metadata=user_metadata(request),
        )
    condition = write_condition(request)
    tags = None
    if tagging_directive(request.headers.get("x-amz-tagging-directive")) == "REPLACE":
        tags = parse_tagging_header(request.headers.get("x-amz-tagging"))

    def check(source: ObjectVersion) -> None:
        check_copy_source_conditions(request, source)
        # Copying a named version onto its key restores it (a new version): allowed as it is.
        same = source.bucket_id == bucket.id and source.key == ctx.key and source_version is None
        if same and metadata is None and (storage_class is None or storage_class == source.storage_class):
            raise S3Error(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect location "
                "or encryption attributes.",
            )

    source, obj = await ctx.services.copies.copy(
        source_bucket,
        source_key,
        bucket,
        ctx.key,
        check_source=check,
        metadata=metadata,
        storage_class=storage_class,
        condition=condition,
        source_version_id=source_version,
        tags=tags,
        acl=await new_object_acl(ctx, ctx.bucket_name),
    )
    parts = [
        xml.element("ETag", f'"{obj.etag}"'),
        xml.element("LastModified", xml.iso8601(obj.last_modified)),
    ]
    for name, value in obj.checksums.items():
        if "-" not in value:
            parts.append(xml.element("Checksum" + name, value))
    response = xml_response(xml.document("CopyObjectResult", parts))
    response.headers.update(
        version_id_headers(source_version, source.version_id, "x-amz-copy-source-version-id")
    )
    if obj.version_id != "null":
        response.headers["x-amz-version-id"] = obj.version_id
    return response


def parse_copy_range(value: str | None, size: int) -> tuple[int, int]:
    """x-amz-copy-source-range: bytes=first-last (inclusive, both required) -> [start, end)."""
    if value is None:
        return 0, size
    unit, _, spec = value.strip().partition("=")
    first, dash, last = spec.partition("-")
    if unit != "bytes" or not dash or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        raise S3Error(
            "InvalidArgument",
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and "
            "last are the zero-based offsets of the first and last bytes to copy",
            extra={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": value},
        )
    if int(last) >= size:
        raise S3Error(
            "InvalidArgument",
            f"Range specified is not valid for source object of size: {size}",
            extra={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": value},
        )
    return int(first), int(last) + 1


async def upload_part_copy(ctx: RequestContext) -> StreamResponse:
    request = ctx.request
    part_number = check_part_number(ctx.query.get("partNumber"))
    source_bucket, source_key, source_version = await _source(ctx)
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    upload_id = ctx.query.get("uploadId", "")
    upload = await ctx.services.multipart.get(bucket, ctx.key, upload_id)
    source = await ctx.services.copies.source(source_bucket, source_key, source_version)
    check_copy_source_conditions(request, source)
    start, end = parse_copy_range(request.headers.get("x-amz-copy-source-range"), source.size)
    part = await ctx.services.multipart.upload_part_copy(upload, part_number, source, start, end)
    parts = [
        xml.element("ETag", f'"{part.etag}"'),
        xml.element("LastModified", xml.iso8601(part.last_modified)),
    ]
    parts.extend(xml.element("Checksum" + name, value) for name, value in part.checksums.items())
    response = xml_response(xml.document("CopyPartResult", parts))
    response.headers.update(
        version_id_headers(source_version, source.version_id, "x-amz-copy-source-version-id")
    )
    return response
