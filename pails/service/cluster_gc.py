"""Garbage collection on a cluster: the GC queue as on one node, plus an orphan sweep over every
node's chunk list (chunks that no committed object or part names: failed, aborted or crashed
writes, replicas left on nodes that were down when their object was deleted).

Unlike the single-node sweep, the cutoff is never the process start: other gateways may be
writing. A chunk is an orphan only if every node that lists it wrote it more than the grace
period ago and it is not waiting in the GC queue (replaced chunks keep their read grace there),
and it is deleted from every node that holds it.
"""

from __future__ import annotations

import logging
import time

from pails.data.placement import ReplicatedChunkStore
from pails.data.repair import Repairer
from pails.meta.store import MetadataStore
from pails.obs.metrics import Metrics
from pails.service.gc import GarbageCollector

log = logging.getLogger("pails.gc")

_QUEUE_PEEK = 10_000_000  # queued chunks excluded from a sweep (their ids only: 16 bytes each)


class ClusterGarbageCollector(GarbageCollector):
    def __init__(
        self,
        meta: MetadataStore,
        chunks: ReplicatedChunkStore,
        metrics: Metrics,
        *,
        grace_seconds: float,
        read_grace_seconds: float = 300.0,
    ) -> None:
        super().__init__(
            meta,
            chunks,
            metrics,
            grace_seconds=grace_seconds,
            garbage_ratio=1.0,
            read_grace_seconds=read_grace_seconds,
        )
        self._cluster = chunks
        self._swept_since_start = True  # no start-time sweep: the cutoff is the grace period alone

    async def _sweep_orphans(self) -> int:
        view = self._cluster.view
        nodes = [n for n in view.nodes() if view.is_up(n.node_id)]
        listings = await Repairer(self._cluster).list_all(nodes)
        cutoff = time.time() - self._grace
        newest: dict[bytes, float] = {}
        for found in listings.values():
            for chunk_id, written in found.items():
                newest[chunk_id] = max(written, newest.get(chunk_id, 0.0))
        candidates = {chunk_id for chunk_id, written in newest.items() if written < cutoff}
        if not candidates:
            return 0
        async for chunk_id in self._meta.referenced_chunks():
            candidates.discard(chunk_id)
        # Replaced chunks wait in the GC queue for the read grace (a GET may still stream them).
        for _, chunk_id in await self._meta.take_garbage(_QUEUE_PEEK, float("inf"), None):
            candidates.discard(chunk_id)
        if not candidates:
            return 0
        log.info("deleting %d orphaned chunks", len(candidates))
        by_id = {n.node_id: n for n in nodes}
        for node_id, found in listings.items():
            mine = [c for c in candidates if c in found]
            if mine:
                await self._cluster._delete_on([by_id[node_id]], mine)
        self._metrics.gc_chunks.inc(len(candidates))
        return len(candidates)

    async def run_once(self, *, sweep_orphans: bool = True, immediate: bool = False) -> dict[str, object]:
        """Every pass sweeps orphans on a cluster (nodes may have been down at delete time)."""
        return await super().run_once(sweep_orphans=True, immediate=immediate)
