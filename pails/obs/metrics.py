"""Prometheus metrics of the S3 endpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


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
        self.bytes_in = Counter(
            "pails_s3_bytes_received", "Request body bytes received", registry=self.registry
        )
        self.bytes_out = Counter("pails_s3_bytes_sent", "Response body bytes sent", registry=self.registry)
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
        # Child metrics are looked up once per (api, status), not per request.
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def observe(self, api: str, status: int, seconds: float) -> None:
        counter = self._request_children.get((api, status))
        if counter is None:
            counter = self._request_children[(api, status)] = self.requests.labels(api, str(status))
        counter.inc()
        histogram = self._latency_children.get(api)
        if histogram is None:
            histogram = self._latency_children[api] = self.latency.labels(api)
        histogram.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self._render_registry)
