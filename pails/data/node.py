"""The storage node: the chunk protocol over HTTP (docs/node-protocol.md) on a NodeStore.

aiohttp's low-level server (as the S3 front, decision 0003): one handler, a dozen routes matched
by hand on the split path. Every request but GET /metrics must be signed (pails.data.cluster_auth).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from pails.data import cluster_auth as ca
from pails.data.engine import ChunkCorrupt, ChunkMissing, StoreFull
from pails.data.node_store import BadChunk, ChunkConflict, NodeStore
from pails.data.scrubber import Scrubber
from pails.limits import CHUNK_SIZE
from pails.obs.node_metrics import NodeMetrics

log = logging.getLogger("pails.node")

LENGTH_HEADER = "x-pails-chunk-length"
CHUNK_CRC_HEADER = "x-pails-chunk-crc32c"
WTIME_HEADER = "x-pails-chunk-wtime"
CORRUPT_HEADER = "x-pails-chunk-corrupt"
MAX_DELETE_IDS = 10_000
MAX_LIST = 10_000
MAX_SMALL_BODY = 1024 * 1024
MUTATING = frozenset({"PUT", "POST", "DELETE"})


class NodeHttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error(status: int, code: str, message: str) -> web.Response:
    body = json.dumps({"error": code, "message": message}).encode()
    return web.Response(status=status, body=body, content_type="application/json")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), content_type="application/json")


def parse_id(text: str) -> bytes:
    if len(text) != 32:
        raise NodeHttpError(400, "bad_request", "a chunk id is 32 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise NodeHttpError(400, "bad_request", "a chunk id is 32 hex digits") from None


def _int_param(request: web.BaseRequest, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise NodeHttpError(400, "bad_request", f"{name} must be a non-negative integer")
    return int(raw)


def chunk_headers(length: int, crc: int, wtime: float) -> dict[str, str]:
    return {LENGTH_HEADER: str(length), CHUNK_CRC_HEADER: f"{crc:08x}", WTIME_HEADER: f"{wtime:.6f}"}


@dataclass
class NodeApp:
    store: NodeStore
    secret: bytes
    metrics: NodeMetrics
    scrubber: Scrubber | None = None

    def __post_init__(self) -> None:
        self.replay = ca.ReplayGuard(max_entries=200_000)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        op = "unknown"
        status = 500
        try:
            parts = request.path.strip("/").split("/")
            op = _op_name(request.method, parts)
            if op != "metrics":
                try:
                    ca.verify_request(
                        self.secret,
                        request.method,
                        request.raw_path,
                        request.headers,
                        replay=self.replay if request.method in MUTATING else None,
                    )
                except ca.AuthError as exc:
                    self.metrics.auth_failures.inc()
                    raise NodeHttpError(403, "forbidden", str(exc)) from None
            response = await self._route(request, op, parts)
        except NodeHttpError as exc:
            response = _error(exc.status, exc.code, exc.message)
            if request.method == "PUT":
                response.force_close()  # the body may be unread
        except ChunkMissing as exc:
            response = _error(404, "missing", f"no such chunk {exc}")
        except ChunkCorrupt as exc:
            response = _error(409, "corrupt", str(exc))
        except StoreFull as exc:
            response = _error(507, "full", f"insufficient storage: {exc}")
            response.force_close()
        except ConnectionError:  # the client went away mid-body: nothing was stored
            response = _error(400, "bad_request", "connection lost")
            response.force_close()
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            response = _error(500, "internal", "internal error (see the node's log)")
            response.force_close()
        status = response.status
        self.metrics.observe(op, status, time.monotonic() - started)
        return response

    async def _route(self, request: web.BaseRequest, op: str, parts: list[str]) -> web.StreamResponse:
        if op == "put":
            return await self._put(request, parse_id(parts[1]))
        if op == "get":
            return await self._get(request, parse_id(parts[1]))
        if op == "head":
            chunk_id = parse_id(parts[1])
            info = await self.store.info(chunk_id)
            headers = chunk_headers(info.length, info.crc32c, info.wtime)
            headers["Content-Length"] = str(info.length)  # what a GET would send; keeps the connection
            if chunk_id in self.store.corrupt:
                headers[CORRUPT_HEADER] = "true"
            return web.Response(status=200, headers=headers)
        if op == "delete":
            await self.store.delete([parse_id(parts[1])])
            return web.Response(status=204)
        if op == "delete_batch":
            return await self._delete_batch(request)
        if op == "list":
            return self._list(request)
        if op == "verify":
            return _json({"status": await self.store.verify(parse_id(parts[1]))})
        if op == "stats":
            return _json(self._stats())
        if op == "corrupt":
            return _json({"chunks": sorted(c.hex() for c in self.store.corrupt)})
        if op == "health":
            return _json({"status": "ok"})
        if op == "metrics":
            body = self.metrics.render(self.store.usage())
            return web.Response(body=body, headers={"Content-Type": self.metrics.content_type})
        raise NodeHttpError(404 if op == "unknown" else 405, "bad_request", "no such operation")

    async def _put(self, request: web.BaseRequest, chunk_id: bytes) -> web.StreamResponse:
        length = request.content_length
        if length is None:
            raise NodeHttpError(411, "bad_request", "content-length is required")
        if length > CHUNK_SIZE:
            raise NodeHttpError(413, "bad_request", f"a chunk holds at most {CHUNK_SIZE} bytes")
        raw_crc = request.headers.get(ca.CRC_HEADER, "")
        try:
            crc = int(raw_crc, 16)
        except ValueError:
            raise NodeHttpError(400, "bad_request", f"{ca.CRC_HEADER} must be 8 hex digits") from None
        if len(raw_crc) != 8:
            raise NodeHttpError(400, "bad_request", f"{ca.CRC_HEADER} must be 8 hex digits")
        accept = None
        if request.headers.get("Expect", "").lower() == "100-continue" and request.version >= (1, 1):

            async def accept() -> None:
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0  # the response proper has not started

        try:
            written = await self.store.put(chunk_id, self._counted(request), length, crc, accept=accept)
        except BadChunk as exc:
            raise NodeHttpError(400, "bad_chunk", str(exc)) from None
        except ChunkConflict as exc:
            raise NodeHttpError(412, "conflict", str(exc)) from None
        response = web.Response(status=201 if written else 200)
        if accept is not None and not written:
            response.force_close()  # the client held its body back: do not reuse the connection
        return response

    async def _counted(self, request: web.BaseRequest) -> AsyncIterator[bytes]:
        async for piece in request.content.iter_any():
            self.metrics.bytes_in.inc(len(piece))
            yield piece

    async def _get(self, request: web.BaseRequest, chunk_id: bytes) -> web.StreamResponse:
        info = await self.store.info(chunk_id)
        offset = _int_param(request, "offset", 0) or 0
        want = _int_param(request, "length", None)
        if offset > info.length:
            raise NodeHttpError(416, "bad_range", f"offset {offset} past the end of a {info.length}-byte chunk")
        end = info.length if want is None else min(info.length, offset + want)
        pieces = self.store.read(chunk_id, offset, end - offset).__aiter__()
        first: bytes | None = None
        try:
            first = await anext(pieces)
        except StopAsyncIteration:
            pass
        except ChunkCorrupt:
            self.store.mark_corrupt(chunk_id)
            raise
        headers = chunk_headers(info.length, info.crc32c, info.wtime)
        headers["Content-Type"] = "application/octet-stream"
        response = web.StreamResponse(status=200, headers=headers)
        response.content_length = end - offset
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(first)
                self.metrics.bytes_out.inc(len(first))
                async for piece in pieces:
                    await response.write(piece)
                    self.metrics.bytes_out.inc(len(piece))
        except ChunkCorrupt:
            # Headers are gone: cut the connection, so the client sees a short body, never bad bytes.
            self.store.mark_corrupt(chunk_id)
            if request.transport is not None:
                request.transport.abort()
            return response
        finally:
            with contextlib.suppress(Exception):
                await pieces.aclose()  # type: ignore[attr-defined]
        await response.write_eof()
        return response

    async def _delete_batch(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.content_length is None or request.content_length > MAX_SMALL_BODY:
            raise NodeHttpError(400, "bad_request", "a batch delete body is required (at most 1 MiB)")
        body = await request.read()
        if request.headers.get(ca.SHA256_HEADER, "") != ca.body_sha256(body):
            raise NodeHttpError(400, "bad_request", f"the body does not match {ca.SHA256_HEADER}")
        try:
            data = json.loads(body)
            ids = [parse_id(x) for x in data["ids"]]
        except (ValueError, KeyError, TypeError):
            raise NodeHttpError(400, "bad_request", 'the body is {"ids": ["32 hex digits", ...]}') from None
        if len(ids) > MAX_DELETE_IDS:
            raise NodeHttpError(400, "bad_request", f"at most {MAX_DELETE_IDS} ids per request")
        await self.store.delete(ids)
        return web.Response(status=204)

    def _list(self, request: web.BaseRequest) -> web.StreamResponse:
        after_hex = request.query.get("after", "")
        after = parse_id(after_hex) if after_hex else None
        limit = _int_param(request, "limit", 1000)
        if limit is None or not 1 <= limit <= MAX_LIST:
            raise NodeHttpError(400, "bad_request", f"limit must be 1 to {MAX_LIST}")
        page = self.store.list(after, limit + 1)
        return _json(
            {"chunks": [[c.hex(), t] for c, t in page[:limit]], "truncated": len(page) > limit}
        )

    def _stats(self) -> dict[str, Any]:
        u = self.store.usage()
        out: dict[str, Any] = {
            "capacity": u.capacity,
            "used": u.used,
            "free": u.free,
            "chunks": u.chunks,
            "corrupt": u.corrupt,
            "corrupt_found": u.corrupt_found,
            "volumes": u.volumes,
            "garbage": u.garbage,
            "live": u.live,
        }
        if self.scrubber is not None:
            out["scrub_passes"] = self.scrubber.passes
            out["scrub_last_pass_end"] = self.scrubber.last_pass_end
        return out


def _op_name(method: str, parts: list[str]) -> str:
    n = len(parts)
    if n >= 1 and parts[0] == "chunks":
        if n == 1:
            return "list" if method == "GET" else "bad_method"
        if n == 2 and parts[1] == "delete":
            return "delete_batch" if method == "POST" else "bad_method"
        if n == 2:
            ops = {"PUT": "put", "GET": "get", "HEAD": "head", "DELETE": "delete"}
            return ops.get(method, "bad_method")
        if n == 3 and parts[2] == "verify":
            return "verify" if method == "POST" else "bad_method"
    if parts == ["node", "stats"] or parts == ["node", "corrupt"]:
        return parts[1] if method == "GET" else "bad_method"
    if parts == ["health"] or parts == ["metrics"]:
        return parts[0] if method in ("GET", "HEAD") else "bad_method"
    return "unknown"


# Running a node ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSettings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 9100
    capacity: int | None = None
    scrub_rate: float = 32 * 1024 * 1024
    scrub_interval: float = 3600.0
    compact_interval: float = 60.0
    compact_garbage_ratio: float = 0.5


async def serve(settings: NodeSettings, secret: bytes) -> None:
    store = NodeStore(settings.data_dir, capacity=settings.capacity)
    await store.open()
    metrics = NodeMetrics()
    scrubber = Scrubber(store, metrics, rate=settings.scrub_rate, interval=settings.scrub_interval)
    app = NodeApp(store, secret, metrics, scrubber)
    server = web.Server(app.handle, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    port = sock.getsockname()[1]
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    host = f"[{settings.host}]" if family == socket.AF_INET6 else settings.host
    print(f"Pails node serving on http://{host}:{port} (data: {settings.data_dir.resolve()})", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(scrubber.run_forever()),
        asyncio.create_task(_compact_forever(store, settings)),
    ]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await store.close()
        log.info("Pails node stopped")


async def _compact_forever(store: NodeStore, settings: NodeSettings) -> None:
    while True:
        await asyncio.sleep(settings.compact_interval)
        try:
            await store.chunks.compact(settings.compact_garbage_ratio)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("compaction failed")


def run(settings: NodeSettings, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    secret = ca.secret_from_env()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(settings, secret))
