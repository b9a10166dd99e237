"""The replicated chunk store of a cluster gateway: chunks on R storage nodes picked by the ring.

Writes: a chunk is buffered in the gateway (at most CHUNK_SIZE: the node protocol carries the
chunk's CRC32C up front, so the node can verify it before it fsyncs), then sent to its R owners at
once, each replica streaming slices of the same buffer. An owner that is down, full or fails gets
its replica written to the next healthy node of the preference list instead (a hint), and the
(chunk, owner) pair goes to the repair queue. The chunk is written once W distinct nodes have
acknowledged it (each acknowledgement means the node fsynced it); the others get
`write_straggler_seconds` more, then are abandoned and queued for repair. Fewer than W: 503, and
the replicas already written are garbage the GC removes (no object row ever names them).

Reads: the owners of the current ring (healthy first), then the previous ring's owners (a
rebalance in progress), then every other node; a missing or corrupt replica on an owner is queued
for repair (read repair), and a read that fails part-way resumes at the same offset on the next.

Single-node mode never uses this module (R=1, LocalChunkStore in process, no HTTP hop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from pails.data.client import NodeError, NodeFull, NodeUnavailable
from pails.data.engine import ChunkCorrupt, ChunkMissing, StoreStats
from pails.data.membership import ClusterView
from pails.data.ring import Node
from pails.data.volume import crc32c
from pails.errors import S3Error
from pails.limits import CHUNK_SIZE, READ_PIECE
from pails.meta.models import ChunkRef

log = logging.getLogger("pails.placement")

_NODE_FAILURES: tuple[type[BaseException], ...] = (NodeError, aiohttp.ClientError, OSError, TimeoutError)


def new_chunk_id() -> bytes:
    return os.urandom(16)


def quorum_error(acked: int, wanted: int) -> S3Error:
    return S3Error(
        "ServiceUnavailable",
        f"Only {acked} of the {wanted} storage nodes needed acknowledged the write; try again later.",
        status=503,
    )


class _NoBarrier:
    """Acknowledged replicas are already fsynced: nothing to do before the metadata commit."""

    def __call__(self) -> None:
        return None

    def release(self) -> None:
        return None


@dataclass(slots=True)
class _Attempt:
    node: Node
    owner: Node  # the node the replica belongs to (differs for a hint)


class ReplicatedSink:
    def __init__(self, store: ReplicatedChunkStore, chunk_id: bytes) -> None:
        self._store = store
        self.chunk_id = chunk_id
        self._buf = bytearray()
        self._done = False
        self._written: list[Node] = []

    async def write(self, data: bytes | memoryview) -> None:
        if self._done:
            raise RuntimeError("chunk already finished or aborted")
        if len(self._buf) + len(data) > CHUNK_SIZE:
            raise ValueError(f"a chunk holds at most {CHUNK_SIZE} bytes")
        self._buf += data

    async def finish(self) -> ChunkRef:
        if self._done:
            raise RuntimeError("chunk already finished or aborted")
        self._done = True
        data, self._buf = bytes(self._buf), bytearray()
        self._written = await self._store.replicate(self.chunk_id, data)
        return ChunkRef(self.chunk_id, len(data))

    async def abort(self) -> None:
        self._done = True
        self._buf = bytearray()
        await self._store.delete([self.chunk_id])


class ReplicatedChunkStore:
    def __init__(self, view: ClusterView) -> None:
        self.view = view
        self._background: set[asyncio.Task[None]] = set()

    @property
    def replicas(self) -> int:
        return self.view.settings.replicas

    @property
    def write_quorum(self) -> int:
        return self.view.settings.write_quorum

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        for task in list(self._background):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task

    async def new_chunk(self, size_hint: int | None = None) -> ReplicatedSink:
        if self.view.ring is None or not self.view.ring.nodes:
            raise S3Error("ServiceUnavailable", "The cluster has no storage nodes.", status=503)
        return ReplicatedSink(self, new_chunk_id())

    async def sync(self, refs: Iterable[ChunkRef]) -> None:
        return None

    def sync_barrier(self, refs: Iterable[ChunkRef]) -> _NoBarrier:
        return _NoBarrier()

    # -- writes ----------------------------------------------------------------------------------

    async def _put(self, node: Node, chunk_id: bytes, data: bytes, crc: int) -> bool:
        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(data), READ_PIECE):
                yield data[start : start + READ_PIECE]

        metrics = self.view.metrics
        for attempt in (1, 2):
            try:
                await self.view.client(node, write=True).put_chunk(chunk_id, pieces(), len(data), crc)
                break
            except NodeUnavailable as exc:
                if attempt == 1 and not isinstance(exc.__cause__, TimeoutError):
                    # Likely a pooled keep-alive connection the node had closed: once more, on a
                    # fresh connection (the bytes are in memory, so replaying costs nothing).
                    metrics.replica_writes.labels("retried").inc()
                    continue
                log.info("replica write of %s to %s failed: %r (%r)", chunk_id.hex(), node.node_id, exc, exc.__cause__)
                self.view.mark_down(node.node_id, repr(exc))
                metrics.replica_writes.labels("unavailable").inc()
                return False
            except NodeFull:
                metrics.replica_writes.labels("full").inc()
                return False
            except _NODE_FAILURES as exc:
                log.info("replica write of %s to %s failed: %r", chunk_id.hex(), node.node_id, exc)
                metrics.replica_writes.labels("error").inc()
                return False
        metrics.replica_writes.labels("ok").inc()
        return True

    async def replicate(self, chunk_id: bytes, data: bytes) -> list[Node]:
        """Write `data` as chunk `chunk_id` on its owners (or handoffs); return the nodes that
        acknowledged (at least W) or raise the S3 503."""
        view, r, w = self.view, self.replicas, self.write_quorum
        ring = view.ring
        if ring is None:
            raise quorum_error(0, w)
        crc = crc32c(data)
        owners = ring.replicas(chunk_id, r)
        owner_ids = {n.node_id for n in owners}
        # Handoff candidates: healthy active non-owners in ring order (draining nodes take nothing).
        handoffs = [
            n
            for n in ring.preference_list(chunk_id, r)
            if n.node_id not in owner_ids and n.state == "up" and view.is_up(n.node_id)
        ]
        repairs: list[tuple[bytes, str, str]] = []
        attempts: dict[asyncio.Task[bool], _Attempt] = {}
        # Owners marked down are skipped, but tried as a last resort before a write fails: a node
        # marked down by a slow probe may well take the write.
        last_resort: list[Node] = []

        def launch(node: Node, owner: Node) -> None:
            task = asyncio.create_task(self._put(node, chunk_id, data, crc))
            attempts[task] = _Attempt(node, owner)

        def hand_off(owner: Node, reason: str) -> None:
            repairs.append((chunk_id, owner.node_id, reason))
            if handoffs:
                self.view.metrics.hinted_writes.inc()
                launch(handoffs.pop(0), owner)

        def last_try(pending: set[asyncio.Task[bool]], acked: int) -> None:
            while last_resort and acked + len(pending) < w:
                node = last_resort.pop(0)
                launch(node, node)
                pending.add(next(t for t, a in attempts.items() if a.node is node and not t.done()))

        for owner in owners:
            if view.is_up(owner.node_id):
                launch(owner, owner)
            else:
                last_resort.append(owner)
                hand_off(owner, "hint")
        # Fewer owners than R (fewer active nodes than replicas): nothing to hand off to.
        acked: list[Node] = []
        pending = set(attempts)
        last_try(pending, 0)
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        try:
            while pending:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                done, pending = await asyncio.wait(
                    pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    break  # the stragglers' time is up
                for task in done:
                    attempt = attempts[task]
                    if task.result():
                        acked.append(attempt.node)
                    else:
                        hand_off(attempt.owner, "hint")
                        pending |= {t for t in attempts if not t.done()} - pending
                        last_try(pending, len(acked))
                if len(acked) >= w and deadline is None:
                    deadline = loop.time() + view.settings.write_straggler_seconds
        finally:
            for task in pending:
                task.cancel()
                repairs.append((chunk_id, attempts[task].owner.node_id, "slow"))
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if len(acked) < w:
            log.warning(
                "chunk %s: %d of W=%d acknowledgements (tried %s)",
                chunk_id.hex(),
                len(acked),
                w,
                ", ".join(a.node.node_id for a in attempts.values()) or "no node",
            )
            self.view.metrics.quorum_failures.inc()
            if acked:
                self._spawn(self._delete_on(acked, [chunk_id]))
            raise quorum_error(len(acked), w)
        acked_ids = {n.node_id for n in acked}
        repairs = [item for item in repairs if item[1] not in acked_ids]
        if repairs:
            await self.queue_repairs(repairs)
        return acked

    async def queue_repairs(self, items: list[tuple[bytes, str, str]]) -> None:
        unique = list(dict.fromkeys(items))
        try:
            await self.view.store.queue_repairs(unique)
        except Exception:  # anti-entropy finds these replicas again; the write itself stands
            log.exception("could not queue %d repairs", len(unique))
            return
        for _, _, reason in unique:
            self.view.metrics.repairs_queued.labels(reason).inc()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- reads -----------------------------------------------------------------------------------

    def read_now(self, chunk_id: bytes, offset: int, end: int) -> bytes | None:
        return None  # the chunk is on storage nodes: always a network read

    async def read(self, chunk_id: bytes, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        view = self.view
        position, remaining = offset, length
        bad: list[tuple[bytes, str, str]] = []
        failure: BaseException | None = None
        owners = {n.node_id for n in view.owners(chunk_id)}
        succeeded = remaining == 0
        for node in view.read_order(chunk_id):
            if succeeded:
                break
            try:
                async for piece in view.client(node).get_chunk(chunk_id, position, remaining):
                    yield piece
                    position += len(piece)
                    if remaining is not None:
                        remaining -= len(piece)
            except ChunkMissing as exc:
                reason, failure = "missing", failure or exc
            except ChunkCorrupt as exc:
                reason, failure = "corrupt", exc
            except NodeUnavailable as exc:
                view.mark_down(node.node_id, repr(exc))
                reason, failure = "unavailable", failure or exc
            except _NODE_FAILURES as exc:
                reason, failure = "error", failure or exc
            else:
                succeeded = True
                break
            view.metrics.read_failovers.labels(reason).inc()
            if reason in ("missing", "corrupt") and node.node_id in owners:
                bad.append((chunk_id, node.node_id, reason))
        if bad:
            self._spawn(self.queue_repairs(bad))
        if not succeeded:
            if failure is None:
                raise ChunkMissing(chunk_id.hex())
            if isinstance(failure, ChunkCorrupt | ChunkMissing):
                raise failure
            raise S3Error(
                "ServiceUnavailable", "No storage node holding the data answered; try again.", status=503
            )

    # -- deletes and upkeep ------------------------------------------------------------------------

    async def _delete_on(self, nodes: Iterable[Node], chunk_ids: list[bytes]) -> None:
        async def one(node: Node) -> None:
            try:
                await self.view.client(node).delete_chunks(chunk_ids)
            except _NODE_FAILURES as exc:
                log.info("delete on %s failed (the GC sweep retries): %r", node.node_id, exc)

        await asyncio.gather(*(one(n) for n in nodes))

    async def delete(self, chunk_ids: Iterable[bytes]) -> None:
        """Delete from every reachable node (replicas may sit on handoffs); nodes that are down
        keep theirs until the GC's orphan sweep finds them."""
        ids = list(chunk_ids)
        if ids:
            await self._delete_on([n for n in self.view.nodes() if self.view.is_up(n.node_id)], ids)

    def chunk_ids(self) -> list[tuple[bytes, float]]:
        """Not used in a cluster: the cluster GC lists every node's chunks itself (cluster_gc.py)."""
        return []

    async def compact(self, garbage_ratio: float = 0.5) -> int:
        return 0  # each node compacts its own volumes

    def stats(self) -> StoreStats:
        chunks = used = capacity = 0
        for health in self.view.health.values():
            if health.stats is not None:
                chunks += health.stats.chunks
                used += health.stats.used
                capacity += health.stats.capacity
        return StoreStats(chunks=chunks, live_bytes=used, garbage_bytes=0, volumes=0, disk_bytes=capacity)
