"""Garbage collection: free the chunks of overwritten and deleted objects, sweep orphans, compact."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from typing import Any

from pails.data.engine import ChunkStore
from pails.meta.store import MetadataStore
from pails.obs.metrics import Metrics

log = logging.getLogger("pails.gc")

_BATCH = 1000


class GarbageCollector:
    def __init__(
        self,
        meta: MetadataStore,
        chunks: ChunkStore,
        metrics: Metrics,
        *,
        grace_seconds: float,
        garbage_ratio: float,
        read_grace_seconds: float = 300.0,
        upload_retention_seconds: float = 7 * 86400.0,
        owner: int | None = None,
    ) -> None:
        """owner: with several workers, this worker's number: it frees only the chunks it owns
        (the first byte of their id) and leaves the rest of the queue to their owners."""
        self._meta = meta
        self._chunks = chunks
        self._metrics = metrics
        self._grace = grace_seconds
        self._read_grace = read_grace_seconds
        self._ratio = garbage_ratio
        self._upload_retention = upload_retention_seconds
        self._started = time.time()
        self._lock = asyncio.Lock()
        self._swept_since_start = False
        self._owner = owner

    async def run_once(self, *, sweep_orphans: bool = False, immediate: bool = False) -> dict[str, Any]:
        """One pass; orphan sweeping also runs on the first pass after a start (crashed writes).

        Replaced chunks are freed only after a read grace period, so that a GET that was already
        streaming an object when it was overwritten can finish; `immediate` (the admin trigger)
        frees them at once.
        """
        async with self._lock:
            queued_before = time.time() - (0.0 if immediate else self._read_grace)
            deleted = await self._drain_queue(queued_before)
            orphans = 0
            if sweep_orphans or not self._swept_since_start:
                orphans = await self._sweep_orphans()
                self._swept_since_start = True
            reclaimed = await self._chunks.compact(self._ratio)
            self._metrics.gc_bytes_reclaimed.inc(reclaimed)
            purged = await self._purge_uploads(time.time() - self._upload_retention)
            self._publish_stats()
            return {
                "chunks_deleted": deleted,
                "orphans_deleted": orphans,
                "bytes_reclaimed": reclaimed,
                "uploads_purged": purged,
            }

    async def _purge_uploads(self, initiated_before: float) -> int:
        """Forget finished multipart uploads past the retention (one worker does it)."""
        if self._owner not in (None, 0):
            return 0
        total = 0
        for _ in range(1000):  # bounded: 1,000,000 rows a pass at most
            purged = await self._meta.purge_finished_uploads(initiated_before, _BATCH)
            total += purged
            if purged < _BATCH:
                break
        return total

    async def _drain_queue(self, queued_before: float) -> int:
        total = 0
        while True:
            batch = await self._meta.take_garbage(_BATCH, queued_before, self._owner)
            if not batch:
                return total
            await self._chunks.delete([chunk_id for _, chunk_id in batch])
            await self._meta.ack_garbage([queue_id for queue_id, _ in batch])
            total += len(batch)
            self._metrics.gc_chunks.inc(len(batch))

    async def _sweep_orphans(self) -> int:
        """Chunks no committed object references, written before the cutoff, are leftovers of
        writes that never committed (a crash, a failed request). Writes in flight are newer than
        the cutoff: the process start, or the grace period ago."""
        cutoff = max(self._started, time.time() - self._grace)
        candidates = [chunk_id for chunk_id, written in self._chunks.chunk_ids() if written < cutoff]
        if not candidates:
            return 0
        referenced = set()
        async for chunk_id in self._meta.referenced_chunks():
            referenced.add(chunk_id)
        orphans = [chunk_id for chunk_id in candidates if chunk_id not in referenced]
        if orphans:
            log.info("deleting %d orphaned chunks", len(orphans))
            await self._chunks.delete(orphans)
            self._metrics.gc_chunks.inc(len(orphans))
        return len(orphans)

    def _publish_stats(self) -> None:
        stats = self._chunks.stats()
        self._metrics.store_live_bytes.set(stats.live_bytes)
        self._metrics.store_garbage_bytes.set(stats.garbage_bytes)
        self._metrics.store_chunks.set(stats.chunks)

    def store_stats(self) -> dict[str, Any]:
        return asdict(self._chunks.stats())

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("garbage collection pass failed")
            await asyncio.sleep(interval)
