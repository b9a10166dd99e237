"""Request parsing shared by the operations that store a body or describe a future object:
PutObject, UploadPart, CreateMultipartUpload, CopyObject."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator

from pails.api.body import RequestBody
from pails.api.http import Request
from pails.checksums import ALGORITHMS, header_name
from pails.errors import S3Error
from pails.limits import MAX_USER_METADATA_BYTES
from pails.meta.models import WriteCondition

STORED_HEADERS = ("content-encoding", "content-disposition", "content-language", "cache-control", "expires")
_CHECKSUM_HEADERS = tuple((algorithm, header_name(algorithm)) for algorithm in ALGORITHMS)


def user_metadata(request: Request) -> dict[str, str]:
    metadata: dict[str, str] = {}
    size = 0
    for name, value in request.lower_headers.items():  # a repeated header is already joined
        if name.startswith("x-amz-meta-"):
            short = name[11:]
            metadata[short] = value if short not in metadata else metadata[short] + "," + value
            size += len(short) + len(value.encode())
    if size > MAX_USER_METADATA_BYTES:
        raise S3Error("MetadataTooLarge", extra={"MaxSizeAllowed": str(MAX_USER_METADATA_BYTES)})
    return metadata


def stored_headers(request: Request) -> dict[str, str]:
    """The system headers S3 keeps with an object (aws-chunked, a framing detail, dropped)."""
    sent = request.lower_headers
    headers = {name: sent[name] for name in STORED_HEADERS if name in sent}
    if "content-encoding" in headers:
        encodings = [e.strip() for e in headers["content-encoding"].split(",")]
        kept = [e for e in encodings if e and e.lower() != "aws-chunked"]
        if kept:
            headers["content-encoding"] = ", ".join(kept)
        else:
            del headers["content-encoding"]
    return headers


def checksum_expectations(request: Request) -> tuple[dict[str, str | None], tuple[str, ...]]:
    """Checksums the client sent (by header, or promised in a trailer) and the ones to compute."""
    expected: dict[str, str | None] = {}
    sent = request.lower_headers
    for algorithm, name in _CHECKSUM_HEADERS:
        value = sent.get(name)
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise S3Error("InvalidRequest", f"Value for {name} header is invalid.") from None
            expected[algorithm] = value
    for trailer in sent.get("x-amz-trailer", "").split(","):
        trailer = trailer.strip().lower()
        if trailer.startswith("x-amz-checksum-"):
            algorithm = trailer[len("x-amz-checksum-") :].upper()
            if algorithm not in ALGORITHMS:
                raise S3Error("InvalidRequest", f"Unsupported trailer checksum {trailer}.")
            expected[algorithm] = None
    if len(expected) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    compute = set(expected)
    sdk = sent.get("x-amz-sdk-checksum-algorithm")
    if sdk:
        if sdk.upper() not in ALGORITHMS:
            raise S3Error("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.")
        compute.add(sdk.upper())
    return expected, tuple(sorted(compute))


async def pieces_then_trailers(body: RequestBody, expected: dict[str, str | None]) -> AsyncIterator[bytes]:
    """The body's bytes; afterwards, checksums promised in trailers are filled into `expected`."""
    async for piece in body.pieces():
        yield piece
    for algorithm in expected:
        if expected[algorithm] is None:
            expected[algorithm] = body.trailers.get(header_name(algorithm))


def write_condition(request: Request) -> WriteCondition | None:
    """If-None-Match: * (create only) / If-Match: "etag" (replace only that version) on a write."""
    if_none_match = request.lower_headers.get("if-none-match")
    if_match = request.lower_headers.get("if-match")
    if if_none_match is None and if_match is None:
        return None
    if if_none_match is not None and if_none_match.strip() != "*":
        raise S3Error(
            "NotImplemented", "A header you provided implies functionality that is not implemented."
        )
    etag = None
    if if_match is not None:
        etag = if_match.strip()
        if etag != "*":
            etag = etag.removeprefix("W/").strip('"')
    return WriteCondition(if_none_match=if_none_match is not None, if_match=etag)
