"""Authenticates a request: SigV4 (or SigV2) values out of aiohttp, verified by the pure verifiers in
pails.iam."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from pails.api.http import Request
from pails.api.router import split_host
from pails.errors import S3Error
from pails.iam import sigv2
from pails.iam.credentials import Credential, Identity
from pails.iam.directory import CredentialStore, TokenRevoked
from pails.iam.sessions import TokenExpired, TokenInvalid
from pails.iam.sigv4 import (
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    AuthInfo,
    SignedRequest,
    auth_scheme,
    format_amz_date,
    parse_auth,
    verify,
)


async def lookup(credentials: CredentialStore, access_key: str, security_token: str | None) -> Credential:
    """The credential of a signed request, or the S3 error for an unknown key or a bad token."""
    try:
        credential = await credentials.lookup(access_key, security_token)
    except TokenExpired:
        raise S3Error("ExpiredToken", extra={"Token-0": security_token or ""}) from None
    except TokenRevoked:
        raise S3Error("InvalidToken", "The provided token has been revoked.") from None
    except TokenInvalid:
        raise S3Error("InvalidToken", extra={"Token-0": security_token or ""}) from None
    if credential is None:
        raise S3Error("InvalidAccessKeyId", extra={"AWSAccessKeyId": access_key})
    return credential


async def authenticate(
    request: Request,
    raw_path: str,
    raw_query: str,
    credentials: CredentialStore,
    region: str,
    *,
    domain: str = "",
    service: str = "s3",
    payload_hash: str | None = None,
) -> tuple[Identity | None, AuthInfo | None, bytes | None]:
    """Who signed the request (None when anonymous) and the signing key for streamed chunks.

    `service` is the credential scope the request must carry; for the IAM and STS query APIs
    (global services, signed for whatever region the client chose) the region is not checked, and
    the caller passes `payload_hash`, the body's SHA-256 (their clients send no x-amz-content-sha256)."""
    headers = request.lower_headers
    if payload_hash is not None and "x-amz-content-sha256" not in headers:
        headers = {**headers, "x-amz-content-sha256": payload_hash}  # a copy: the request's stays as sent
    signed = SignedRequest(request.method, raw_path, raw_query, headers)
    header = headers.get("authorization")
    if (header is not None and header.startswith("AWS ")) or "AWSAccessKeyId=" in raw_query:
        scheme = auth_scheme(signed)
        if scheme == "sigv2-header" or scheme == "sigv2-query":
            bucket_in_host = split_host(request.host, domain) if domain else None
            return await _authenticate_v2(signed, scheme == "sigv2-query", credentials, bucket_in_host)
    info = parse_auth(signed)
    if info is None:
        return None, None, None
    credential = credentials.cached(info.access_key) if info.security_token is None else None
    if credential is None:
        credential = await lookup(credentials, info.access_key, info.security_token)
    if service != "s3":
        region = info.region
    signing_key = verify(signed, info, credential.secret_key, now=time.time(), region=region, service=service)
    return credential.identity, info, signing_key


def _v2_payload_mode(signed: SignedRequest) -> str:
    """SigV2 signs no payload; an x-amz-content-sha256 the client sent anyway (a signed x-amz-*
    header under SigV2) is honoured if it is a hex digest or the unsigned aws-chunked mode."""
    value = signed.headers.get("x-amz-content-sha256")
    if value is None:
        return UNSIGNED_PAYLOAD
    value = value.strip()
    if value in (UNSIGNED_PAYLOAD, STREAMING_UNSIGNED_PAYLOAD_TRAILER):
        return value
    if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value
    raise S3Error(
        "InvalidRequest",
        f"x-amz-content-sha256 {value} requires AWS Signature Version 4 (AWS4-HMAC-SHA256).",
    )


async def _authenticate_v2(
    signed: SignedRequest, presigned: bool, credentials: CredentialStore, bucket_in_host: str | None
) -> tuple[Identity, AuthInfo, None]:
    claims = sigv2.parse_query(signed) if presigned else sigv2.parse_header(signed)
    token = signed.headers.get("x-amz-security-token")
    if token is None and presigned:
        token = dict(parse_qsl(signed.raw_query, keep_blank_values=True)).get("x-amz-security-token")
    credential = await lookup(credentials, claims.access_key, token)
    now = datetime.now(UTC)
    sigv2.verify(signed, claims, credential.secret_key, now=now, bucket_in_host=bucket_in_host)
    amz_date = format_amz_date(now if presigned else claims.when)
    info = AuthInfo(
        access_key=claims.access_key,
        amz_date=amz_date,
        timestamp=calendar.timegm(claims.when.utctimetuple()),
        scope_date=amz_date[:8],
        region="",
        service="s3",
        signed_headers=(),
        signature=claims.signature,
        payload_hash=_v2_payload_mode(signed),
        presigned=presigned,
        expires=claims.expires,
        security_token=token,
    )
    return credential.identity, info, None
