"""A large GET read straight into one reused buffer (asyncio.BufferedProtocol), for the MB/s phases.

aiohttp copies a response body three or four times on its way to the caller (socket buffer ->
bytes -> parser slice -> joined read); at several hundred MB/s one client process then spends a
whole core copying, and the phase measures the client rather than the server. Here the kernel
copies each byte once, into a 1 MiB buffer that the verifier compares in place.
"""

from __future__ import annotations

import asyncio

from bench.payload import StreamVerifier

_BUFFER = 1 << 20
_HEAD_LIMIT = 64 * 1024


class _LargeGet(asyncio.BufferedProtocol):
    def __init__(self, verifier: StreamVerifier, done: asyncio.Future[int]) -> None:
        self.verifier = verifier
        self.done = done
        self.buffer = bytearray(_BUFFER)
        self.view = memoryview(self.buffer)
        self.head = bytearray()
        self.status = 0
        self.remaining = -1  # body bytes still expected; -1 while the head is being read

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        data = self.view[:nbytes]
        if self.remaining < 0:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > _HEAD_LIMIT:
                    self._finish(ConnectionError("response head too large"))
                return
            self._parse_head(bytes(self.head[:end]))
            data = memoryview(bytes(self.head[end + 4 :]))
            self.head = bytearray()
            if self.done.done():
                return
        if len(data) > self.remaining:
            self._finish(ConnectionError("more body than Content-Length"))
            return
        if data:
            self.verifier.feed(data)
            self.remaining -= len(data)
        if self.remaining == 0:
            self._finish(None)

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        length = -1
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if self.status != 200 or length < 0:
            self._finish(ConnectionError(f"status {self.status}, Content-Length {length}"))
        self.remaining = max(length, 0)

    def _finish(self, error: BaseException | None) -> None:
        if not self.done.done():
            if error is None:
                self.done.set_result(self.status)
            else:
                self.done.set_exception(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or ConnectionError("connection closed before the whole body"))


async def get_large(
    host: str, port: int, path: str, headers: dict[str, str], verifier: StreamVerifier, seconds: float
) -> bool:
    """GET `path` on a fresh connection; True when the status is 200 and every byte was fed."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: _LargeGet(verifier, done), host, port)
    try:
        head = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "host"]
        transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        try:
            status = await asyncio.wait_for(done, seconds)
        except ConnectionError:
            return False
        return status == 200 and verifier.finish()
    finally:
        transport.close()
