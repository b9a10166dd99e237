"""AWS Signature Version 2 for S3, server side: parse and verify. Pure: no I/O, no web framework.

Two forms (both HMAC-SHA1 of a string to sign, base64):

* header: ``Authorization: AWS <access key>:<signature>``, timestamped by ``Date`` or ``x-amz-date``
  (at most 15 minutes off the server's clock);
* presigned query: ``?AWSAccessKeyId=..&Expires=<unix seconds>&Signature=..``; refused after Expires.

The string to sign::

    METHOD \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n CanonicalizedAmzHeaders CanonicalizedResource

* the Date slot is empty when an ``x-amz-date`` header is present (that header is then signed as
  one of the x-amz-* headers); a presigned URL puts its Expires value there;
* CanonicalizedAmzHeaders: every ``x-amz-*`` header, lower-case, sorted, ``name:value\\n``, values
  of a repeated header joined with ``,``; presigned URLs may carry them as query parameters;
* CanonicalizedResource: ``/bucket`` (for virtual-hosted-style requests, taken from the Host) plus
  the path as sent on the wire, plus the signed sub-resources of the query (sorted by name,
  ``name`` or ``name=decoded value``; other parameters are not signed).

Clients disagree on which sub-resources they sign (the S3 documentation lists fewer than botocore
signs), so a signature is checked against both lists, and against the re-encoded path; every
candidate is a full HMAC comparison, so accepting any of them is no weaker than accepting one.

SigV2 has no payload hash: a body is unsigned (Content-MD5 and x-amz-checksum-* still verify it).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from pails.errors import S3Error
from pails.iam.sigv4 import SignedRequest, canonical_uri, parse_amz_date
from pails.limits import MAX_CLOCK_SKEW_SECONDS

# The sub-resources the S3 documentation says are part of the CanonicalizedResource.
DOCUMENTED_SUBRESOURCES = frozenset(
    {
        "acl", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy",
        "requestPayment", "response-cache-control", "response-content-disposition",
        "response-content-encoding", "response-content-language", "response-content-type",
        "response-expires", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions",
        "website",
    }
)  # fmt: skip

# What current SDKs (botocore among them) sign: the documented ones and the newer sub-resources.
SIGNED_SUBRESOURCES = DOCUMENTED_SUBRESOURCES | frozenset(
    {
        "accelerate", "analytics", "cors", "defaultObjectAcl", "inventory", "metrics", "object-lock",
        "replication", "restore", "select", "select-type", "storageClass", "tagging",
    }
)  # fmt: skip

_Q_ACCESS_KEY = "AWSAccessKeyId"
_Q_SIGNATURE = "Signature"
_Q_EXPIRES = "Expires"

_SKEW = timedelta(seconds=MAX_CLOCK_SKEW_SECONDS)


@dataclass(frozen=True, slots=True)
class V2Claims:
    """What a SigV2 request claims, before verification."""

    access_key: str
    signature: str
    presigned: bool
    when: datetime
    """Header form: the request time. Presigned: the expiry time."""
    date_slot: str
    """The Date line of the string to sign: the Date header ("" with x-amz-date), or Expires."""
    date_text: str
    """The timestamp as the client sent it (for error documents)."""
    expires: int | None = None


# --------------------------------------------------------------------------------------------
# Parsing


def _query_pairs(raw_query: str) -> list[tuple[str, str | None]]:
    """(name, decoded value or None when the parameter has no '=') in wire order."""
    pairs: list[tuple[str, str | None]] = []
    for part in raw_query.split("&") if raw_query else ():
        if not part:
            continue
        name, eq, value = part.partition("=")
        decoded_name = unquote_to_bytes(name.replace("+", " ")).decode("utf-8", "replace")
        if not eq:
            pairs.append((decoded_name, None))
            continue
        pairs.append((decoded_name, unquote_to_bytes(value.replace("+", " ")).decode("utf-8", "replace")))
    return pairs


def _first(pairs: list[tuple[str, str | None]], name: str) -> str | None:
    for key, value in pairs:
        if key == name:
            return value if value is not None else ""
    return None


def parse_http_or_amz_date(value: str) -> datetime | None:
    """An RFC 1123 date (``Tue, 27 Mar 2007 19:36:42 +0000``) or ISO basic (``20070327T193642Z``)."""
    value = value.strip()
    when = parse_amz_date(value)
    if when is not None:
        return when
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _invalid_header(header: str) -> S3Error:
    return S3Error(
        "InvalidArgument",
        "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
        extra={"ArgumentName": "Authorization", "ArgumentValue": header},
    )


def parse_header(req: SignedRequest) -> V2Claims:
    """Claims of ``Authorization: AWS AKID:signature``."""
    header = req.headers["authorization"]
    scheme, _, credential = header.strip().partition(" ")
    access_key, colon, signature = credential.strip().rpartition(":")
    if scheme != "AWS" or not colon or not access_key or not signature:
        raise _invalid_header(header)
    amz_date = req.headers.get("x-amz-date")
    if amz_date is not None:
        date_text, date_slot = amz_date.strip(), ""
    else:
        date_text = req.headers.get("date", "").strip()
        date_slot = date_text
    when = parse_http_or_amz_date(date_text) if date_text else None
    if when is None:
        raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    return V2Claims(
        access_key=access_key.strip(),
        signature=signature.strip(),
        presigned=False,
        when=when,
        date_slot=date_slot,
        date_text=date_text,
    )


def parse_query(req: SignedRequest) -> V2Claims:
    """Claims of ``?AWSAccessKeyId=..&Expires=..&Signature=..``."""
    pairs = _query_pairs(req.raw_query)
    access_key = _first(pairs, _Q_ACCESS_KEY)
    signature = _first(pairs, _Q_SIGNATURE)
    expires_text = _first(pairs, _Q_EXPIRES)
    if not access_key or not signature or expires_text is None:
        raise S3Error(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        )
    expires_text = expires_text.strip()
    if not expires_text.isdigit() or len(expires_text) > 12:
        raise S3Error("AccessDenied", f"Invalid date (should be seconds since epoch): {expires_text}")
    expires = int(expires_text)
    return V2Claims(
        access_key=access_key,
        # A signature never holds a space: one here was a '+' the client did not encode.
        signature=signature.replace(" ", "+"),
        presigned=True,
        when=datetime.fromtimestamp(expires, UTC),
        date_slot=expires_text,
        date_text=expires_text,
        expires=expires,
    )


# --------------------------------------------------------------------------------------------
# Canonicalisation


def canonical_amz_headers(headers: Mapping[str, str], extra: Mapping[str, str] | None = None) -> str:
    """``name:value\\n`` for every x-amz-* header (lower-case names, sorted); ``extra`` (x-amz-*
    query parameters of a presigned URL) fills in names the headers lack."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        lname = name.lower()
        if lname.startswith("x-amz-"):
            found[lname] = value.strip()
    for name, value in (extra or {}).items():
        lname = name.lower()
        if lname.startswith("x-amz-") and lname not in found:
            found[lname] = value.strip()
    return "".join(f"{name}:{found[name]}\n" for name in sorted(found))


def canonical_resource(
    path: str,
    raw_query: str,
    *,
    bucket_in_host: str | None = None,
    subresources: frozenset[str] = SIGNED_SUBRESOURCES,
) -> str:
    """``[/bucket]`` + path as sent + the signed sub-resources of the query, sorted by name."""
    resource = f"/{bucket_in_host}{path or '/'}" if bucket_in_host else (path or "/")
    signed = [(name, value) for name, value in _query_pairs(raw_query) if name in subresources]
    if not signed:
        return resource
    signed.sort(key=lambda pair: pair[0])
    return resource + "?" + "&".join(name if value is None else f"{name}={value}" for name, value in signed)


def string_to_sign(
    method: str, content_md5: str, content_type: str, date: str, amz_headers: str, resource: str
) -> str:
    return f"{method.upper()}\n{content_md5.strip()}\n{content_type.strip()}\n{date}\n{amz_headers}{resource}"


def sign(secret_key: str, text: str) -> str:
    """base64(HMAC-SHA1(secret, text))."""
    return base64.b64encode(hmac.digest(secret_key.encode("utf-8"), text.encode("utf-8"), "sha1")).decode()


def strings_to_sign(req: SignedRequest, claims: V2Claims, *, bucket_in_host: str | None = None) -> list[str]:
    """The string to sign, first as S3 documents it, then the variants other clients produce."""
    pairs = _query_pairs(req.raw_query) if claims.presigned else []
    query_values = {name.lower(): value or "" for name, value in pairs}
    md5 = req.headers.get("content-md5", query_values.get("content-md5", ""))
    ctype = req.headers.get("content-type", query_values.get("content-type", ""))
    amz = canonical_amz_headers(req.headers, query_values if claims.presigned else None)
    paths = [req.raw_path or "/"]
    if (reencoded := canonical_uri(req.raw_path)) not in paths:
        paths.append(reencoded)
    if bucket_in_host is None and "/" not in paths[0][1:]:
        paths.append(paths[0] + "/")  # a bucket's resource is "/bucket/" (botocore signs it so)
    dates = [claims.date_slot]
    if not claims.presigned and claims.date_slot == "" and "date" in req.headers:
        dates.append(req.headers["date"].strip())  # signed Date although x-amz-date is present
    candidates: list[str] = []
    for subresources in (SIGNED_SUBRESOURCES, DOCUMENTED_SUBRESOURCES):
        for path in paths:
            resource = canonical_resource(
                path, req.raw_query, bucket_in_host=bucket_in_host, subresources=subresources
            )
            for date in dates:
                text = string_to_sign(req.method, md5, ctype, date, amz, resource)
                if text not in candidates:
                    candidates.append(text)
    return candidates


# --------------------------------------------------------------------------------------------
# Verification


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_time(claims: V2Claims, now: datetime) -> None:
    if claims.presigned:
        if now > claims.when:
            raise S3Error(
                "AccessDenied",
                "Request has expired",
                extra={"Expires": _iso(claims.when), "ServerTime": _iso(now)},
            )
        return
    if abs(now - claims.when) > _SKEW:
        raise S3Error(
            "RequestTimeTooSkewed",
            extra={
                "RequestTime": claims.date_text,
                "ServerTime": _iso(now),
                "MaxAllowedSkewMilliseconds": str(MAX_CLOCK_SKEW_SECONDS * 1000),
            },
        )


def _spaced_hex(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode("utf-8"))


def verify(
    req: SignedRequest,
    claims: V2Claims,
    secret_key: str,
    *,
    now: datetime,
    bucket_in_host: str | None = None,
) -> None:
    """Raise :class:`S3Error` unless the request is fresh (or not expired) and correctly signed."""
    _check_time(claims, now)
    candidates = strings_to_sign(req, claims, bucket_in_host=bucket_in_host)
    provided = claims.signature.encode("utf-8")
    for text in candidates:
        if hmac.compare_digest(sign(secret_key, text).encode("utf-8"), provided):
            return
    text = candidates[0]
    raise S3Error(
        "SignatureDoesNotMatch",
        extra={
            "AWSAccessKeyId": claims.access_key,
            "StringToSign": text,
            "SignatureProvided": claims.signature,
            "StringToSignBytes": _spaced_hex(text),
        },
    )
