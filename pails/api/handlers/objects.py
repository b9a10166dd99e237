"""Object-level S3 operations: PUT, GET/HEAD, DELETE, DeleteObjects."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from pails.api import xml
from pails.api.authz import allowed, new_object_acl
from pails.api.body import request_body
from pails.api.context import RequestContext
from pails.api.handlers.common import parse_content_md5, read_small_body, version_id_headers, xml_response
from pails.api.handlers.writes import (
    checksum_expectations,
    pieces_then_trailers,
    stored_headers,
    user_metadata,
    write_condition,
)
from pails.api.http import Response, StreamResponse
from pails.api.httpdate import http_date
from pails.api.ranges import parse_range
from pails.checksums import header_name
from pails.data.engine import ChunkCorrupt, ChunkMissing
from pails.errors import S3Error
from pails.iam.actions import delete_access
from pails.limits import MAX_KEYS_PER_DELETE, MAX_SINGLE_PUT_SIZE, SMALL_CHUNK_MAX
from pails.meta.models import DeleteOutcome, ObjectVersion
from pails.meta.rules import checksum_type_of, is_version_id
from pails.service.multipart import check_part_number
from pails.service.objects import PutRequest
from pails.service.tagging import parse_tagging_header

_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


async def put_object(ctx: RequestContext) -> StreamResponse:
    request = ctx.request
    sent = request.lower_headers
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    content_md5 = parse_content_md5(sent.get("content-md5"))
    expected, compute = checksum_expectations(request)
    condition = write_condition(request)
    body = request_body(ctx)
    if body.size is not None and body.size > MAX_SINGLE_PUT_SIZE:
        raise S3Error(
            "EntityTooLarge",
            extra={"ProposedSize": str(body.size), "MaxSizeAllowed": str(MAX_SINGLE_PUT_SIZE)},
        )
    put = PutRequest(
        key=ctx.key,
        expected_size=body.size,
        content_type=sent.get("content-type") or "binary/octet-stream",
        headers=stored_headers(request),
        user_metadata=user_metadata(request),
        content_md5=content_md5,
        expected_sha256=body.expected_sha256,
        checksum_algorithms=compute,
        storage_class=sent.get("x-amz-storage-class", "STANDARD"),
        condition=condition,
        tags=parse_tagging_header(sent.get("x-amz-tagging")),
        acl=await new_object_acl(ctx, ctx.bucket_name),
    )
    await body.continue_if_expected()
    obj, stored = await ctx.services.objects.put(bucket, put, pieces_then_trailers(body, expected), expected)
    ctx.bytes_in += stored.size
    response_headers = {"ETag": f'"{obj.etag}"'}
    if obj.version_id != "null":
        response_headers["x-amz-version-id"] = obj.version_id
    for algorithm, value in obj.checksums.items():
        response_headers[header_name(algorithm)] = value
    return Response(headers=response_headers)


_CONDITION_HEADERS = frozenset({"if-match", "if-none-match", "if-modified-since", "if-unmodified-since"})


def _check_conditions(headers: dict[str, str], obj: ObjectVersion) -> None:
    """RFC 7232 evaluation order, as S3 applies it. `headers`: the request's, by lower-case name."""
    if _CONDITION_HEADERS.isdisjoint(headers):
        return
    etag = f'"{obj.etag}"'
    if_match = headers.get("if-match")
    if_none_match = headers.get("if-none-match")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            raise S3Error("PreconditionFailed", extra={"Condition": "If-Match"})
    elif (since := _http_time(headers.get("if-unmodified-since"))) is not None and int(
        obj.last_modified
    ) > since:
        raise S3Error("PreconditionFailed", extra={"Condition": "If-Unmodified-Since"})
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            raise S3Error(
                "NotModified", headers={"ETag": etag, "Last-Modified": http_date(obj.last_modified)}
            )
    elif (since := _http_time(headers.get("if-modified-since"))) is not None and int(
        obj.last_modified
    ) <= since:
        raise S3Error("NotModified", headers={"ETag": etag, "Last-Modified": http_date(obj.last_modified)})


def _etag_matches(header: str, etag: str) -> bool:
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate == etag or candidate.strip('"') == etag.strip('"'):
            return True
    return False


def _http_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


_described: dict[int, tuple[ObjectVersion, dict[str, str]]] = {}
_DESCRIBED_MAX = 32768


def _describing_headers(obj: ObjectVersion) -> dict[str, str]:
    """The response headers that describe `obj` itself (a new dict). Remembered by identity: the
    metadata store's read cache hands out the same ObjectVersion while the object is unchanged
    (the entry holds the object, so its id is not reused meanwhile)."""
    found = _described.get(id(obj))
    if found is not None and found[0] is obj:
        return found[1].copy()
    headers = {
        "ETag": f'"{obj.etag}"',
        "Last-Modified": http_date(obj.last_modified),
        "Content-Type": obj.content_type,
        "Accept-Ranges": "bytes",
    }
    for name, value in obj.headers.items():
        headers[name.title()] = value
    for name, value in obj.user_metadata.items():
        headers["x-amz-meta-" + name] = value
    if obj.storage_class != "STANDARD":
        headers["x-amz-storage-class"] = obj.storage_class
    if obj.tags:
        headers["x-amz-tagging-count"] = str(len(obj.tags))
    if len(_described) >= _DESCRIBED_MAX:
        _described.clear()
    _described[id(obj)] = (obj, headers)
    return headers.copy()


def _object_headers(ctx: RequestContext, obj: ObjectVersion, *, whole: bool = True) -> dict[str, str]:
    headers = _describing_headers(obj)
    # A checksum describes the whole object, so S3 leaves it out of ranged responses.
    request_headers = ctx.request.lower_headers
    whole = whole and "range" not in request_headers
    if whole and request_headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
        for algorithm, value in obj.checksums.items():
            headers[header_name(algorithm)] = value
        if obj.checksums:
            headers["x-amz-checksum-type"] = checksum_type_of(obj)
    if ctx.query:
        for param, header in _RESPONSE_OVERRIDES.items():
            if param in ctx.query:
                headers[header] = _override_value(param, ctx.query[param])
    return headers


def _override_value(param: str, value: str) -> str:
    """A response-* override, refused if it would break out of its header line."""
    if "\r" in value or "\n" in value or "\x00" in value:
        raise S3Error(
            "InvalidArgument",
            f"{param} must not contain line breaks or NUL characters.",
            extra={"ArgumentName": param},
        )
    return value


def _part_range(obj: ObjectVersion, value: str) -> tuple[int, int] | None:
    """GET/HEAD ?partNumber=N: the byte range [start, end) of part N of a multipart object, or
    None for an object uploaded in one piece, whose part 1 is the whole object."""
    number = check_part_number(value)
    if obj.part_sizes:
        if number > len(obj.part_sizes):
            raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", status=416)
        start = sum(obj.part_sizes[: number - 1])
        return start, start + obj.part_sizes[number - 1]
    if "-" in obj.etag:  # completed before part sizes were recorded (schema version 5)
        raise S3Error(
            "NotImplemented", "GET by partNumber is not supported for this object (no part sizes recorded)."
        )
    if number != 1:
        raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", status=416)
    return None


async def get_object(ctx: RequestContext) -> StreamResponse:
    request = ctx.request
    request_headers = request.lower_headers
    bucket = ctx.services.buckets.cached(ctx.bucket_name) or await ctx.services.buckets.get(ctx.bucket_name)
    version_id = ctx.query.get("versionId")
    part_number = ctx.query.get("partNumber")
    if part_number is not None and "range" in request_headers:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
    head_only = request.method == "HEAD"
    obj = await ctx.services.objects.head(bucket, ctx.key, version_id, head_only=head_only)
    _check_conditions(request_headers, obj)
    part = _part_range(obj, part_number) if part_number is not None else None
    headers = _object_headers(ctx, obj, whole=part is None)
    headers.update(version_id_headers(version_id, obj.version_id))
    byte_range = part if part is not None else parse_range(request_headers.get("range"), obj.size)
    status = 200
    start, end = 0, obj.size
    if part is not None:
        headers["x-amz-mp-parts-count"] = str(len(obj.part_sizes))
    if byte_range is not None:
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{obj.size}"
    length = end - start
    if head_only:
        headers["Content-Length"] = str(length)
        return Response(status=status, headers=headers)
    if length <= SMALL_CHUNK_MAX:
        try:
            body = ctx.services.objects.body_now(obj, start, end)
            if body is None:
                body = b"".join([piece async for piece in ctx.services.objects.body(obj, start, end)])
        except (ChunkCorrupt, ChunkMissing) as exc:
            raise S3Error("InternalError", f"The object's data could not be read: {exc}") from exc
        ctx.services.metrics.bytes_out.inc(len(body))
        return Response(status=status, body=body, headers=headers)
    body_stream = ctx.services.objects.body(obj, start, end)
    response = StreamResponse(status=status, headers=headers)
    response.content_length = length
    first: bytes | None = None
    try:
        first = await anext(body_stream, b"")
    except (ChunkCorrupt, ChunkMissing) as exc:
        raise S3Error("InternalError", f"The object's data could not be read: {exc}") from exc
    await response.prepare(request)
    await response.write(first)
    sent = len(first)
    # A fault after the headers went out can only abort the connection: the client sees a short body.
    async for piece in body_stream:
        await response.write(piece)
        sent += len(piece)
    ctx.services.metrics.bytes_out.inc(sent)
    await response.write_eof()
    return response


async def delete_object(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    outcome = await ctx.services.objects.delete(bucket, ctx.key, ctx.query.get("versionId"))
    headers: dict[str, str] = {}
    if outcome.version_id is not None:
        headers["x-amz-version-id"] = outcome.version_id
    if outcome.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    return Response(status=204, headers=headers)


def _deleted_xml(key: str, version_id: str | None, outcome: DeleteOutcome) -> str:
    """One <Deleted> entry: the version named, and the delete marker created or removed."""
    out = "<Deleted>" + xml.element("Key", key)
    if version_id is not None:
        out += xml.element("VersionId", version_id)
    if outcome.delete_marker and outcome.version_id is not None:
        out += xml.element("DeleteMarker", "true") + xml.element("DeleteMarkerVersionId", outcome.version_id)
    return out + "</Deleted>"


async def delete_objects(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    root = xml.parse(await read_small_body(ctx))
    if xml.local_name(root.tag) != "Delete":
        raise S3Error("MalformedXML")
    quiet = (xml.text_of(root, "Quiet") or "").strip().lower() == "true"
    objects = xml.children(root, "Object")
    if not objects or len(objects) > MAX_KEYS_PER_DELETE:
        raise S3Error("MalformedXML")
    items: list[tuple[str, str | None]] = []  # (key, the VersionId it was named with)
    for node in objects:
        key = xml.text_of(node, "Key")
        if key is None:
            raise S3Error("MalformedXML")
        items.append((key, xml.text_of(node, "VersionId")))
    parts: list[str] = []
    denied = set()
    for key, version_id in items:
        if not await allowed(ctx, delete_access(ctx.bucket_name, key, version_id)):
            denied.add((key, version_id))
            parts.append(
                "<Error>"
                + xml.element("Key", key)
                + (xml.element("VersionId", version_id) if version_id is not None else "")
                + xml.element("Code", "AccessDenied")
                + xml.element("Message", "Access Denied")
                + "</Error>"
            )
    items = [item for item in items if item not in denied]
    valid = [
        (key, version_id)
        for key, version_id in items
        if len(key.encode()) <= 1024 and key and (version_id is None or is_version_id(version_id))
    ]
    outcomes = iter(await ctx.services.objects.delete_versions(bucket, valid) if valid else [])
    for key, version_id in items:
        if len(key.encode()) <= 1024 and key and (version_id is None or is_version_id(version_id)):
            outcome = next(outcomes)
            if not quiet:
                parts.append(_deleted_xml(key, version_id, outcome))
        elif key and len(key.encode()) <= 1024 and version_id is not None:
            # Not a version id Pails issues: no such version, whatever the bucket holds.
            parts.append(
                "<Error>"
                + xml.element("Key", key)
                + xml.element("VersionId", version_id)
                + xml.element("Code", "NoSuchVersion")
                + xml.element("Message", "The specified version does not exist.")
                + "</Error>"
            )
        else:
            code = "KeyTooLongError" if key else "InvalidArgument"
            parts.append(
                "<Error>"
                + xml.element("Key", key)
                + xml.element("Code", code)
                + xml.element("Message", "The key is not valid.")
                + "</Error>"
            )
    return xml_response(xml.document("DeleteResult", parts))
