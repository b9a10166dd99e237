"""Background upkeep of the replicas (run by the gateway that holds the background lease):

- `repair_pass`: the repair queue (hinted writes, read repair, abandoned stragglers) and every
  node's list of corrupt chunks (found by its scrubber or its reads): the replica is re-created
  from a good one.
- `walk_pass` (anti-entropy and rebalancing in one walk): list every reachable node's chunks; for
  each chunk, copy it to each owner of the current ring that lacks it; once every owner holds it,
  delete it from the nodes that are not owners (handoffs, old owners after a ring change, a
  draining node). Reads keep working during a move because they also try the previous ring's
  owners and then every node.

Each pass is bounded: `batch` entries per repair pass, `antientropy_batch` ids per list request,
and a token bucket of `background_copies_per_second` over all replica copies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from pails.data.client import NodeError
from pails.data.engine import ChunkCorrupt, ChunkMissing
from pails.data.membership import ClusterView
from pails.data.placement import _NODE_FAILURES, ReplicatedChunkStore
from pails.data.ring import Node
from pails.data.volume import crc32c

log = logging.getLogger("pails.repair")


class RateLimiter:
    """A token bucket: take() waits until one more operation fits in `per_second`."""

    def __init__(self, per_second: float) -> None:
        self._rate = max(per_second, 0.001)
        self._tokens = self._rate
        self._stamp = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self._rate)


@dataclass
class WalkReport:
    nodes_listed: int = 0
    chunks: int = 0
    replicas: int = 0
    copied: int = 0
    copied_rebalance: int = 0
    dropped: int = 0
    failed: int = 0
    skipped_nodes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Repairer:
    def __init__(self, store: ReplicatedChunkStore, keep_going: Callable[[], bool] = lambda: True) -> None:
        self.store = store
        self.view: ClusterView = store.view
        self.metrics = self.view.metrics
        self.limiter = RateLimiter(self.view.settings.background_copies_per_second)
        self.keep_going = keep_going

    def _node(self, node_id: str) -> Node | None:
        for node in self.view.nodes():
            if node.node_id == node_id:
                return node
        return None

    async def copy_to(self, chunk_id: bytes, target: Node) -> bool:
        """Re-create `chunk_id` on `target` from any good replica elsewhere (verified on read)."""
        await self.limiter.take()
        buf = bytearray()
        try:
            async for piece in self._read_elsewhere(chunk_id, target.node_id):
                buf += piece
        except (ChunkMissing, ChunkCorrupt, NodeError) as exc:
            log.info("no good replica of %s to copy to %s: %r", chunk_id.hex(), target.node_id, exc)
            return False
        data = bytes(buf)

        async def pieces() -> AsyncIterator[bytes]:
            yield data

        try:
            await self.view.client(target, write=True).put_chunk(chunk_id, pieces(), len(data), crc32c(data))
        except _NODE_FAILURES as exc:
            log.info("copy of %s to %s failed: %r", chunk_id.hex(), target.node_id, exc)
            return False
        return True

    async def _read_elsewhere(self, chunk_id: bytes, exclude: str) -> AsyncIterator[bytes]:
        failure: BaseException | None = None
        for node in self.view.read_order(chunk_id):
            if node.node_id == exclude or not self.view.is_up(node.node_id):
                continue
            try:
                pieces = [p async for p in self.view.client(node).get_chunk(chunk_id)]
            except (ChunkMissing, ChunkCorrupt) as exc:
                failure = exc
                continue
            except _NODE_FAILURES as exc:
                failure = exc
                continue
            for piece in pieces:
                yield piece
            return
        raise failure if isinstance(failure, ChunkMissing | ChunkCorrupt) else ChunkMissing(chunk_id.hex())

    async def _holds(self, node: Node, chunk_id: bytes) -> bool | None:
        try:
            return await self.view.client(node).head_chunk(chunk_id) is not None
        except _NODE_FAILURES:
            return None

    # -- the repair queue and corrupt lists ---------------------------------------------------------

    async def repair_pass(self, batch: int | None = None) -> dict[str, int]:
        limit = batch or self.view.settings.repair_batch
        report = {"repaired": 0, "already_present": 0, "dropped": 0, "deferred": 0, "failed": 0, "corrupt": 0}
        items = await self.view.store.take_repairs(limit)
        done: list[int] = []
        owners_cache: dict[bytes, set[str]] = {}
        for item in items:
            if not self.keep_going():
                break
            node = self._node(item.node_id)
            owners = owners_cache.setdefault(item.chunk_id, {n.node_id for n in self.view.owners(item.chunk_id)})
            if node is None or item.node_id not in owners:
                report["dropped"] += 1  # no longer an owner: anti-entropy places the chunk
                done.append(item.id)
                continue
            if not self.view.is_up(node.node_id):
                report["deferred"] += 1
                continue
            if item.reason == "corrupt":
                await self._drop(node, [item.chunk_id])
            elif await self._holds(node, item.chunk_id):
                report["already_present"] += 1
                done.append(item.id)
                continue
            if await self.copy_to(item.chunk_id, node):
                report["repaired"] += 1
                self.metrics.replicas_copied.labels("repair").inc()
                done.append(item.id)
            else:
                report["failed"] += 1
        await self.view.store.ack_repairs(done)
        for outcome in ("repaired", "already_present", "dropped", "failed"):
            if report[outcome]:
                self.metrics.repairs_done.labels(outcome).inc(report[outcome])
        report["corrupt"] = await self._repair_corrupt()
        backlog = await self.view.store.repair_backlog()
        self.metrics.repair_backlog.set(sum(backlog.values()))
        self.metrics.background_passes.labels("repair").inc()
        return report

    async def _repair_corrupt(self) -> int:
        fixed = 0
        for node in self.view.nodes():
            if not self.view.is_up(node.node_id) or not self.keep_going():
                continue
            try:
                corrupt = await self.view.client(node).corrupt_chunks()
            except _NODE_FAILURES:
                continue
            for chunk_id in corrupt[: self.view.settings.repair_batch]:
                await self._drop(node, [chunk_id])
                owners = {n.node_id for n in self.view.owners(chunk_id)}
                if node.node_id in owners and await self.copy_to(chunk_id, node):
                    self.metrics.replicas_copied.labels("corrupt").inc()
                    fixed += 1
        return fixed

    async def _drop(self, node: Node, chunk_ids: list[bytes]) -> bool:
        try:
            await self.view.client(node).delete_chunks(chunk_ids)
        except _NODE_FAILURES:
            return False
        return True

    # -- anti-entropy and rebalancing ---------------------------------------------------------------

    async def list_all(self, nodes: list[Node]) -> dict[str, dict[bytes, float]]:
        """Every chunk id (and its write time) on each of `nodes`; nodes that fail are left out."""
        batch = self.view.settings.antientropy_batch

        async def one(node: Node) -> tuple[str, dict[bytes, float] | None]:
            found: dict[bytes, float] = {}
            after: bytes | None = None
            try:
                while True:
                    page = await self.view.client(node).list_chunks(after, batch)
                    found.update(page)
                    if len(page) < batch:
                        return node.node_id, found
                    after = page[-1][0]
            except _NODE_FAILURES as exc:
                log.info("listing %s failed: %r", node.node_id, exc)
                return node.node_id, None

        results = await asyncio.gather(*(one(n) for n in nodes))
        return {node_id: found for node_id, found in results if found is not None}

    async def walk_pass(self) -> WalkReport:
        view = self.view
        report = WalkReport()
        ring = view.ring
        if ring is None:
            return report
        nodes = [n for n in view.nodes() if view.is_up(n.node_id)]
        report.skipped_nodes = [n.node_id for n in view.nodes() if not view.is_up(n.node_id)]
        listings = await self.list_all(nodes)
        report.nodes_listed = len(listings)
        by_id = {n.node_id: n for n in nodes}
        holders: dict[bytes, list[str]] = {}
        for node_id, found in listings.items():
            for chunk_id in found:
                holders.setdefault(chunk_id, []).append(node_id)
        report.chunks = len(holders)
        report.replicas = sum(len(h) for h in holders.values())
        self.metrics.chunks_scanned.inc(report.chunks)
        previous = view.previous
        r = view.settings.replicas
        for chunk_id, held_by in holders.items():
            if not self.keep_going():
                break
            owners = ring.replicas(chunk_id, r)
            moved = previous is not None and {n.node_id for n in previous.replicas(chunk_id, r)} != {
                n.node_id for n in owners
            }
            complete = True
            for owner in owners:
                if owner.node_id in held_by:
                    continue
                if owner.node_id not in listings:  # down or not listed: cannot tell, cannot copy
                    complete = False
                    continue
                if await self.copy_to(chunk_id, owner):
                    report.copied += 1
                    if moved:
                        report.copied_rebalance += 1
                    self.metrics.replicas_copied.labels("rebalance" if moved else "antientropy").inc()
                else:
                    report.failed += 1
                    complete = False
            if not complete or len(owners) < r:
                continue
            owner_ids = {n.node_id for n in owners}
            for node_id in held_by:
                if node_id not in owner_ids and node_id in by_id:
                    if await self._drop(by_id[node_id], [chunk_id]):
                        report.dropped += 1
                        self.metrics.replicas_dropped.inc()
        self.metrics.background_passes.labels("antientropy").inc()
        return report
