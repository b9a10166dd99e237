"""Authenticates a request: SigV4 values out of aiohttp, verified by the pure verifier in pails.iam."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from pails.errors import S3Error
from pails.iam.credentials import CredentialStore, Identity
from pails.iam.sigv4 import AuthInfo, SignedRequest, parse_auth, verify


def lower_headers(request: web.BaseRequest) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        lname = name.lower()
        if lname in headers:
            headers[lname] = headers[lname] + "," + value
        else:
            headers[lname] = value
    return headers


def authenticate(
    request: web.BaseRequest,
    raw_path: str,
    raw_query: str,
    credentials: CredentialStore,
    region: str,
) -> tuple[Identity | None, AuthInfo | None, bytes | None]:
    """Who signed the request (None when anonymous) and the signing key for streamed chunks."""
    signed = SignedRequest(
        method=request.method, raw_path=raw_path, raw_query=raw_query, headers=lower_headers(request)
    )
    info = parse_auth(signed)
    if info is None:
        return None, None, None
    credential = credentials.lookup(info.access_key)
    if credential is None:
        raise S3Error("InvalidAccessKeyId", extra={"AWSAccessKeyId": info.access_key})
    signing_key = verify(signed, info, credential.secret_key, now=datetime.now(UTC), region=region)
    return credential.identity, info, signing_key
