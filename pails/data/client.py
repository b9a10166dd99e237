"""NodeClient: a gateway's side of the chunk protocol (docs/node-protocol.md).

One client per node, all sharing the gateway's aiohttp ClientSession (its connection pool).
Timeouts: `connect_timeout` to open a connection, and `read_timeout` for any stall on the node:
waiting for a response, between two pieces of a response body, and while the node takes a piece of
an upload (time spent waiting for the caller's own body source does not count). A hung (SIGSTOPped)
node therefore fails with NodeUnavailable after about read_timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from awscrt.checksums import crc32c as _crc32c
from yarl import URL

from pails.data import cluster_auth as ca
from pails.data.engine import ChunkCorrupt, ChunkMissing

LENGTH_HEADER = "x-pails-chunk-length"
CHUNK_CRC_HEADER = "x-pails-chunk-crc32c"
CORRUPT_HEADER = "x-pails-chunk-corrupt"
DELETE_BATCH = 10_000
EXPECT_CONTINUE_MIN = 64 * 1024
"""Bigger chunks are sent with `Expect: 100-continue`: a node that is full, or has the chunk
already, answers before the body is sent (smaller ones are cheaper to send than to wait for)."""


class NodeError(Exception):
    """The node answered with an error, or could not be reached."""


class NodeUnavailable(NodeError):
    """Connection refused, timed out or reset: the node is down or hung."""


class NodeFull(NodeError):
    """The node has no room for the chunk (507)."""


@dataclass(frozen=True)
class NodeStats:
    capacity: int
    used: int
    free: int
    chunks: int
    corrupt: int


_CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError, OSError)


class NodeClient:
    def __init__(
        self,
        address: str,
        secret: bytes,
        session: aiohttp.ClientSession,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
    ) -> None:
        """address: HOST:PORT of the node (or a full http:// URL)."""
        self.address = address
        self._base = address if "://" in address else f"http://{address}"
        self._secret = secret
        self._session = session
        self._read_timeout = read_timeout
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        # uploads pace their own idle timeout (see put_chunk): no socket read timeout
        self._put_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)

    def __repr__(self) -> str:
        return f"NodeClient({self.address!r})"

    # Plumbing ----------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        target: str,
        *,
        headers: dict[str, str] | None = None,
        data: Any = None,
        timeout: aiohttp.ClientTimeout | None = None,
        expect100: bool = False,
    ) -> Any:
        signed = ca.sign_headers(self._secret, method, target, headers)
        return self._session.request(
            method,
            URL(self._base + target, encoded=True),
            headers=signed,
            data=data,
            timeout=timeout or self._timeout,
            allow_redirects=False,
            auto_decompress=False,
            expect100=expect100,
        )

    async def _error(self, resp: aiohttp.ClientResponse, chunk_id: bytes | None = None) -> NodeError | Exception:
        try:
            body = await resp.read()
            info = json.loads(body) if body else {}
            code, message = str(info.get("error", "")), str(info.get("message", ""))
        except (ValueError, aiohttp.ClientError, TimeoutError):
            code, message = "", ""
        what = f"node {self.address}: {resp.status} {code} {message}".rstrip()
        if resp.status == 404 and code == "missing":
            return ChunkMissing(chunk_id.hex() if chunk_id else what)
        if resp.status == 409 and code == "corrupt":
            return ChunkCorrupt(what)
        if resp.status == 507:
            return NodeFull(what)
        return NodeError(what)

    async def _call_json(self, method: str, target: str, **kw: Any) -> Any:
        try:
            async with self._request(method, target, **kw) as resp:
                if resp.status != 200:
                    raise await self._error(resp)
                return await resp.json(content_type=None)
        except _CONNECTION_ERRORS as exc:
            raise NodeUnavailable(f"node {self.address}: {exc!r}") from exc

    # The chunk protocol ------------------------------------------------------------------------

    async def put_chunk(self, chunk_id: bytes, body: AsyncIterable[bytes], length: int, crc32c: int) -> None:
        """Stream a chunk to the node; return once the node made it durable (or had it already).
        Raises NodeFull, NodeUnavailable, NodeError (e.g. the body did not match length and CRC)."""
        try:
            await self._put(chunk_id, body, length, crc32c)
        except TimeoutError as exc:
            raise NodeUnavailable(f"node {self.address}: no progress in {self._read_timeout} s") from exc

    async def _put(self, chunk_id: bytes, body: AsyncIterable[bytes], length: int, crc32c: int) -> None:
        loop = asyncio.get_running_loop()
        idle = self._read_timeout
        async with asyncio.timeout(None) as deadline:

            async def paced() -> AsyncIterator[bytes]:
                # Armed while aiohttp hands a piece to the node, disarmed while we wait for the source.
                async for piece in body:
                    deadline.reschedule(loop.time() + idle)
                    yield piece
                    deadline.reschedule(None)
                deadline.reschedule(loop.time() + idle)

            headers = {"Content-Length": str(length), ca.CRC_HEADER: f"{crc32c:08x}"}
            target = f"/chunks/{chunk_id.hex()}"
            deadline.reschedule(loop.time() + idle)
            try:
                async with self._request(
                    "PUT",
                    target,
                    headers=headers,
                    data=paced(),
                    timeout=self._put_timeout,
                    expect100=length > EXPECT_CONTINUE_MIN,
                ) as resp:
                    if resp.status not in (200, 201):
                        raise await self._error(resp, chunk_id)
                    deadline.reschedule(None)
            except _CONNECTION_ERRORS as exc:
                raise NodeUnavailable(f"node {self.address}: {exc!r}") from exc

    async def get_chunk(
        self, chunk_id: bytes, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream bytes [offset, offset+length) of a chunk. The node verified each block before
        sending it; a whole-chunk read is also checked here against the chunk's CRC32C. Raises
        ChunkMissing, ChunkCorrupt (also when the node cut the body short on finding a bad block),
        NodeUnavailable (down, hung, or a body cut short otherwise), NodeError."""
        query = f"?offset={offset}" + ("" if length is None else f"&length={length}")
        target = f"/chunks/{chunk_id.hex()}" + (query if offset or length is not None else "")
        cut_short = ""
        try:
            async with self._request("GET", target) as resp:
                if resp.status != 200:
                    raise await self._error(resp, chunk_id)
                total = int(resp.headers.get(LENGTH_HEADER, "-1"))
                want_crc = int(resp.headers.get(CHUNK_CRC_HEADER, "0"), 16)
                expected = resp.content_length
                whole = offset == 0 and expected == total
                got, crc = 0, 0
                try:
                    async for piece in resp.content.iter_any():
                        got += len(piece)
                        if whole:
                            crc = _crc32c(piece, crc)
                        yield piece
                except aiohttp.ClientPayloadError as exc:
                    cut_short = repr(exc)
                if not cut_short and expected is not None and got != expected:
                    cut_short = f"{got} of {expected} bytes"
                if not cut_short and whole and crc != want_crc:
                    raise ChunkCorrupt(f"node {self.address}: chunk {chunk_id.hex()} fails its CRC32C in transit")
        except _CONNECTION_ERRORS as exc:
            raise NodeUnavailable(f"node {self.address}: {exc!r}") from exc
        if cut_short:
            # The node cuts the body when it finds a bad block mid-stream, and then lists the chunk
            # as corrupt: tell that apart from a node that died, so a sound node is not marked down.
            if await self._known_corrupt(chunk_id):
                raise ChunkCorrupt(f"node {self.address}: chunk {chunk_id.hex()} is corrupt (body cut short)")
            raise NodeUnavailable(f"node {self.address}: body cut short ({cut_short})")

    async def _known_corrupt(self, chunk_id: bytes) -> bool:
        try:
            async with self._request("HEAD", f"/chunks/{chunk_id.hex()}") as resp:
                return bool(resp.status == 200 and resp.headers.get(CORRUPT_HEADER) == "true")
        except (*_CONNECTION_ERRORS, NodeError):
            return False

    async def head_chunk(self, chunk_id: bytes) -> int | None:
        """The chunk's length, or None if the node does not have it."""
        try:
            async with self._request("HEAD", f"/chunks/{chunk_id.hex()}") as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise await self._error(resp, chunk_id)
                return int(resp.headers[LENGTH_HEADER])
        except _CONNECTION_ERRORS as exc:
            raise NodeUnavailable(f"node {self.address}: {exc!r}") from exc

    async def delete_chunks(self, chunk_ids: Iterable[bytes]) -> None:
        """Delete chunks (missing ids are ignored), in batches of up to 10,000."""
        ids = [c.hex() for c in chunk_ids]
        for start in range(0, len(ids), DELETE_BATCH):
            body = json.dumps({"ids": ids[start : start + DELETE_BATCH]}).encode()
            headers = {
                "Content-Length": str(len(body)),
                "Content-Type": "application/json",
                ca.SHA256_HEADER: ca.body_sha256(body),
            }
            try:
                async with self._request("POST", "/chunks/delete", headers=headers, data=body) as resp:
                    if resp.status != 204:
                        raise await self._error(resp)
            except _CONNECTION_ERRORS as exc:
                raise NodeUnavailable(f"node {self.address}: {exc!r}") from exc

    async def list_chunks(self, after: bytes | None = None, limit: int = 1000) -> list[tuple[bytes, float]]:
        """Up to `limit` (at most 10,000) chunk ids greater than `after`, in byte order, with the
        unix time each was written. An empty list ends the walk."""
        limit = max(1, min(limit, 10_000))
        target = f"/chunks?limit={limit}" + ("" if after is None else f"&after={after.hex()}")
        data = await self._call_json("GET", target)
        return [(bytes.fromhex(c), float(t)) for c, t in data["chunks"]]

    async def verify_chunk(self, chunk_id: bytes) -> str:
        """Have the node re-read the chunk at rest: "ok", "corrupt" or "missing"."""
        data = await self._call_json("POST", f"/chunks/{chunk_id.hex()}/verify")
        return str(data["status"])

    async def corrupt_chunks(self) -> list[bytes]:
        """Chunks the node found corrupt (scrubber, reads, verify) and still holds."""
        data = await self._call_json("GET", "/node/corrupt")
        return [bytes.fromhex(c) for c in data["chunks"]]

    async def stats(self) -> NodeStats:
        data = await self._call_json("GET", "/node/stats")
        return NodeStats(
            capacity=int(data["capacity"]),
            used=int(data["used"]),
            free=int(data["free"]),
            chunks=int(data["chunks"]),
            corrupt=int(data["corrupt"]),
        )

    async def health(self) -> bool:
        """True if the node answers (signed) within the timeouts; never raises for a down node."""
        try:
            await self._call_json("GET", "/health")
        except NodeError:
            return False
        return True
