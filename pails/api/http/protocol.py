"""One HTTP/1.1 connection: httptools (llhttp) parses, Pails dispatches requests in order.

Requests on a connection are answered one after another (pipelined ones wait their turn). A
handler starts as soon as a request's head is parsed, so it can refuse a PUT before its body is
sent (Expect: 100-continue) and stream the body as it arrives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, cast

import httptools

from pails.api.http.body import BodyStream, empty_body
from pails.api.http.request import Request
from pails.api.http.response import Response, StreamResponse

log = logging.getLogger("pails.http")

Handler = Callable[[Request], Awaitable[StreamResponse]]
ErrorRenderer = Callable[[str], Response]
"""Builds the response to a request that could not be parsed; the argument is "header-too-large"
or "bad-request"."""


class ConnectionRegistry(Protocol):
    def add(self, connection: HttpConnection) -> None: ...

    def discard(self, connection: HttpConnection) -> None: ...


@dataclass(frozen=True, slots=True)
class Limits:
    head: int = 64 * 1024
    """Bytes of request line and headers."""
    body_buffer: int = 1 << 20
    """Unread body bytes buffered before the socket is no longer read."""
    idle_timeout: float = 75.0
    """Seconds a connection may stay idle between requests."""
    pipeline: int = 16
    """Requests parsed ahead of the one being answered."""
    discard: int = 16 << 20
    """Unread body bytes skipped to keep a connection alive after an early answer."""


class _Rejected(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind


class HttpConnection(asyncio.Protocol):
    def __init__(
        self,
        handler: Handler,
        render_error: ErrorRenderer,
        limits: Limits,
        connections: ConnectionRegistry,
    ) -> None:
        self._handler = handler
        self._render_error = render_error
        self._limits = limits
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self.remote_address: str | None = None
        self.local_address = ""
        # the request being parsed
        self._url = b""
        self._raw: list[tuple[bytes, bytes]] = []
        self._in_body = False
        self._head_wire = 0
        self._head_bound = 0
        """At least the bytes of the head being received that came before the data being parsed."""
        self._fed = 0
        """An upper bound of the size of a head that completes in the data being parsed."""
        self._completed = 0
        """Requests whose message (head and body) was parsed to the end."""
        self._body: BodyStream | None = None
        # requests parsed and waiting, and the task answering them
        self._pending: deque[Request] = deque()
        self._busy = False
        """A task is answering this connection's requests."""
        self._task: asyncio.Task[None] | None = None  # a strong reference while it runs
        self._reading_paused = False
        self._pipeline_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._last_activity = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.remote_address = str(peer[0])
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, tuple):
            host = str(sock[0])
            self.local_address = f"[{host}]:{sock[1]}" if ":" in host else f"{host}:{sock[1]}"
        self._last_activity = time.monotonic()
        self._idle_timer = self._loop.call_later(self._limits.idle_timeout, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        lost = ConnectionResetError("the client closed the connection")
        if self._body is not None:
            self._body.set_exception(lost)
        for request in self._pending:
            request.content.set_exception(lost)
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            self._drain_waiter = None
            waiter.set_exception(lost)

    def data_received(self, data: bytes) -> None:
        self._last_activity = time.monotonic()
        in_head = not self._in_body
        completed = self._completed
        self._fed = self._head_bound + len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._reject(cause.kind if isinstance(cause, _Rejected) else "bad-request")
            return
        except httptools.HttpParserUpgrade:
            return  # the request was parsed; what follows it is not HTTP: answered, then closed
        except httptools.HttpParserError:
            self._reject("bad-request")
            return
        if in_head and not self._in_body and completed == self._completed:
            # All of `data` went into a head that is still incomplete, which httptools buffers
            # (a request's own headers are counted exactly once it completes): bound it.
            self._head_wire += len(data)
            self._head_bound += len(data)
            if self._head_wire > 2 * self._limits.head:
                self._reject("header-too-large")
        else:
            self._head_wire = 0
            # A message ended in `data` (unless a body goes on): the next head may have begun in it.
            self._head_bound = 0 if self._in_body else len(data)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool:
        if self._body is not None:
            self._body.set_exception(ConnectionResetError("the client ended the request early"))
        return False

    # httptools callbacks

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((name, value))

    def on_headers_complete(self) -> None:
        raw, url = self._raw, self._url
        self._raw, self._url = [], b""
        if (
            self._fed > self._limits.head
            and len(url) + sum([len(n) + len(v) + 4 for n, v in raw]) > self._limits.head
        ):
            raise _Rejected("header-too-large")
        try:  # names are ASCII tokens (llhttp checks): the default decoder is the fastest
            lower = {n.lower().decode(): v.decode() for n, v in raw}
            target = url.decode()
        except UnicodeDecodeError:  # a value that is not UTF-8: kept byte for byte
            lower = {n.lower().decode("latin-1"): v.decode("utf-8", "surrogateescape") for n, v in raw}
            target = url.decode("utf-8", "surrogateescape")
        if len(lower) != len(raw):  # a repeated header: its values joined, in order
            lower = {}
            for n, v in raw:
                key, value = n.lower().decode("latin-1"), v.decode("utf-8", "surrogateescape")
                lower[key] = f"{lower[key]},{value}" if key in lower else value
        if "content-length" in lower or "transfer-encoding" in lower:
            body = self._body = BodyStream(self, self._limits.body_buffer)
            self._in_body = True
        else:
            body = _EMPTY
        parser = self._parser
        method = parser.get_method()
        request = Request(
            self,
            _METHODS.get(method) or method.decode("ascii", "replace"),
            target,
            lower,
            body,
            parser.should_keep_alive(),
        )
        if body is not _EMPTY and lower.get("expect", "").lower() == "100-continue":
            body.before_first_wait = request.send_continue  # a handler reading the body wants it
        if not self._busy:
            self._busy = True
            self._task = self._loop.create_task(self._answer(request))
        else:
            self._pending.append(request)
            if len(self._pending) >= self._limits.pipeline and not self._pipeline_paused:
                self._pipeline_paused = True
                self._pause_transport()

    def on_body(self, data: bytes) -> None:
        if self._body is not None:
            self._body.feed(data)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._completed += 1
        if self._body is not None:
            self._body.feed_eof()
            self._body = None

    # flow control (BodyStream calls these)

    def pause_reading(self) -> None:
        self._reading_paused = True
        self._pause_transport()

    def resume_reading(self) -> None:
        self._reading_paused = False
        if not self._pipeline_paused:
            self._resume_transport()

    def _pause_transport(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.pause_reading()

    def _resume_transport(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.resume_reading()

    # writing (responses call these)

    def write(self, data: bytes) -> None:
        if self._closed or self._transport is None:
            raise ConnectionResetError("the connection is closed")
        self._transport.write(data)

    async def drain(self) -> None:
        if self._closed:
            raise ConnectionResetError("the connection is closed")
        if not self._write_paused:
            return
        waiter = self._drain_waiter = self._loop.create_future()
        await waiter

    # answering

    async def _answer(self, request: Request) -> None:
        """Answer `request` and then the requests pipelined behind it, in order."""
        current: Request | None = request
        while current is not None:
            keep_alive = await self._answer_one(current)
            if not keep_alive or self._closed:
                self._close()
                return
            current = self._pending.popleft() if self._pending else None
            if self._pipeline_paused and len(self._pending) < self._limits.pipeline // 2:
                self._pipeline_paused = False
                if not self._reading_paused:
                    self._resume_transport()
        self._busy = False

    async def _answer_one(self, request: Request) -> bool:
        """Run the handler and send its response; whether the connection can carry on."""
        try:
            response = await self._handler(request)
        except ConnectionResetError:
            return False
        except Exception:
            log.exception("unhandled error answering %s %s", request.method, request.raw_path)
            response = self._render_error("internal-error")
            response.force_close()
        keep_alive = request.keep_alive and response.keep_alive
        complete = request.content.complete
        if keep_alive and not complete and request.awaits_continue:
            # The client waits for "100 Continue" and never sends the body after a final answer:
            # its next bytes would be read as this body, so the connection cannot be reused.
            keep_alive = False
        if response._request is None:  # not prepared (StreamResponse.prepared, without the call)
            if not isinstance(response, Response):
                raise TypeError("a StreamResponse must be prepared by its handler")
            try:
                data = response.serialize(request.method == "HEAD", keep_alive)
            except ValueError:
                log.exception("bad response headers for %s %s", request.method, request.raw_path)
                response = self._render_error("internal-error")
                keep_alive = False
                data = response.serialize(request.method == "HEAD", keep_alive)
            if self._closed:
                return False
            self.write(data)
        if not complete and not request.content.complete:
            # Answered before the whole body arrived: skip the rest if it is small enough.
            if not keep_alive or not self._can_discard(request):
                return False
            request.content.discard()
        return keep_alive

    def _can_discard(self, request: Request) -> bool:
        length = request.content_length
        if length is None:
            return False
        return length - request.content.received <= self._limits.discard

    def _reject(self, kind: str) -> None:
        """Answer a request that cannot be parsed, unless a response is under way, and close."""
        if self._closed:
            return
        if not self._busy:
            response = self._render_error(kind)
            response.force_close()
            self._transport.write(response.serialize(False, False))  # type: ignore[union-attr]
        if self._body is not None:
            self._body.set_exception(ConnectionResetError("malformed request"))
        self._close()

    def _close(self) -> None:
        if not self._closed and self._transport is not None:
            self._closed = True
            self._transport.close()

    def _check_idle(self) -> None:
        if self._closed:
            return
        idle = time.monotonic() - self._last_activity
        if not self._busy and idle >= self._limits.idle_timeout:
            self._close()
            return
        self._idle_timer = self._loop.call_later(max(1.0, self._limits.idle_timeout - idle), self._check_idle)

    def abort(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    def close_when_idle(self) -> None:
        """Shutting down: close now if no request is being answered, else after the answer."""
        if not self._busy:
            self._close()
        else:
            for request in self._pending:
                request.keep_alive = False
            self._pending.clear()


_EMPTY = empty_body()
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS")}
