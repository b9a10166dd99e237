"""One parsed HTTP request as handlers see it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import MultipartReader

from pails.api.http.body import BodyStream

if TYPE_CHECKING:
    from pails.api.http.protocol import HttpConnection


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive view of the headers by lowercased name (iteration gives the
    lowercased names)."""

    __slots__ = ("_lower",)

    def __init__(self, lower: dict[str, str]) -> None:
        self._lower = lower

    def __getitem__(self, name: str) -> str:
        return self._lower[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._lower.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def __iter__(self) -> Iterator[str]:
        return iter(self._lower)

    def __len__(self) -> int:
        return len(self._lower)

    def __repr__(self) -> str:
        return f"<Headers {self._lower!r}>"


class Request:
    __slots__ = (
        "_headers",
        "connection",
        "content",
        "continue_sent",
        "keep_alive",
        "lower_headers",
        "method",
        "raw_path",
    )

    def __init__(
        self,
        connection: HttpConnection,
        method: str,
        raw_path: str,
        lower_headers: dict[str, str],
        content: BodyStream,
        keep_alive: bool,
    ) -> None:
        self.connection = connection
        self.method = method
        self.raw_path = raw_path
        """The request target as sent: path and query, still percent-encoded."""
        self.lower_headers = lower_headers
        """The headers by lowercased name; a repeated header's values joined with ","."""
        self.content = content
        self.keep_alive = keep_alive
        self.continue_sent = False
        self._headers: Headers | None = None

    @property
    def headers(self) -> Headers:
        """Case-insensitive; a repeated header's values joined with "," (RFC 9110 5.3)."""
        if self._headers is None:
            self._headers = Headers(self.lower_headers)
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

    @property
    def awaits_continue(self) -> bool:
        """The client sent `Expect: 100-continue` and was not told to continue yet."""
        return not self.continue_sent and "expect" in self.lower_headers

    def send_continue(self) -> None:
        """Answer `Expect: 100-continue`: the client may now send the body."""
        if not self.continue_sent:
            self.continue_sent = True
            self.connection.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def multipart(self) -> MultipartReader:
        return MultipartReader(self.headers, self.content)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path}>"
