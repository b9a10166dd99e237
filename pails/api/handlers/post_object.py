"""POST Object: a browser upload (multipart/form-data to the bucket URL) with a signed POST policy.

The form's fields come first, the file last (fields after it are ignored, as in S3); the file
part is streamed to the chunk store, never held whole. Authentication is the form's signature
(SigV4: x-amz-credential/x-amz-signature; SigV2: AWSAccessKeyId/signature) over the policy; a
form without a policy is anonymous. Authorization is the signer's s3:PutObject.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from aiohttp import BodyPartReader

from pails.api import xml
from pails.api.auth import lookup
from pails.api.authz import allowed, new_object_acl_from, request_keys
from pails.api.context import RequestContext
from pails.api.handlers.tagging import parse_tagging
from pails.api.handlers.writes import STORED_HEADERS
from pails.api.http import Response, StreamResponse
from pails.errors import S3Error
from pails.iam.actions import Access, object_arn
from pails.iam.credentials import Identity
from pails.iam.post_policy import (
    MalformedPostPolicy,
    PolicyViolation,
    check_fields,
    parse_post_policy,
    verify_v4_signature,
)
from pails.limits import MAX_SINGLE_PUT_SIZE, MAX_USER_METADATA_BYTES
from pails.service.objects import PutRequest
from pails.service.tagging import MAX_OBJECT_TAGS

_FIELD_LIMIT = 64 * 1024  # one form field (a policy is at most a few KiB)
_FIELDS_LIMIT = 1024 * 1024  # all fields together
_PIECE = 256 * 1024


def _invalid(message: str, name: str = "", value: str = "") -> S3Error:
    extra = {"ArgumentName": name, "ArgumentValue": value} if name else {}
    return S3Error("InvalidArgument", message, extra=extra)


async def _read_field(part: BodyPartReader, budget: int) -> str:
    data = bytearray()
    while True:
        piece = await part.read_chunk(8192)
        if not piece:
            break
        data += piece
        if len(data) > min(_FIELD_LIMIT, budget):
            raise S3Error("MaxPostPreDataLengthExceededError",
                          "Your POST request fields preceding the upload file were too large.")  # fmt: skip
    return data.decode("utf-8", "replace")


async def _authenticate(ctx: RequestContext, fields: dict[str, str]) -> tuple[Identity | None, str | None]:
    """The signer of the form (None: anonymous, a form without a policy) and the signature version."""
    if "policy" not in fields:
        if "x-amz-signature" in fields or "signature" in fields:
            raise _invalid("Bucket POST must contain a field named 'policy'.", "policy")
        return None, None
    encoded = fields["policy"]
    token = fields.get("x-amz-security-token")
    credentials = ctx.services.credentials
    if "x-amz-algorithm" in fields or "x-amz-credential" in fields:
        if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
            raise _invalid("POST algorithm must be AWS4-HMAC-SHA256.", "x-amz-algorithm",
                           fields.get("x-amz-algorithm", ""))  # fmt: skip
        for name in ("x-amz-credential", "x-amz-signature", "x-amz-date"):
            if name not in fields:
                raise _invalid(f"Bucket POST must contain a field named '{name}'.", name)
        access_key = fields["x-amz-credential"].split("/", 1)[0]
        credential = await lookup(credentials, access_key, token)
        if not verify_v4_signature(encoded, fields["x-amz-signature"], credential.secret_key,
                                   fields["x-amz-credential"]):  # fmt: skip
            raise S3Error("SignatureDoesNotMatch", extra={"StringToSign": encoded})
        return credential.identity, "AWS4-HMAC-SHA256"
    if "awsaccesskeyid" in fields:
        if "signature" not in fields:
            raise _invalid("Bucket POST must contain a field named 'Signature'.", "Signature")
        access_key = fields["awsaccesskeyid"]
        credential = await lookup(credentials, access_key, token)
        expected = base64.b64encode(
            hmac.new(credential.secret_key.encode(), encoded.encode(), hashlib.sha1).digest()
        ).decode()
        if not hmac.compare_digest(expected, fields["signature"].strip()):
            raise S3Error("SignatureDoesNotMatch", extra={"StringToSign": encoded})
        return credential.identity, "AWS"
    raise _invalid("Bucket POST must contain a field named 'x-amz-algorithm'.", "x-amz-algorithm")


async def post_object(ctx: RequestContext) -> StreamResponse:
    request = ctx.request
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise S3Error(
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            extra={"Condition": "Bucket POST must be of the enclosure-type multipart/form-data"},
        )
    reader = await request.multipart()
    fields: dict[str, str] = {}
    file_part: BodyPartReader | None = None
    budget = _FIELDS_LIMIT
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise _invalid("Nested multipart content is not supported in a POST upload.")
        name = (part.name or "").lower()
        if name == "file":
            file_part = part
            break
        value = await _read_field(part, budget)
        budget -= len(value)
        if name in fields:
            raise _invalid(f"Bucket POST can only contain one field named '{part.name}'.", part.name or "")
        fields[name] = value
    if file_part is None:
        raise _invalid("POST requires exactly one file upload per request.", "file", "0")
    if "key" not in fields:
        raise _invalid(
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order "
            "of the fields.",
            "key",
        )
    filename = file_part.filename or ""
    key = fields["key"].replace("${filename}", filename)
    if not key:
        raise _invalid("User key must have a length greater than 0.", "key")
    fields["key"] = key
    fields["bucket"] = ctx.bucket_name

    identity, version = await _authenticate(ctx, fields)
    ctx.identity = identity
    length_range: tuple[int, int] | None = None
    if identity is not None:
        try:
            policy = parse_post_policy(fields["policy"])
        except MalformedPostPolicy as exc:
            raise S3Error("InvalidPolicyDocument", str(exc)) from None
        try:
            check_fields(policy, fields, datetime.now(UTC))
        except PolicyViolation as exc:
            raise S3Error("AccessDenied", str(exc)) from None
        length_range = policy.length_range

    keys = request_keys(ctx, auth_type="POST")
    if version is not None:
        keys["s3:signatureversion"] = (version,)
    access_keys: dict[str, tuple[str, ...]] = {}
    if "acl" in fields:
        access_keys["s3:x-amz-acl"] = (fields["acl"],)
    access = Access("s3:PutObject", object_arn(ctx.bucket_name, key), ctx.bucket_name, key, access_keys)
    if not await allowed(ctx, access, keys):
        raise S3Error("AccessDenied")
    bucket = await ctx.services.buckets.get(ctx.bucket_name)
    acl = await new_object_acl_from(
        ctx, ctx.bucket_name, {"x-amz-acl": fields["acl"]} if "acl" in fields else {}
    )

    metadata = {name[11:]: value for name, value in fields.items() if name.startswith("x-amz-meta-")}
    if sum(len(k) + len(v.encode()) for k, v in metadata.items()) > MAX_USER_METADATA_BYTES:
        raise S3Error("MetadataTooLarge", extra={"MaxSizeAllowed": str(MAX_USER_METADATA_BYTES)})
    put = PutRequest(
        key=key,
        expected_size=None,
        content_type=fields.get("content-type")
        or file_part.headers.get("Content-Type")
        or "binary/octet-stream",
        headers={name: fields[name] for name in STORED_HEADERS if name in fields},
        user_metadata=metadata,
        content_md5=None,
        expected_sha256=None,
        checksum_algorithms=(),
        storage_class=fields.get("x-amz-storage-class", "STANDARD"),
        tags=parse_tagging(fields["tagging"].encode(), limit=MAX_OBJECT_TAGS) if "tagging" in fields else {},
        acl=acl,
    )
    sizes = [0]

    async def pieces() -> AsyncIterator[bytes]:
        high = min(length_range[1], MAX_SINGLE_PUT_SIZE) if length_range else MAX_SINGLE_PUT_SIZE
        assert file_part is not None
        while True:
            piece = await file_part.read_chunk(_PIECE)
            if not piece:
                break
            sizes[0] += len(piece)
            if sizes[0] > high:
                raise S3Error(
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size",
                    extra={"ProposedSize": str(sizes[0]), "MaxSizeAllowed": str(high)},
                )
            yield piece
        if length_range is not None and sizes[0] < length_range[0]:
            raise S3Error(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                extra={"ProposedSize": str(sizes[0]), "MinSizeAllowed": str(length_range[0])},
            )

    obj, stored = await ctx.services.objects.put(bucket, put, pieces(), {})
    ctx.bytes_in += stored.size
    while await reader.next() is not None:  # fields after the file are ignored, as in S3
        pass
    return _success(ctx, fields, obj.etag, obj.version_id, key)


def _success(ctx: RequestContext, fields: dict[str, str], etag: str, version_id: str, key: str) -> Response:
    location = f"/{ctx.bucket_name}/{key}"
    headers = {"ETag": f'"{etag}"', "Location": location}
    if version_id != "null":
        headers["x-amz-version-id"] = version_id
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect and urlsplit(redirect).scheme in ("http", "https"):
        query = urlencode({"bucket": ctx.bucket_name, "key": key, "etag": f'"{etag}"'})
        headers["Location"] = redirect + ("&" if "?" in redirect else "?") + query
        return Response(status=303, headers=headers)
    status = fields.get("success_action_status", "204")
    if status == "201":
        body = xml.document(
            "PostResponse",
            [
                xml.element("Location", location),
                xml.element("Bucket", ctx.bucket_name),
                xml.element("Key", key),
                xml.element("ETag", f'"{etag}"'),
            ],
        )
        return Response(status=201, body=body, headers={**headers, "Content-Type": "application/xml"})
    return Response(status=200 if status == "200" else 204, headers=headers)
