"""Small helpers the handlers share: reading a verified small body, XML responses, HTTP dates."""

from __future__ import annotations

import base64
import binascii
import hashlib

from pails.api.context import RequestContext
from pails.api.http import Response
from pails.errors import S3Error
from pails.limits import MAX_XML_BODY_BYTES


def xml_response(body: bytes, status: int = 200) -> Response:
    return Response(status=status, body=body, headers={"Content-Type": "application/xml"})


def parse_content_md5(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise S3Error("InvalidDigest") from None
    if len(digest) != 16:
        raise S3Error("InvalidDigest")
    return digest


async def read_small_body(ctx: RequestContext, limit: int = MAX_XML_BODY_BYTES) -> bytes:
    """Read a configuration body (XML), checking its size, Content-MD5 and signed payload hash."""
    request = ctx.request
    if request.content_length is not None and request.content_length > limit:
        raise S3Error("MalformedXML", "The XML you provided was too large.")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise S3Error("MalformedXML", "The XML you provided was too large.")
    ctx.bytes_in += len(body)
    md5 = parse_content_md5(request.headers.get("Content-MD5"))
    if md5 is not None and hashlib.md5(body).digest() != md5:
        raise S3Error("BadDigest")
    expected = ctx.auth.payload_sha256 if ctx.auth is not None else None
    if expected is not None and hashlib.sha256(body).hexdigest() != expected:
        raise S3Error("XAmzContentSHA256Mismatch")
    return body


def version_id_headers(
    requested: str | None, version_id: str, header: str = "x-amz-version-id"
) -> dict[str, str]:
    """The version id header, as GetObject sends it: when a version was named or the key is
    versioned (CopyObject sends its source's the same way, as x-amz-copy-source-version-id)."""
    if requested is not None or version_id != "null":
        return {header: version_id}
    return {}
