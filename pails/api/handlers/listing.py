"""ListObjects (v1) and ListObjectsV2."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from pails.api import xml
from pails.api.context import RequestContext
from pails.api.handlers.common import xml_response
from pails.api.http import StreamResponse
from pails.errors import S3Error
from pails.limits import MAX_KEYS_PER_LIST
from pails.meta.models import ListPage


def max_keys_param(ctx: RequestContext) -> int:
    raw = ctx.query.get("max-keys")
    if raw is None:
        return MAX_KEYS_PER_LIST
    try:
        value = int(raw)
    except ValueError:
        raise S3Error(
            "InvalidArgument",
            "Provided max-keys not an integer or within integer range",
            extra={"ArgumentName": "max-keys", "ArgumentValue": raw},
        ) from None
    if value < 0:
        raise S3Error(
            "InvalidArgument",
            "Argument maxKeys must be an integer between 0 and 2147483647",
            extra={"ArgumentName": "maxKeys", "ArgumentValue": raw},
        )
    return min(value, MAX_KEYS_PER_LIST)


def key_encoder(ctx: RequestContext) -> Callable[[str], str]:
    encoding = ctx.query.get("encoding-type")
    if encoding is None:
        return lambda text: text
    if encoding.lower() != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            extra={"ArgumentName": "encoding-type", "ArgumentValue": encoding},
        )
    return xml.url_encode


def _entries(ctx: RequestContext, page: ListPage, encode: Callable[[str], str], owner: bool) -> list[str]:
    parts: list[str] = []
    owner_xml = ""
    if owner and ctx.identity is not None:
        owner_xml = (
            "<Owner>"
            + xml.element("ID", ctx.identity.canonical_id)
            + xml.element("DisplayName", ctx.identity.display_name)
            + "</Owner>"
        )
    for entry in page.entries:
        parts.append(
            "<Contents>"
            + xml.element("Key", encode(entry.key))
            + xml.element("LastModified", xml.iso8601(entry.last_modified))
            + f"<ETag>&quot;{entry.etag}&quot;</ETag>"
            + f"<Size>{entry.size}</Size>"
            + owner_xml
            + xml.element("StorageClass", entry.storage_class)
            + "</Contents>"
        )
    for common in page.common_prefixes:
        parts.append("<CommonPrefixes>" + xml.element("Prefix", encode(common)) + "</CommonPrefixes>")
    return parts


def _encoding_echo(ctx: RequestContext) -> list[str]:
    return [xml.element("EncodingType", "url")] if "encoding-type" in ctx.query else []


async def list_objects_v1(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    encode = key_encoder(ctx)
    prefix = ctx.query.get("prefix", "")
    delimiter = ctx.query.get("delimiter", "")
    marker = ctx.query.get("marker", "")
    max_keys = max_keys_param(ctx)
    page = await ctx.services.objects.list(
        bucket, prefix=prefix, delimiter=delimiter, start_after=marker, max_keys=max_keys
    )
    parts = [
        xml.element("Name", bucket.name),
        xml.element("Prefix", encode(prefix)),
        xml.element("Marker", encode(marker)),
        xml.element("MaxKeys", max_keys),
    ]
    if delimiter:
        parts.append(xml.element("Delimiter", encode(delimiter)))
    parts.append(xml.element("IsTruncated", "true" if page.is_truncated else "false"))
    if page.is_truncated and delimiter and page.next_marker is not None:
        parts.append(xml.element("NextMarker", encode(page.next_marker)))
    parts.extend(_encoding_echo(ctx))
    parts.extend(_entries(ctx, page, encode, owner=True))
    return xml_response(xml.document("ListBucketResult", parts))


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii") + b"==").decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            extra={"ArgumentName": "continuation-token"},
        ) from None


def _encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode("utf-8")).decode("ascii").rstrip("=")


async def list_objects_v2(ctx: RequestContext) -> StreamResponse:
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    encode = key_encoder(ctx)
    prefix = ctx.query.get("prefix", "")
    delimiter = ctx.query.get("delimiter", "")
    token = ctx.query.get("continuation-token")
    if token == "":
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            extra={"ArgumentName": "continuation-token"},
        )
    start_after = ctx.query.get("start-after", "")
    max_keys = max_keys_param(ctx)
    position = _decode_token(token) if token is not None else start_after
    page = await ctx.services.objects.list(
        bucket, prefix=prefix, delimiter=delimiter, start_after=position, max_keys=max_keys
    )
    parts = [xml.element("Name", bucket.name), xml.element("Prefix", encode(prefix))]
    if delimiter:
        parts.append(xml.element("Delimiter", encode(delimiter)))
    parts.append(xml.element("MaxKeys", max_keys))
    parts.append(xml.element("KeyCount", len(page.entries) + len(page.common_prefixes)))
    parts.append(xml.element("IsTruncated", "true" if page.is_truncated else "false"))
    if token is not None:
        parts.append(xml.element("ContinuationToken", token))
    if page.is_truncated and page.next_marker is not None:
        parts.append(xml.element("NextContinuationToken", _encode_token(page.next_marker)))
    if "start-after" in ctx.query:
        parts.append(xml.element("StartAfter", encode(start_after)))
    parts.extend(_encoding_echo(ctx))
    parts.extend(
        _entries(
            ctx, page, encode, owner="fetch-owner" in ctx.query and ctx.query["fetch-owner"].lower() == "true"
        )
    )
    return xml_response(xml.document("ListBucketResult", parts))
