"""The gateway's background jobs (repair, anti-entropy/rebalance, GC) and the lease that lets only
one gateway of a cluster run them at a time.

The lease is a row in the metadata database (`leases`, name "background"): a gateway takes it
when it is free or expired and renews it every third of `lease_seconds`. A gateway that stops
renewing (crash, partition) loses it after `lease_seconds`, and another one takes over. Jobs
check the lease between batches, so a gateway that lost it stops within one batch. Two gateways
overlapping briefly is harmless: every job is idempotent (copies of the same bytes, deletes of
chunks nobody references).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from typing import Any

from pails.cluster_settings import ClusterSettings
from pails.config import Settings
from pails.data.placement import ReplicatedChunkStore
from pails.data.repair import Repairer
from pails.service.cluster_gc import ClusterGarbageCollector

log = logging.getLogger("pails.cluster.jobs")

LEASE = "background"


class BackgroundJobs:
    def __init__(
        self,
        store: ReplicatedChunkStore,
        gc: ClusterGarbageCollector,
        settings: Settings,
        cluster_settings: ClusterSettings,
    ) -> None:
        self.store = store
        self.view = store.view
        self.gc = gc
        self.settings = settings
        self.cs = cluster_settings
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.held = False
        self.repairer = Repairer(store, keep_going=lambda: self.held or self._manual > 0)
        self._manual = 0
        self._lock = asyncio.Lock()
        self._last: dict[str, float] = {}
        self.last_reports: dict[str, Any] = {}

    async def _renew(self) -> None:
        try:
            self.held = await self.view.store.acquire_lease(
                LEASE, self.holder, self.cs.lease_seconds, time.time()
            )
        except Exception:
            log.exception("could not renew the background lease")
            self.held = False
        self.view.metrics.lease_held.set(1 if self.held else 0)

    def _due(self, job: str, interval: float, now: float) -> bool:
        return now - self._last.get(job, 0.0) >= interval

    async def run_job(self, job: str) -> Any:
        async with self._lock:
            if job == "repair":
                report: Any = await self.repairer.repair_pass()
            elif job == "antientropy":
                report = (await self.repairer.walk_pass()).as_dict()
            elif job == "gc":
                report = await self.gc.run_once(sweep_orphans=True)
            else:
                raise ValueError(job)
            self._last[job] = time.monotonic()
            self.last_reports[job] = report
            return report

    async def run_now(self, jobs: list[str]) -> dict[str, Any]:
        """Run the given jobs at once on this gateway (the admin trigger), lease or not."""
        self._manual += 1
        try:
            return {job: await self.run_job(job) for job in jobs}
        finally:
            self._manual -= 1

    async def run_forever(self) -> None:
        tick = max(0.05, min(self.cs.lease_seconds / 3, self.cs.repair_interval_seconds))
        schedule = (
            ("repair", self.cs.repair_interval_seconds),
            ("antientropy", self.cs.antientropy_interval_seconds),
            ("gc", self.settings.gc_interval_seconds),
        )
        start = time.monotonic()
        for job, _ in schedule:  # first runs one interval after the start, not at once
            self._last[job] = start
        renewed = 0.0
        try:
            while True:
                now = time.monotonic()
                if now - renewed >= self.cs.lease_seconds / 3:
                    await self._renew()
                    renewed = now
                if self.held:
                    for job, interval in schedule:
                        if self._due(job, interval, time.monotonic()) and self.held:
                            try:
                                await self.run_job(job)
                            except Exception:
                                log.exception("background job %s failed", job)
                                self._last[job] = time.monotonic()
                            if time.monotonic() - renewed >= self.cs.lease_seconds / 3:
                                await self._renew()
                                renewed = time.monotonic()
                await asyncio.sleep(tick)
        finally:
            if self.held:
                with contextlib.suppress(Exception):
                    await self.view.store.release_lease(LEASE, self.holder)
