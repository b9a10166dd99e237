"""A deliberately tiny HTTP/1.1 keep-alive client on asyncio protocols (uvloop underneath).

Used for the small-object, fill and LIST phases, where a general-purpose client costs far
more CPU per request than the server under test would (aiohttp: ~90 us/request here; this:
a few tens).  It handles Content-Length and chunked bodies and ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from html import unescape
from typing import cast

from yarl import URL

from bench.client import Target
from bench.sigv4 import EMPTY_SHA256, Signer, encode_path, encode_query

_KEY_RE = re.compile(r"<Key>(.*?)</Key>", re.S)
_TOKEN_RE = re.compile(r"<NextContinuationToken>(.*?)</NextContinuationToken>", re.S)
_TRUNC_RE = re.compile(r"<IsTruncated>\s*true\s*</IsTruncated>", re.I)


class OpFailed(Exception):
    """The server answered, but not with what a correct S3 server returns."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.fut: asyncio.Future[Response] | None = None
        self.closed = False
        self.reusable = True
        self._reset(False)

    def _reset(self, head: bool) -> None:
        self.head = head
        self.hdr_end = -1
        self.status = 0
        self.length = -1
        self.chunked = False
        self.headers: dict[str, str] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.fut is not None and not self.fut.done():
            if self.hdr_end >= 0 and self.length < 0 and not self.chunked:
                self._complete(bytes(self.buf[self.hdr_end :]), 0)
            else:
                self.fut.set_exception(ConnectionError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.fut is not None and not self.fut.done():
            self._parse()

    def _complete(self, body: bytes, consumed: int) -> None:
        del self.buf[:consumed]
        assert self.fut is not None
        self.fut.set_result(Response(self.status, self.headers, body))

    def _parse(self) -> None:
        buf = self.buf
        if self.hdr_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.hdr_end = end + 4
            lines = buf[:end].decode("latin-1").split("\r\n")
            self.status = int(lines[0].split(" ", 2)[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self.length = int(self.headers.get("content-length", "-1"))
            self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
            if self.headers.get("connection", "").lower() == "close":
                self.reusable = False
        start = self.hdr_end
        if self.head or self.status in (204, 304) or 100 <= self.status < 200:
            self._complete(b"", start)
        elif self.chunked:
            self._parse_chunked(start)
        elif self.length >= 0:
            if len(buf) - start >= self.length:
                self._complete(bytes(buf[start : start + self.length]), start + self.length)
        else:
            self.reusable = False  # body delimited by close

    def _parse_chunked(self, pos: int) -> None:
        body = bytearray()
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", eol)
                if trailer_end < 0:
                    return
                self._complete(bytes(body), trailer_end + 4)
                return
            if len(buf) < eol + 2 + size + 2:
                return
            body += buf[eol + 2 : eol + 2 + size]
            pos = eol + 2 + size + 2

    def on_timeout(self) -> None:
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(TimeoutError("request timed out"))
            self.reusable = False
            if self.transport is not None:
                self.transport.abort()

    async def send(self, data: bytes, head: bool, limit_s: float) -> Response:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._reset(head)
        self.fut = loop.create_future()
        self.transport.write(data)
        if self.buf:
            self._parse()
        timer = loop.call_later(limit_s, self.on_timeout)
        try:
            return await self.fut
        finally:
            timer.cancel()
            self.fut = None


class RawS3:
    """The S3 calls the small-object phases need, over a pool of raw keep-alive connections."""

    def __init__(self, target: Target) -> None:
        url = URL(target.endpoint)
        assert url.host is not None and url.port is not None
        self.host, self.port = url.host, url.port
        self.hostport = f"{url.host}:{url.port}"
        self.timeout = target.timeout
        self.bucket_path = "/" + encode_path(target.bucket)
        self.signer = Signer(target.access_key, target.secret_key, target.region, self.hostport)
        self.idle: list[_Conn] = []

    async def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()

    async def request(self, method: str, key: str | None, query: str = "", body: bytes = b"") -> Response:
        path = self.bucket_path if key is None else f"{self.bucket_path}/{encode_path(key)}"
        digest = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        h = self.signer.headers(method, path, query, digest)
        target = f"{path}?{query}" if query else path
        length = f"Content-Length: {len(body)}\r\n" if body or method in ("PUT", "POST") else ""
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.hostport}\r\nx-amz-date: {h['x-amz-date']}\r\n"
            f"x-amz-content-sha256: {digest}\r\nAuthorization: {h['Authorization']}\r\n{length}\r\n"
        ).encode()
        conn = self.idle.pop() if self.idle else None
        while conn is not None and conn.closed:
            conn = self.idle.pop() if self.idle else None
        if conn is None:
            _, conn = await asyncio.get_running_loop().create_connection(_Conn, self.host, self.port)
        resp = await conn.send(head + body, method == "HEAD", self.timeout)
        if conn.reusable and not conn.closed:
            self.idle.append(conn)
        elif conn.transport is not None:
            conn.transport.close()
        return resp

    async def create_bucket(self) -> int:
        return (await self.request("PUT", None)).status

    async def put(self, key: str, body: bytes) -> None:
        r = await self.request("PUT", key, body=body)
        if r.status != 200:
            raise OpFailed(f"PUT HTTP {r.status}")

    async def get(self, key: str) -> bytes:
        r = await self.request("GET", key)
        if r.status != 200:
            raise OpFailed(f"GET HTTP {r.status}")
        return r.body

    async def head(self, key: str) -> tuple[int, int]:
        r = await self.request("HEAD", key)
        return r.status, int(r.headers.get("content-length", "-1"))

    async def delete(self, key: str) -> None:
        r = await self.request("DELETE", key)
        if r.status not in (200, 204):
            raise OpFailed(f"DELETE HTTP {r.status}")

    async def list_page(
        self, prefix: str, token: str | None, max_keys: int = 1000
    ) -> tuple[list[str], str | None]:
        """One ListObjectsV2 page: (keys, next continuation token or None)."""
        params = {"list-type": "2", "max-keys": str(max_keys), "prefix": prefix}
        if token is not None:
            params["continuation-token"] = token
        r = await self.request("GET", None, encode_query(params))
        if r.status != 200:
            raise OpFailed(f"LIST HTTP {r.status}")
        text = r.body.decode()
        keys = [unescape(k) for k in _KEY_RE.findall(text)]
        if _TRUNC_RE.search(text):
            nxt = _TOKEN_RE.search(text)
            if nxt is None:
                raise OpFailed("truncated listing without continuation token")
            return keys, unescape(nxt.group(1))
        return keys, None
