"""A near-zero-cost fake S3 endpoint, to measure the load generator's own ceiling.

``python -m bench.sink --port N`` keeps only object sizes in memory and regenerates
contents from :mod:`bench.payload` on GET, so the harness's verification passes.  No
auth, no persistence: it exists only so ``python -m bench.run --servers sink`` shows the
highest rates this client can drive on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from bench.payload import CHUNK, LargePattern, small_body

Store = dict[str, dict[str, int]]


class _Sink(asyncio.Protocol):
    def __init__(self, store: Store) -> None:
        self.store = store
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.pending: tuple[str, str, int] | None = None  # PUT waiting for the rest of its body
        self.remaining = 0
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        if self.remaining:
            take = min(self.remaining, len(data))
            self.remaining -= take
            data = data[take:]
            if self.remaining:
                return
            assert self.pending is not None
            self._respond(*self.pending)
            self.pending = None
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            have = len(self.buf) - end - 4
            if have < length:
                self.remaining = length - have
                self.pending = (method, target, length)
                self.buf.clear()
                return
            del self.buf[: end + 4 + length]
            self._respond(method, target, length)

    def _send(self, status: str, headers: str = "", body: bytes = b"") -> None:
        assert self.transport is not None
        self.transport.write(
            f"HTTP/1.1 {status}\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body
        )

    def _respond(self, method: str, target: str, length: int) -> None:
        path, _, query = target.partition("?")
        bucket, _, key = unquote(path).lstrip("/").partition("/")
        objects = self.store.setdefault(bucket, {})
        if method == "PUT":
            if key:
                objects[key] = length
            self._send("200 OK", 'ETag: "0"\r\n')
        elif method == "DELETE":
            objects.pop(key, None)
            self._send("204 No Content")
        elif not key:
            self._list(objects, parse_qs(query))
        elif key not in objects:
            self._send("404 Not Found")
        elif method == "HEAD":
            assert self.transport is not None
            self.transport.write(f"HTTP/1.1 200 OK\r\nContent-Length: {objects[key]}\r\n\r\n".encode())
        elif objects[key] < CHUNK:
            self._send("200 OK", "", small_body(key, objects[key]))
        else:
            asyncio.get_running_loop().create_task(self._stream(LargePattern(key, objects[key])))

    async def _stream(self, pattern: LargePattern) -> None:
        assert self.transport is not None
        self.transport.write(f"HTTP/1.1 200 OK\r\nContent-Length: {pattern.size}\r\n\r\n".encode())
        for i in range(pattern.chunks):
            await self.can_write.wait()
            self.transport.write(pattern.chunk(i))

    def _list(self, objects: dict[str, int], q: dict[str, list[str]]) -> None:
        prefix = q.get("prefix", [""])[0]
        after = q.get("continuation-token", q.get("start-after", [""]))[0]
        limit = int(q.get("max-keys", ["1000"])[0])
        keys = sorted(k for k in objects if k.startswith(prefix) and k > after)
        page, more = keys[:limit], len(keys) > limit
        items = "".join(f"<Contents><Key>{escape(k)}</Key><Size>{objects[k]}</Size></Contents>" for k in page)
        token = f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>" if more else ""
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><KeyCount>{len(page)}</KeyCount>'
            f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>{token}{items}</ListBucketResult>"
        )
        self._send("200 OK", "Content-Type: application/xml\r\n", xml.encode())


async def serve(host: str, port: int) -> None:
    store: Store = {}
    server = await asyncio.get_running_loop().create_server(lambda: _Sink(store), host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.sink")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    import uvloop

    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
