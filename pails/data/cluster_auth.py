"""Signing and checking the requests between gateways and storage nodes (pure: no I/O).

Every request carries three headers:

    x-pails-date           unix time in whole seconds
    x-pails-nonce          32 hex digits, fresh for each request
    authorization          PAILS-HMAC-SHA256 <64 hex digits>

The signature is HMAC-SHA256, keyed by the cluster secret, of the string

    PAILS-NODE-1 \\n METHOD \\n PATH?QUERY \\n DATE \\n NONCE \\n CONTENT-LENGTH \\n BODY-DIGEST

where PATH?QUERY is the request target exactly as sent, CONTENT-LENGTH is the header's value ("0"
when absent) and BODY-DIGEST the `x-pails-crc32c` header of a chunk PUT (the node checks the body
against it) or the `x-pails-content-sha256` header of a small body (the node checks it too), else
empty. See docs/decisions/0015-storage-node-protocol.md.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

SCHEME = "PAILS-HMAC-SHA256"
VERSION = "PAILS-NODE-1"
DATE_HEADER = "x-pails-date"
NONCE_HEADER = "x-pails-nonce"
CRC_HEADER = "x-pails-crc32c"
SHA256_HEADER = "x-pails-content-sha256"
AUTH_HEADER = "authorization"
MAX_SKEW_SECONDS = 300
SECRET_ENV = "PAILS_CLUSTER_SECRET"


class AuthError(Exception):
    """A request that is not signed by a holder of the cluster secret (or is stale or replayed)."""


def secret_from_env(environ: Mapping[str, str] | None = None) -> bytes:
    """The cluster secret from PAILS_CLUSTER_SECRET; AuthError if it is unset or empty."""
    value = (os.environ if environ is None else environ).get(SECRET_ENV, "")
    if not value:
        raise AuthError(
            f"{SECRET_ENV} is not set: every gateway and storage node of a cluster needs the same secret"
        )
    return value.encode("utf-8")


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(
    method: str, target: str, date: str, nonce: str, content_length: str, body_digest: str
) -> bytes:
    # no content-length and "0" sign alike: HTTP clients add "0" to an empty POST on their own
    length = content_length.strip() or "0"
    return "\n".join((VERSION, method.upper(), target, date, nonce, length, body_digest)).encode()


def signature(secret: bytes, message: bytes) -> str:
    return hmac.digest(secret, message, "sha256").hex()


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _body_digest(headers: Mapping[str, str]) -> str:
    return headers.get(CRC_HEADER, "") or headers.get(SHA256_HEADER, "")


def sign_headers(
    secret: bytes,
    method: str,
    target: str,
    headers: Mapping[str, str] | None = None,
    *,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers to send: `headers` (content-length, x-pails-crc32c or x-pails-content-sha256 when
    there is a body) plus date, nonce and authorization. `target` is path?query as sent."""
    out = dict(headers or {})
    low = _lower(out)
    date = str(int(time.time() if now is None else now))
    nonce = nonce or os.urandom(16).hex()
    message = string_to_sign(method, target, date, nonce, low.get("content-length", ""), _body_digest(low))
    out[DATE_HEADER] = date
    out[NONCE_HEADER] = nonce
    out[AUTH_HEADER] = f"{SCHEME} {signature(secret, message)}"
    return out


@dataclass
class ReplayGuard:
    """Nonces seen within the accepted clock window; a request whose nonce was seen is refused.

    Bounded: past `max_entries` the oldest nonces are forgotten (a replay of those becomes possible,
    which the protocol tolerates: every node operation is idempotent on random chunk ids)."""

    window: float = 2 * MAX_SKEW_SECONDS
    max_entries: int = 1_000_000
    _seen: dict[str, float] = field(default_factory=dict)

    def check_and_add(self, nonce: str, now: float) -> bool:
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] > now - self.window and len(seen) < self.max_entries:
                break
            del seen[oldest]
        if nonce in seen:
            return False
        seen[nonce] = now
        return True


def verify_request(
    secret: bytes,
    method: str,
    target: str,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    replay: ReplayGuard | None = None,
) -> None:
    """Raise AuthError unless the request is signed with `secret`, dated within MAX_SKEW_SECONDS
    and (with a ReplayGuard) its nonce is new. `headers` as received (any case)."""
    low = _lower(headers)
    auth = low.get(AUTH_HEADER, "")
    scheme, _, given = auth.partition(" ")
    if scheme != SCHEME or not given:
        raise AuthError("missing or malformed authorization")
    date = low.get(DATE_HEADER, "")
    nonce = low.get(NONCE_HEADER, "")
    if not date.isdigit() or not (16 <= len(nonce) <= 64):
        raise AuthError("missing or malformed date or nonce")
    t = time.time() if now is None else now
    if abs(t - int(date)) > MAX_SKEW_SECONDS:
        raise AuthError("request date outside the accepted clock skew")
    message = string_to_sign(method, target, date, nonce, low.get("content-length", ""), _body_digest(low))
    if not hmac.compare_digest(signature(secret, message), given.strip()):
        raise AuthError("signature does not match")
    if replay is not None and not replay.check_and_add(nonce, t):
        raise AuthError("replayed request")
