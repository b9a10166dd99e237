"""The body of one HTTP request as an async byte stream, filled by the connection as it arrives.

Flow control: when more than `limit` bytes wait unread, the connection stops reading the socket
(TCP then pushes back on the client); it reads again once the handler has drained the buffer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol

DEFAULT_LIMIT = 1 << 20


class FlowControl(Protocol):
    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class BodyStream:
    """read/readany/readexactly/readline/iter_any/iter_chunked, and the at_eof/unread_data pair
    that multipart readers use."""

    __slots__ = (
        "_buffer",
        "_discarding",
        "_eof",
        "_exception",
        "_flow",
        "_limit",
        "_paused",
        "_size",
        "_waiter",
        "before_first_wait",
        "received",
    )

    def __init__(self, flow: FlowControl | None, limit: int = DEFAULT_LIMIT) -> None:
        self._flow = flow
        self._limit = limit
        self._buffer: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._exception: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._discarding = False
        self.received = 0
        """Bytes of body received so far (discarded ones included)."""
        self.before_first_wait: Callable[[], None] | None = None
        """Called once, when a reader first waits for data (sends "100 Continue" when expected)."""

    # the connection's side

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self._discarding:
            return
        self._buffer.append(data)
        self._size += len(data)
        self._wake()
        if self._size > self._limit and not self._paused and self._flow is not None:
            self._paused = True
            self._flow.pause_reading()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()
        self._resume()

    def set_exception(self, exc: BaseException) -> None:
        if self._eof:
            return
        self._exception = exc
        self._wake()

    def discard(self) -> None:
        """Drop what is buffered and whatever arrives later (the handler answered without reading
        the whole body, and the connection must still get past it)."""
        self._discarding = True
        self._buffer.clear()
        self._size = 0
        self._resume()

    @property
    def complete(self) -> bool:
        return self._eof

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _resume(self) -> None:
        if self._paused and self._flow is not None:
            self._paused = False
            self._flow.resume_reading()

    async def _wait(self) -> None:
        if self._exception is not None:
            raise self._exception
        if self.before_first_wait is not None:
            hook, self.before_first_wait = self.before_first_wait, None
            hook()
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None
        if self._exception is not None:
            raise self._exception

    def _take(self, n: int) -> bytes:
        """Up to n bytes (n < 0: everything) from the buffer, which is not empty."""
        first = self._buffer[0]
        if n < 0 or n >= self._size:
            data = first if len(self._buffer) == 1 else b"".join(self._buffer)
            self._buffer.clear()
        elif len(first) <= n:
            self._buffer.popleft()
            data = first
        else:
            data = first[:n]
            self._buffer[0] = first[n:]
        self._size -= len(data)
        if self._size < self._limit // 2:
            self._resume()
        return data

    # the handler's side

    def at_eof(self) -> bool:
        return self._eof and not self._buffer

    def unread_data(self, data: bytes) -> None:
        if data:
            self._buffer.appendleft(data)
            self._size += len(data)

    async def readany(self) -> bytes:
        """What is buffered (waiting for something if nothing is); b"" at the end."""
        while not self._buffer:
            if self._eof:
                return b""
            await self._wait()
        return self._take(-1)

    async def read(self, n: int = -1) -> bytes:
        """n < 0: the whole rest of the body; otherwise at most n bytes (b"" at the end)."""
        if n < 0:
            parts: list[bytes] = []
            while True:
                piece = await self.readany()
                if not piece:
                    return b"".join(parts)
                parts.append(piece)
        if n == 0:
            return b""
        while not self._buffer:
            if self._eof:
                return b""
            await self._wait()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        parts: list[bytes] = []
        missing = n
        while missing > 0:
            piece = await self.read(missing)
            if not piece:
                got = b"".join(parts)
                raise asyncio.IncompleteReadError(got, n)
            parts.append(piece)
            missing -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        """Up to and including the next b"\\n" (or the rest of the body at its end)."""
        line = bytearray()
        while True:
            while not self._buffer:
                if self._eof:
                    return bytes(line)
                await self._wait()
            first = self._buffer[0]
            end = first.find(b"\n")
            take = len(first) if end < 0 else end + 1
            line += self._take(take)
            if max_line_length is not None and len(line) > max_line_length:
                raise ValueError("Line is too long")
            if end >= 0:
                return bytes(line)

    async def iter_any(self) -> AsyncIterator[bytes]:
        while piece := await self.readany():
            yield piece

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        while piece := await self.read(n):
            yield piece


def empty_body() -> BodyStream:
    body = BodyStream(None)
    body.feed_eof()
    return body
