"""Multipart upload operations: Create, UploadPart, Complete, Abort, ListParts, ListMultipartUploads."""

from __future__ import annotations

from collections.abc import Callable

from pails.api import xml
from pails.api.authz import new_object_acl
from pails.api.body import request_body
from pails.api.context import RequestContext
from pails.api.handlers.common import parse_content_md5, read_small_body, xml_response
from pails.api.handlers.listing import key_encoder
from pails.api.handlers.writes import (
    checksum_expectations,
    pieces_then_trailers,
    stored_headers,
    user_metadata,
    write_condition,
)
from pails.api.http import Response, StreamResponse
from pails.checksums import (
    ALGORITHMS,
    algorithm_of_header,
    checksum_type_for,
    header_name,
    normalize_algorithm,
)
from pails.errors import S3Error
from pails.limits import MAX_PART_NUMBER, MAX_PART_SIZE, MAX_PARTS_PER_LIST, MAX_UPLOADS_PER_LIST
from pails.meta.models import Part, Upload
from pails.meta.rules import checksum_type_of
from pails.service.multipart import PartBody, check_part_number
from pails.service.tagging import parse_tagging_header


def _upload_id(ctx: RequestContext) -> str:
    upload_id = ctx.query.get("uploadId", "")
    if not upload_id:
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    return upload_id


def _owner_xml(ctx: RequestContext, name: str) -> str:
    if ctx.identity is None:
        return ""
    return (
        f"<{name}>"
        + xml.element("ID", ctx.identity.canonical_id)
        + xml.element("DisplayName", ctx.identity.display_name)
        + f"</{name}>"
    )


def _bounded_int(ctx: RequestContext, name: str, default: int, upper: int) -> int:
    raw = ctx.query.get(name)
    if raw is None:
        return default
    if not raw.strip().lstrip("-").isdigit() or int(raw) < 0:
        raise S3Error(
            "InvalidArgument",
            f"Argument {name} must be an integer between 0 and 2147483647",
            extra={"ArgumentName": name, "ArgumentValue": raw},
        )
    return min(int(raw), upper)


async def create_multipart_upload(ctx: RequestContext) -> StreamResponse:
    request = ctx.request
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    algorithm = request.headers.get("x-amz-checksum-algorithm", "")
    algorithm = normalize_algorithm(algorithm) if algorithm else ""
    checksum_type = checksum_type_for(algorithm, request.headers.get("x-amz-checksum-type", ""))
    upload = await ctx.services.multipart.create(
        bucket,
        ctx.key,
        content_type=request.headers.get("Content-Type") or "binary/octet-stream",
        headers=stored_headers(request),
        user_metadata=user_metadata(request),
        storage_class=request.headers.get("x-amz-storage-class", "STANDARD"),
        checksum_algorithm=algorithm,
        checksum_type=checksum_type,
        tags=parse_tagging_header(request.headers.get("x-amz-tagging")),
        acl=await new_object_acl(ctx, ctx.bucket_name),
    )
    body = xml.document(
        "InitiateMultipartUploadResult",
        [
            xml.element("Bucket", bucket.name),
            xml.element("Key", upload.key),
            xml.element("UploadId", upload.upload_id),
        ],
    )
    response = xml_response(body)
    if upload.checksum_algorithm:
        response.headers["x-amz-checksum-algorithm"] = upload.checksum_algorithm
        response.headers["x-amz-checksum-type"] = upload.checksum_type
    return response


async def upload_part(ctx: RequestContext) -> StreamResponse:
    request = ctx.request
    part_number = check_part_number(ctx.query.get("partNumber"))
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    upload = await ctx.services.multipart.get(bucket, ctx.key, _upload_id(ctx))
    content_md5 = parse_content_md5(request.headers.get("Content-MD5"))
    expected, compute = checksum_expectations(request)
    body = request_body(ctx)
    if body.size is not None and body.size > MAX_PART_SIZE:
        raise S3Error(
            "EntityTooLarge",
            extra={"ProposedSize": str(body.size), "MaxSizeAllowed": str(MAX_PART_SIZE)},
        )
    described = PartBody(
        expected_size=body.size,
        content_md5=content_md5,
        expected_sha256=body.expected_sha256,
        checksum_algorithms=compute,
    )
    await body.continue_if_expected()
    part = await ctx.services.multipart.upload_part(
        upload, part_number, pieces_then_trailers(body, expected), described, expected
    )
    ctx.bytes_in += part.size
    headers = {"ETag": f'"{part.etag}"'}
    for algorithm, value in part.checksums.items():
        if algorithm in expected or algorithm == upload.checksum_algorithm:
            headers[header_name(algorithm)] = value
    return Response(headers=headers)


def _requested_parts(body: bytes) -> list[tuple[int, str, dict[str, str]]]:
    root = xml.parse(body)
    if xml.local_name(root.tag) != "CompleteMultipartUpload":
        raise S3Error("MalformedXML")
    requested: list[tuple[int, str, dict[str, str]]] = []
    for node in xml.children(root, "Part"):
        number = (xml.text_of(node, "PartNumber") or "").strip()
        etag = xml.text_of(node, "ETag")
        if not number.isdigit() or etag is None:
            raise S3Error("MalformedXML")
        if not 1 <= int(number) <= MAX_PART_NUMBER:
            raise S3Error("InvalidArgument", f"Part number must be between 1 and {MAX_PART_NUMBER}")
        checksums = {}
        for algorithm in ALGORITHMS:
            value = xml.text_of(node, "Checksum" + algorithm)
            if value:
                checksums[algorithm] = value.strip()
        requested.append((int(number), etag, checksums))
    if not requested:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate.")
    return requested


def _expected_checksums(ctx: RequestContext) -> dict[str, str]:
    """The whole object's checksum(s) the completion states (x-amz-checksum-<alg>), and the
    checksum type under the key "type" (x-amz-checksum-type): to verify before committing."""
    expected: dict[str, str] = {}
    for name, value in ctx.request.headers.items():
        lower = name.lower()
        if lower == "x-amz-checksum-type":
            expected["type"] = value
        elif (algorithm := algorithm_of_header(lower)) is not None:
            expected[algorithm] = value.strip()
    return expected


async def complete_multipart_upload(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    upload_id = _upload_id(ctx)
    condition = write_condition(ctx.request)
    requested = _requested_parts(await read_small_body(ctx))
    expected = _expected_checksums(ctx)
    obj = await ctx.services.multipart.complete(bucket, ctx.key, upload_id, requested, condition, expected)
    location = f"http://{ctx.request.host}/{bucket.name}/{xml.url_encode(ctx.key)}"
    parts = [
        xml.element("Location", location),
        xml.element("Bucket", bucket.name),
        xml.element("Key", ctx.key),
        xml.element("ETag", f'"{obj.etag}"'),
    ]
    parts.extend(xml.element("Checksum" + name, value) for name, value in obj.checksums.items())
    if obj.checksums:
        parts.append(xml.element("ChecksumType", checksum_type_of(obj)))
    response = xml_response(xml.document("CompleteMultipartUploadResult", parts))
    if obj.version_id != "null":
        response.headers["x-amz-version-id"] = obj.version_id
    return response


async def abort_multipart_upload(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    await ctx.services.multipart.abort(bucket, ctx.key, _upload_id(ctx))
    return Response(status=204)


def _part_xml(part: Part) -> str:
    items = [
        xml.element("PartNumber", part.part_number),
        xml.element("LastModified", xml.iso8601(part.last_modified)),
        xml.element("ETag", f'"{part.etag}"'),
        xml.element("Size", part.size),
    ]
    items.extend(xml.element("Checksum" + name, value) for name, value in sorted(part.checksums.items()))
    return "<Part>" + "".join(items) + "</Part>"


async def list_parts(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    upload = await ctx.services.multipart.get(bucket, ctx.key, _upload_id(ctx))
    max_parts = _bounded_int(ctx, "max-parts", MAX_PARTS_PER_LIST, MAX_PARTS_PER_LIST)
    marker = _bounded_int(ctx, "part-number-marker", 0, MAX_PART_NUMBER)
    parts, truncated = await ctx.services.multipart.list_parts(upload, after=marker, limit=max_parts)
    body: list[str] = [
        xml.element("Bucket", bucket.name),
        xml.element("Key", upload.key),
        xml.element("UploadId", upload.upload_id),
        _owner_xml(ctx, "Initiator"),
        _owner_xml(ctx, "Owner"),
        xml.element("StorageClass", upload.storage_class),
        xml.element("PartNumberMarker", marker),
        xml.element("NextPartNumberMarker", parts[-1].part_number if parts else marker),
        xml.element("MaxParts", max_parts),
        xml.element("IsTruncated", "true" if truncated else "false"),
    ]
    if upload.checksum_algorithm:
        body.append(xml.element("ChecksumAlgorithm", upload.checksum_algorithm))
        body.append(xml.element("ChecksumType", upload.checksum_type))
    body.extend(_part_xml(part) for part in parts)
    return xml_response(xml.document("ListPartsResult", body))


def _upload_xml(ctx: RequestContext, upload: Upload, encode: Callable[[str], str]) -> str:
    items = [
        xml.element("Key", encode(upload.key)),
        xml.element("UploadId", upload.upload_id),
        _owner_xml(ctx, "Initiator"),
        _owner_xml(ctx, "Owner"),
        xml.element("StorageClass", upload.storage_class),
        xml.element("Initiated", xml.iso8601(upload.initiated)),
    ]
    if upload.checksum_algorithm:
        items.append(xml.element("ChecksumAlgorithm", upload.checksum_algorithm))
    return "<Upload>" + "".join(items) + "</Upload>"


async def list_multipart_uploads(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    encode = key_encoder(ctx)
    prefix = ctx.query.get("prefix", "")
    delimiter = ctx.query.get("delimiter", "")
    key_marker = ctx.query.get("key-marker", "")
    upload_id_marker = ctx.query.get("upload-id-marker", "")
    max_uploads = _bounded_int(ctx, "max-uploads", MAX_UPLOADS_PER_LIST, MAX_UPLOADS_PER_LIST)
    page = await ctx.services.multipart.list_uploads(
        bucket,
        prefix=prefix,
        delimiter=delimiter,
        key_marker=key_marker,
        upload_id_marker=upload_id_marker,
        max_uploads=max_uploads,
    )
    body: list[str] = [
        xml.element("Bucket", bucket.name),
        xml.element("KeyMarker", encode(key_marker)),
        xml.element("UploadIdMarker", upload_id_marker),
    ]
    if page.is_truncated:
        body.append(xml.element("NextKeyMarker", encode(page.next_key_marker or "")))
        body.append(xml.element("NextUploadIdMarker", page.next_upload_id_marker or ""))
    if delimiter:
        body.append(xml.element("Delimiter", encode(delimiter)))
    body.append(xml.element("Prefix", encode(prefix)))
    body.append(xml.element("MaxUploads", max_uploads))
    body.append(xml.element("IsTruncated", "true" if page.is_truncated else "false"))
    if "encoding-type" in ctx.query:
        body.append(xml.element("EncodingType", "url"))
    body.extend(_upload_xml(ctx, upload, encode) for upload in page.uploads)
    body.extend(
        "<CommonPrefixes>" + xml.element("Prefix", encode(p)) + "</CommonPrefixes>"
        for p in page.common_prefixes
    )
    return xml_response(xml.document("ListMultipartUploadsResult", body))
