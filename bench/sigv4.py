"""Minimal AWS Signature Version 4 signer for path-style S3 requests.

Only what the load generator needs: header-based auth, three signed headers
(host, x-amz-content-sha256, x-amz-date).  The signing key is derived once per
UTC day and the ``x-amz-date`` string once per second, so each request costs one
SHA-256 over the canonical request plus one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def encode_path(path: str) -> str:
    """URI-encode an S3 path the way SigV4 expects (every byte but unreserved and '/')."""
    return quote(path, safe="/-_.~")


def encode_query(params: dict[str, str]) -> str:
    """Canonical (sorted, fully encoded) query string; also usable verbatim in the URL."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))


class Signer:
    """Signs requests for one host/credential pair; cheap to call per request."""

    def __init__(self, access_key: str, secret_key: str, region: str, host: str) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.host = host
        self._day = ""
        self._key = b""
        self._scope = ""
        self._second = -1
        self._amz_date = ""

    def _refresh(self) -> None:
        now = int(time.time())
        if now == self._second:
            return
        self._second = now
        self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        day = self._amz_date[:8]
        if day != self._day:
            self._day = day
            k = _hmac(("AWS4" + self.secret_key).encode(), day)
            k = _hmac(k, self.region)
            k = _hmac(k, "s3")
            self._key = _hmac(k, "aws4_request")
            self._scope = f"{day}/{self.region}/s3/aws4_request"

    def headers(
        self, method: str, path: str, query: str = "", payload_hash: str = UNSIGNED_PAYLOAD
    ) -> dict[str, str]:
        """Return the auth headers for a request.

        ``path`` must already be encoded (see :func:`encode_path`) and ``query`` must be
        canonical (see :func:`encode_query`); the caller uses both verbatim in the URL.
        """
        self._refresh()
        amz_date = self._amz_date
        canonical = (
            f"{method}\n{path}\n{query}\n"
            f"host:{self.host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n\n"
            f"{_SIGNED_HEADERS}\n{payload_hash}"
        )
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{self._scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            "Host": self.host,
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload_hash,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={self.access_key}/{self._scope}, "
                f"SignedHeaders={_SIGNED_HEADERS}, Signature={signature}"
            ),
        }
