"""One parsed HTTP request as handlers see it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import MultipartReader
from multidict import CIMultiDict, CIMultiDictProxy

from pails.api.http.body import BodyStream

if TYPE_CHECKING:
    from pails.api.http.protocol import HttpConnection


class Request:
    __slots__ = (
        "_headers",
        "connection",
        "content",
        "continue_sent",
        "keep_alive",
        "lower_headers",
        "method",
        "raw_headers",
        "raw_path",
        "version",
    )

    def __init__(
        self,
        connection: HttpConnection,
        method: str,
        raw_path: str,
        raw_headers: list[tuple[bytes, bytes]],
        lower_headers: dict[str, str],
        content: BodyStream,
        keep_alive: bool,
        version: str,
    ) -> None:
        self.connection = connection
        self.method = method
        self.raw_path = raw_path
        """The request target as sent: path and query, still percent-encoded."""
        self.raw_headers = raw_headers
        self.lower_headers = lower_headers
        """The headers by lowercased name; a repeated header's values joined with ","."""
        self.content = content
        self.keep_alive = keep_alive
        self.version = version
        self.continue_sent = False
        self._headers: CIMultiDictProxy[str] | None = None

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """Case-insensitive, repeated headers kept apart (built on first use)."""
        if self._headers is None:
            self._headers = CIMultiDictProxy(
                CIMultiDict(
                    [(n.decode("latin-1"), v.decode("utf-8", "surrogateescape")) for n, v in self.raw_headers]
                )
            )
        return self._headers

    @property
    def host(self) -> str:
        return self.lower_headers.get("host") or self.connection.local_address

    @property
    def remote(self) -> str | None:
        return self.connection.remote_address

    @property
    def secure(self) -> bool:
        return False

    @property
    def content_length(self) -> int | None:
        value = self.lower_headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    def send_continue(self) -> None:
        """Answer `Expect: 100-continue`: the client may now send the body."""
        if not self.continue_sent:
            self.continue_sent = True
            self.connection.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def multipart(self) -> MultipartReader:
        return MultipartReader(self.headers, self.content)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path}>"
