"""Object-level S3 operations: PUT, GET/HEAD, DELETE, DeleteObjects."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime

from aiohttp import web

from pails.api import xml
from pails.api.body import request_body
from pails.api.context import RequestContext
from pails.api.handlers.common import parse_content_md5, read_small_body, xml_response
from pails.api.httpdate import http_date
from pails.api.ranges import parse_range
from pails.checksums import ALGORITHMS, header_name
from pails.data.engine import ChunkCorrupt, ChunkMissing
from pails.errors import S3Error
from pails.limits import MAX_KEYS_PER_DELETE, MAX_SINGLE_PUT_SIZE, MAX_USER_METADATA_BYTES, SMALL_CHUNK_MAX
from pails.meta.models import ObjectVersion
from pails.service.objects import PutRequest

_STORED_HEADERS = ("content-encoding", "content-disposition", "content-language", "cache-control", "expires")
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def _user_metadata(request: web.BaseRequest) -> dict[str, str]:
    metadata: dict[str, str] = {}
    size = 0
    for name, value in request.headers.items():
        lname = name.lower()
        if lname.startswith("x-amz-meta-"):
            short = lname[11:]
            metadata[short] = value if short not in metadata else metadata[short] + "," + value
            size += len(short) + len(value.encode())
    if size > MAX_USER_METADATA_BYTES:
        raise S3Error("MetadataTooLarge", extra={"MaxSizeAllowed": str(MAX_USER_METADATA_BYTES)})
    return metadata


def _checksum_expectations(request: web.BaseRequest) -> tuple[dict[str, str | None], tuple[str, ...]]:
    """Checksums the client sent (by header, or promised in a trailer) and the ones to compute."""
    expected: dict[str, str | None] = {}
    for algorithm in ALGORITHMS:
        value = request.headers.get(header_name(algorithm))
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise S3Error(
                    "InvalidRequest", f"Value for {header_name(algorithm)} header is invalid."
                ) from None
            expected[algorithm] = value
    for name in request.headers.get("x-amz-trailer", "").split(","):
        name = name.strip().lower()
        if name.startswith("x-amz-checksum-"):
            algorithm = name[len("x-amz-checksum-") :].upper()
            if algorithm not in ALGORITHMS:
                raise S3Error("InvalidRequest", f"Unsupported trailer checksum {name}.")
            expected[algorithm] = None
    if len(expected) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    compute = set(expected)
    sdk = request.headers.get("x-amz-sdk-checksum-algorithm")
    if sdk:
        if sdk.upper() not in ALGORITHMS:
            raise S3Error("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.")
        compute.add(sdk.upper())
    return expected, tuple(sorted(compute))


async def put_object(ctx: RequestContext) -> web.StreamResponse:
    request = ctx.request
    if "x-amz-copy-source" in request.headers:
        raise S3Error("NotImplemented", "CopyObject arrives with the S3-breadth issue.")
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    content_md5 = parse_content_md5(request.headers.get("Content-MD5"))
    expected, compute = _checksum_expectations(request)
    body = request_body(ctx)
    if body.size is not None and body.size > MAX_SINGLE_PUT_SIZE:
        raise S3Error(
            "EntityTooLarge",
            extra={"ProposedSize": str(body.size), "MaxSizeAllowed": str(MAX_SINGLE_PUT_SIZE)},
        )
    headers = {name: request.headers[name] for name in _STORED_HEADERS if name in request.headers}
    if "content-encoding" in headers:
        # aws-chunked describes this request's framing, not the object: never stored.
        encodings = [e.strip() for e in headers["content-encoding"].split(",")]
        kept = [e for e in encodings if e and e.lower() != "aws-chunked"]
        if kept:
            headers["content-encoding"] = ", ".join(kept)
        else:
            del headers["content-encoding"]
    put = PutRequest(
        key=ctx.key,
        expected_size=body.size,
        content_type=request.headers.get("Content-Type") or "binary/octet-stream",
        headers=headers,
        user_metadata=_user_metadata(request),
        content_md5=content_md5,
        expected_sha256=body.expected_sha256,
        checksum_algorithms=compute,
        storage_class=request.headers.get("x-amz-storage-class", "STANDARD"),
    )
    await body.continue_if_expected()

    async def pieces_then_trailers() -> AsyncIterator[bytes]:
        async for piece in body.pieces():
            yield piece
        for algorithm in expected:
            if expected[algorithm] is None:
                expected[algorithm] = body.trailers.get(header_name(algorithm))

    obj, stored = await ctx.services.objects.put(bucket, put, pieces_then_trailers(), expected)
    ctx.bytes_in += stored.size
    response_headers = {"ETag": f'"{obj.etag}"'}
    for algorithm, value in obj.checksums.items():
        response_headers[header_name(algorithm)] = value
    return web.Response(headers=response_headers)


def _check_conditions(request: web.BaseRequest, obj: ObjectVersion) -> None:
    """RFC 7232 evaluation order, as S3 applies it."""
    etag = f'"{obj.etag}"'
    if_match = request.headers.get("If-Match")
    if_none_match = request.headers.get("If-None-Match")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            raise S3Error("PreconditionFailed", extra={"Condition": "If-Match"})
    elif (since := _http_time(request.headers.get("If-Unmodified-Since"))) is not None and int(
        obj.last_modified
    ) > since:
        raise S3Error("PreconditionFailed", extra={"Condition": "If-Unmodified-Since"})
    not_modified_headers = {"ETag": etag, "Last-Modified": http_date(obj.last_modified)}
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            raise S3Error("NotModified", headers=not_modified_headers)
    elif (since := _http_time(request.headers.get("If-Modified-Since"))) is not None and int(
        obj.last_modified
    ) <= since:
        raise S3Error("NotModified", headers=not_modified_headers)


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


def _object_headers(ctx: RequestContext, obj: ObjectVersion) -> dict[str, str]:
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
    # A checksum describes the whole object, so S3 leaves it out of ranged responses.
    whole = "Range" not in ctx.request.headers
    if whole and ctx.request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
        for algorithm, value in obj.checksums.items():
            headers[header_name(algorithm)] = value
    for param, header in _RESPONSE_OVERRIDES.items():
        if param in ctx.query:
            headers[header] = ctx.query[param]
    return headers


async def get_object(ctx: RequestContext) -> web.StreamResponse:
    request = ctx.request
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    obj = await ctx.services.objects.head(bucket, ctx.key)
    _check_conditions(request, obj)
    headers = _object_headers(ctx, obj)
    byte_range = parse_range(request.headers.get("Range"), obj.size)
    status = 200
    start, end = 0, obj.size
    if byte_range is not None:
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{obj.size}"
    length = end - start
    if request.method == "HEAD":
        headers["Content-Length"] = str(length)
        return web.Response(status=status, headers=headers)
    body_stream = ctx.services.objects.body(obj, start, end)
    if length <= SMALL_CHUNK_MAX:
        try:
            body = b"".join([piece async for piece in body_stream])
        except (ChunkCorrupt, ChunkMissing) as exc:
            raise S3Error("InternalError", f"The object's data could not be read: {exc}") from exc
        ctx.services.metrics.bytes_out.inc(len(body))
        return web.Response(status=status, body=body, headers=headers)
    response = web.StreamResponse(status=status, headers=headers)
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


async def delete_object(ctx: RequestContext) -> web.StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    await ctx.services.objects.delete(bucket, ctx.key)
    return web.Response(status=204)


async def delete_objects(ctx: RequestContext) -> web.StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    root = xml.parse(await read_small_body(ctx))
    if xml.local_name(root.tag) != "Delete":
        raise S3Error("MalformedXML")
    quiet = (xml.text_of(root, "Quiet") or "").strip().lower() == "true"
    objects = xml.children(root, "Object")
    if not objects or len(objects) > MAX_KEYS_PER_DELETE:
        raise S3Error("MalformedXML")
    keys: list[str] = []
    for node in objects:
        key = xml.text_of(node, "Key")
        if key is None:
            raise S3Error("MalformedXML")
        keys.append(key)
    parts: list[str] = []
    valid = [key for key in keys if len(key.encode()) <= 1024 and key]
    await ctx.services.objects.delete_many(bucket, valid)
    valid_set = set(valid)
    for key in keys:
        if key in valid_set:
            if not quiet:
                parts.append("<Deleted>" + xml.element("Key", key) + "</Deleted>")
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
