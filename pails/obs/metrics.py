"""Prometheus metrics of the S3 endpoint.

Per request, the counts go to plain dicts of this process (a prometheus_client update takes a
lock, and in multiprocess mode writes a memory-mapped file: ~10 us a request here). They are
folded into the prometheus_client collectors when /metrics is scraped (`scrape`): with several
workers, the scraped worker first asks the others to fold theirs (`before_scrape`), so the sums
over the group's files are as complete as when every request updated them.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Upper bounds as the histogram keeps them (+Inf last): an observation lands in the first bucket
# whose bound is >= it, which is what bisect_left finds.
_BOUNDS = (*(float(b) for b in _LATENCY_BUCKETS), float("inf"))
_SUM = len(_BOUNDS)  # a pending latency row: the count per bucket, then the sum of the seconds


class PendingCounter:
    """A Counter's `inc` that only adds to a number; `fold` passes the total on to the Counter."""

    __slots__ = ("_counter", "_pending")

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._pending = 0.0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self._pending += amount

    def fold(self) -> None:
        pending, self._pending = self._pending, 0.0
        if pending:
            self._counter.inc(pending)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        """multiprocess_dir: with several workers, a directory they share (prometheus-client's
        multiprocess mode): each worker writes its values there and /metrics sums them all."""
        self.registry = CollectorRegistry()
        self._render_registry = self.registry
        gauge_mode: dict[str, Any] = {}
        if multiprocess_dir is not None:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(multiprocess_dir)
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
            self._render_registry = CollectorRegistry()
            MultiProcessCollector(self._render_registry, str(multiprocess_dir))  # type: ignore[no-untyped-call]
            gauge_mode = {"multiprocess_mode": "livesum"}
        self.requests = Counter(
            "pails_s3_requests",
            "S3 requests by API and HTTP status",
            ["api", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pails_s3_request_seconds",
            "S3 request latency by API",
            ["api"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bytes_in = PendingCounter(
            Counter("pails_s3_bytes_received", "Request body bytes received", registry=self.registry)
        )
        self.bytes_out = PendingCounter(
            Counter("pails_s3_bytes_sent", "Response body bytes sent", registry=self.registry)
        )
        self.gc_chunks = Counter("pails_gc_chunks_deleted", "Chunks deleted by GC", registry=self.registry)
        self.gc_bytes_reclaimed = Counter(
            "pails_gc_bytes_reclaimed", "Bytes reclaimed by compaction", registry=self.registry
        )
        self.store_live_bytes = Gauge(
            "pails_store_live_bytes", "Bytes of live chunks", registry=self.registry, **gauge_mode
        )
        self.store_garbage_bytes = Gauge(
            "pails_store_garbage_bytes",
            "Bytes of deleted chunks not yet compacted",
            registry=self.registry,
            **gauge_mode,
        )
        self.store_chunks = Gauge("pails_store_chunks", "Chunks stored", registry=self.registry, **gauge_mode)
        self.before_scrape: Callable[[], Awaitable[None]] | None = None
        """Asks the other workers of a --workers group to `fold` (set by the server)."""
        # Not yet folded: requests by (api, status); latency rows by api.
        self._pending_requests: dict[tuple[str, int], int] = {}
        self._pending_latency: dict[str, list[float]] = {}
        # Child metrics are looked up once per (api, status), not per fold.
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def observe(self, api: str, status: int, seconds: float) -> None:
        requests = self._pending_requests
        key = (api, status)
        requests[key] = requests.get(key, 0) + 1
        row = self._pending_latency.get(api)
        if row is None:
            row = self._pending_latency[api] = [0.0] * (_SUM + 1)
        row[bisect_left(_BOUNDS, seconds)] += 1
        row[_SUM] += seconds

    def fold(self) -> None:
        """Pass this process's pending counts on to the prometheus_client collectors."""
        requests, self._pending_requests = self._pending_requests, {}
        for (api, status), count in requests.items():
            counter = self._request_children.get((api, status))
            if counter is None:
                counter = self._request_children[(api, status)] = self.requests.labels(api, str(status))
            counter.inc(count)
        latency, self._pending_latency = self._pending_latency, {}
        for api, row in latency.items():
            histogram = self._latency_children.get(api)
            if histogram is None:
                histogram = self._latency_children[api] = self.latency.labels(api)
            # Histogram.observe takes one value at a time: add the counts to its buckets as it would.
            for index in range(_SUM):
                if row[index]:
                    histogram._buckets[index].inc(row[index])
            histogram._sum.inc(row[_SUM])
        self.bytes_in.fold()
        self.bytes_out.fold()

    def render(self) -> bytes:
        """This process's view (with several workers: the sum of their last folds)."""
        self.fold()
        return generate_latest(self._render_registry)

    async def scrape(self) -> bytes:
        """/metrics: every worker's counts up to now."""
        if self.before_scrape is not None:
            await self.before_scrape()
        return self.render()
