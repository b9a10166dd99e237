"""Helpers for the end-to-end S3 suite: a hand-rolled SigV4 signer, raw HTTP requests, XML error parsing.

The signer is written here (not taken from botocore) so that tests can control every input: the
timestamp, the payload hash, the host header, chunk signatures and trailers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import socket
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def uri_encode(text: str, *, keep_slash: bool) -> str:
    """AWS URI encoding: everything but unreserved characters is percent-encoded (UTF-8)."""
    return quote(text, safe="-_.~/" if keep_slash else "-_.~")


def amz_now(offset_seconds: float = 0.0) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_seconds)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


@dataclass
class Creds:
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    service: str = "s3"


@dataclass
class Signature:
    headers: dict[str, str]
    signature: str
    amz_date: str
    scope: str
    key: bytes


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    pairs = sorted((uri_encode(k, keep_slash=False), uri_encode(v, keep_slash=False)) for k, v in query)
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign(
    method: str,
    encoded_path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    creds: Creds,
    payload_hash: str,
    amz_date: str | None = None,
) -> Signature:
    """Sign a request with SigV4 in the Authorization header. `headers` must contain Host.

    Returns the full header set to send (input headers + x-amz-date, x-amz-content-sha256, Authorization).
    """
    amz_date = amz_date or amz_now()
    out = dict(headers)
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    lowered: dict[str, str] = {}
    for name, value in out.items():
        lowered[name.lower().strip()] = " ".join(str(value).strip().split())
    signed_names = sorted(lowered)
    canonical_headers = "".join(f"{n}:{lowered[n]}\n" for n in signed_names)
    signed_headers = ";".join(signed_names)
    canonical_request = "\n".join(
        [method, encoded_path, canonical_query(query), canonical_headers, signed_headers, payload_hash]
    )
    date = amz_date[:8]
    scope = f"{date}/{creds.region}/{creds.service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    key = signing_key(creds.secret_key, date, creds.region, creds.service)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signature(out, signature, amz_date, scope, key)


def chunk_signature(sig: Signature, previous: str, chunk: bytes) -> str:
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256-PAYLOAD",
            sig.amz_date,
            sig.scope,
            previous,
            EMPTY_SHA256,
            hashlib.sha256(chunk).hexdigest(),
        ]
    )
    return hmac.new(sig.key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_chunked_body(sig: Signature, data: bytes, chunk_size: int = 64 * 1024) -> bytes:
    """aws-chunked body for STREAMING-AWS4-HMAC-SHA256-PAYLOAD, seeded by the header signature."""
    parts: list[bytes] = []
    previous = sig.signature
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for chunk in chunks:
        signature = chunk_signature(sig, previous, chunk)
        parts.append(f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n")
        previous = signature
    return b"".join(parts)


def signed_chunked_length(data_len: int, chunk_size: int = 64 * 1024) -> int:
    sizes = [chunk_size] * (data_len // chunk_size)
    if data_len % chunk_size:
        sizes.append(data_len % chunk_size)
    sizes.append(0)
    return sum(len(f"{s:x}") + len(";chunk-signature=") + 64 + 2 + s + 2 for s in sizes)


def crc32_b64(data: bytes) -> str:
    return base64.b64encode((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def trailer_chunked_body(
    data: bytes, trailer_name: str, trailer_value: str, chunk_size: int = 64 * 1024
) -> bytes:
    """aws-chunked body for STREAMING-UNSIGNED-PAYLOAD-TRAILER with one checksum trailer."""
    parts: list[bytes] = []
    for i in range(0, len(data), chunk_size):
        chunk = data[i : i + chunk_size]
        parts.append(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    parts.append(f"0\r\n{trailer_name}:{trailer_value}\r\n\r\n".encode())
    return b"".join(parts)


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@dataclass
class Response:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes
    elapsed: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def error(self) -> dict[str, str]:
        return parse_error(self.body)

    def describe(self) -> str:
        return f"HTTP {self.status} {self.reason} headers={dict(self.headers)} body={self.body[:600]!r}"


def parse_error(body: bytes) -> dict[str, str]:
    """Parse an S3 <Error> document into a dict of its child elements (namespace stripped)."""
    root = ET.fromstring(body)
    tag = root.tag.split("}")[-1]
    assert tag == "Error", f"root element is {root.tag!r}, expected Error: {body[:400]!r}"
    return {child.tag.split("}")[-1]: (child.text or "") for child in root}


def xml_root(body: bytes) -> ET.Element:
    return ET.fromstring(body)


def strip_ns(elem: ET.Element) -> ET.Element:
    for e in elem.iter():
        if isinstance(e.tag, str) and "}" in e.tag:
            e.tag = e.tag.split("}", 1)[1]
    return elem


class Raw:
    """Sends hand-built (optionally SigV4-signed) requests to a server on host:port."""

    def __init__(self, host: str, port: int, creds: Creds, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.creds = creds
        self.timeout = timeout

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | Iterable[bytes] = b"",
        sign_payload: str | None = None,
        anonymous: bool = False,
        creds: Creds | None = None,
        amz_date: str | None = None,
        host_header: str | None = None,
        set_content_length: bool = True,
    ) -> Response:
        """`path` is the decoded path ("/bucket/key with space"); it is URI-encoded for the wire.

        sign_payload: None -> sha256 hex of bytes body; a string is used as x-amz-content-sha256 verbatim.
        """
        query = query or []
        encoded_path = uri_encode(path, keep_slash=True)
        target = encoded_path + (("?" + canonical_query(query)) if query else "")
        hdrs = {"Host": host_header or self.netloc}
        hdrs.update(headers or {})
        if set_content_length and isinstance(body, bytes | bytearray) and (body or method in ("PUT", "POST")):
            hdrs.setdefault("Content-Length", str(len(body)))
        if not anonymous:
            if sign_payload is None:
                assert isinstance(body, bytes | bytearray), "pass sign_payload for streamed bodies"
                sign_payload = hashlib.sha256(body).hexdigest()
            hdrs = sign(
                method, encoded_path, query, hdrs, creds or self.creds, sign_payload, amz_date
            ).headers
        return self.send(method, target, hdrs, body)

    def send(
        self, method: str, target: str, headers: dict[str, str], body: bytes | Iterable[bytes] = b""
    ) -> Response:
        start = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            if isinstance(body, bytes | bytearray):
                if body:
                    conn.send(body)
            else:
                for piece in body:
                    conn.send(piece)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.reason, resp.headers, data, time.monotonic() - start)
        finally:
            conn.close()


class HTTPReader:
    """Minimal buffered HTTP/1.1 response reader for raw-socket tests."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        try:
            piece = self.sock.recv(65536)
        except TimeoutError:
            return False
        if not piece:
            return False
        self.buf += piece
        return True

    def read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"connection closed before a response head: {self.buf[:200]!r}")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers

    def read_body(self, status: int, headers: dict[str, str], method: str = "GET") -> bytes:
        if method == "HEAD" or status in (100, 204, 304):
            return b""
        if "content-length" in headers:
            need = int(headers["content-length"])
            while len(self.buf) < need and self._fill():
                pass
            body, self.buf = self.buf[:need], self.buf[need:]
            return body
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while not self.buf.endswith(b"0\r\n\r\n") and self._fill():
                pass
            body, self.buf = _dechunk(self.buf), b""
            return body
        while self._fill():
            pass
        body, self.buf = self.buf, b""
        return body

    def read_final(self, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """Read a final (non-1xx) response, skipping interim 1xx responses."""
        while True:
            status, headers = self.read_head()
            if status >= 200:
                return status, headers, self.read_body(status, headers, method)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def pattern_stream(total: int, block: int = 1024 * 1024, seed: bytes = b"pails") -> Iterator[bytes]:
    """Deterministic, non-repeating-per-block data generator (not held in memory)."""
    base = hashlib.sha256(seed).digest() * (block // 32 + 1)
    base = base[:block]
    sent = 0
    index = 0
    while sent < total:
        n = min(block, total - sent)
        stamp = index.to_bytes(8, "big") + seed[:8].ljust(8, b"\0")
        chunk = (stamp + base[len(stamp) :])[:n]
        yield chunk
        sent += n
        index += 1
