"""Responses a handler returns: whole (Response) or streamed by the handler (StreamResponse)."""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pails.api.http.request import Request

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_NO_BODY_STATUSES = frozenset({204, 304})
_status_lines: dict[int, bytes] = {}
_date_second = 0
_date_header = b""


def status_line(status: int) -> bytes:
    line = _status_lines.get(status)
    if line is None:
        line = _status_lines[status] = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n".encode()
    return line


def date_and_server() -> bytes:
    """The Date and Server header lines, formatted once per second."""
    global _date_second, _date_header
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_header = f"Date: {formatdate(now, usegmt=True)}\r\nServer: Pails\r\n".encode()
    return _date_header


class HeaderInjection(ValueError):
    """A header name or value holds CR or LF: sending it would split the response."""


def head_bytes(status: int, headers: dict[str, str]) -> bytes:
    """Status line, Date and Server, the headers and the blank line that ends them."""
    block = "\r\n".join(map(": ".join, headers.items()))
    # Lines are joined by exactly one CR LF: any other CR or LF came from a name or a value.
    if block.count("\n") != len(headers) - 1 or block.count("\r") != len(headers) - 1:
        raise HeaderInjection("a response header holds CR or LF")
    return status_line(status) + date_and_server() + block.encode() + b"\r\n\r\n"


class StreamResponse:
    """A response whose body the handler writes itself: prepare(), write()..., write_eof()."""

    def __init__(self, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers: dict[str, str] = {} if headers is None else headers
        """The response's own dict (a dict passed in is used, not copied)."""
        self.content_length: int | None = None
        self.keep_alive = True
        self._request: Request | None = None
        self._chunked = False
        self._finished = False

    @property
    def prepared(self) -> bool:
        return self._request is not None

    def force_close(self) -> None:
        """Close the connection after this response."""
        self.keep_alive = False

    async def prepare(self, request: Request) -> None:
        if self._request is not None:
            return
        self._request = request
        head_only = request.method == "HEAD" or self.status in _NO_BODY_STATUSES
        if self.content_length is not None:
            self.headers["Content-Length"] = str(self.content_length)
        elif not head_only:
            self._chunked = True
            self.headers["Transfer-Encoding"] = "chunked"
        request.connection.write(self.head(self.keep_alive))

    def head(self, keep_alive: bool) -> bytes:
        """Status line and headers as sent (with Connection: close when the connection ends)."""
        if not keep_alive:
            self.headers["Connection"] = "close"
        return head_bytes(self.status, self.headers)

    async def write(self, data: bytes) -> None:
        assert self._request is not None, "prepare() first"
        if not data:
            return
        connection = self._request.connection
        if self._chunked:
            connection.write(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            connection.write(data)
        await connection.drain()

    async def write_eof(self) -> None:
        assert self._request is not None, "prepare() first"
        if self._finished:
            return
        self._finished = True
        if self._chunked:
            self._request.connection.write(b"0\r\n\r\n")
        await self._request.connection.drain()


class Response(StreamResponse):
    """A response with its whole body (or none) in memory; the server sends it."""

    def __init__(
        self,
        *,
        status: int = 200,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        # StreamResponse's fields, set here directly: one call less on every request.
        self.status = status
        self.headers = {} if headers is None else headers
        self.content_length = None
        self.keep_alive = True
        self._request = None
        self._chunked = False
        self._finished = False
        self.body = body or b""
        if content_type is not None:
            self.headers["Content-Type"] = content_type

    def serialize(self, head_only: bool, keep_alive: bool) -> bytes:
        """The whole response as sent: status line, headers, body."""
        headers = self.headers
        if self.status not in _NO_BODY_STATUSES and "Content-Length" not in headers:
            headers["Content-Length"] = str(len(self.body))
        if not keep_alive:
            headers["Connection"] = "close"
        head = head_bytes(self.status, headers)
        if head_only or not self.body or self.status in _NO_BODY_STATUSES:
            return head
        return head + self.body


def json_response(data: Any, *, status: int = 200) -> Response:
    return Response(status=status, body=json.dumps(data).encode(), content_type="application/json")
