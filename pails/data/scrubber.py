"""The node's scrubber: re-verifies every chunk at rest at a bounded rate and records the corrupt
ones (NodeStore.corrupt) for the gateways' repair to re-create."""

from __future__ import annotations

import asyncio
import logging
import time

from pails.data.node_store import NodeStore
from pails.obs.node_metrics import NodeMetrics

log = logging.getLogger(__name__)

PER_CHUNK_COST = 4096
"""Bytes charged per chunk on top of its length, so that a pass over tiny chunks is paced too."""
PAGE = 1000


class Scrubber:
    def __init__(self, store: NodeStore, metrics: NodeMetrics, *, rate: float, interval: float) -> None:
        """rate: bytes per second verified at most; interval: seconds of rest between passes."""
        if rate <= 0:
            raise ValueError("the scrub rate must be positive")
        self.store = store
        self.metrics = metrics
        self.rate = rate
        self.interval = interval
        self.passes = 0
        self.last_pass_end: float | None = None

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scrubber pass failed")
            await asyncio.sleep(self.interval)

    async def run_pass(self) -> int:
        """Verify every chunk once; return how many were found corrupt."""
        found = 0
        after: bytes | None = None
        while True:
            page = self.store.list(after, PAGE)
            if not page:
                break
            for chunk_id, _ in page:
                length = self.store.chunks.chunk_length(chunk_id)
                if length is None:  # deleted since the listing
                    continue
                status = await self.store.verify(chunk_id)
                self.metrics.scrubbed_chunks.inc()
                self.metrics.scrubbed_bytes.inc(length)
                if status == "corrupt":
                    found += 1
                await asyncio.sleep((length + PER_CHUNK_COST) / self.rate)
            after = page[-1][0]
        self.passes += 1
        self.metrics.scrub_passes.inc()
        self.last_pass_end = time.time()
        return found
