"""Listening socket to connections: accepts, and on shutdown lets answers in progress finish."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from pails.api.http.protocol import ErrorRenderer, Handler, HttpConnection, Limits


class ConnectionSet:
    """The open connections; `empty` is set whenever there is none."""

    def __init__(self) -> None:
        self._open: set[HttpConnection] = set()
        self.empty = asyncio.Event()
        self.empty.set()

    def add(self, connection: HttpConnection) -> None:
        self._open.add(connection)
        self.empty.clear()

    def discard(self, connection: HttpConnection) -> None:
        self._open.discard(connection)
        if not self._open:
            self.empty.set()

    def snapshot(self) -> list[HttpConnection]:
        return list(self._open)


class HttpServer:
    def __init__(self, handler: Handler, render_error: ErrorRenderer, limits: Limits | None = None) -> None:
        self._handler = handler
        self._render_error = render_error
        self._limits = limits or Limits()
        self._connections = ConnectionSet()
        self._server: asyncio.AbstractServer | None = None

    def _connection(self) -> HttpConnection:
        return HttpConnection(self._handler, self._render_error, self._limits, self._connections)

    async def start(self, sock: socket.socket, backlog: int = 1024) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connection, sock=sock, backlog=backlog)

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting, close idle connections, give busy ones `grace` seconds."""
        if self._server is not None:
            self._server.close()
        for connection in self._connections.snapshot():
            connection.close_when_idle()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connections.empty.wait(), grace)
        for connection in self._connections.snapshot():
            connection.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
