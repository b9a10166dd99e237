"""Prometheus metrics of a storage node."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pails.data.node_store import NodeUsage

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class NodeMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "pails_node_requests", "Node requests by operation and status", ["op", "status"], registry=r
        )
        self.latency = Histogram(
            "pails_node_request_seconds", "Node request latency", ["op"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.auth_failures = Counter(
            "pails_node_auth_failures", "Requests refused: bad signature", registry=r
        )
        self.bytes_in = Counter("pails_node_bytes_received", "Chunk bytes received", registry=r)
        self.bytes_out = Counter("pails_node_bytes_sent", "Chunk bytes sent", registry=r)
        self.scrubbed_chunks = Counter(
            "pails_node_scrubbed_chunks", "Chunks verified by the scrubber", registry=r
        )
        self.scrubbed_bytes = Counter(
            "pails_node_scrubbed_bytes", "Bytes verified by the scrubber", registry=r
        )
        self.scrub_passes = Counter("pails_node_scrub_passes", "Completed scrubber passes", registry=r)
        self.corrupt_found = Counter(
            "pails_node_corrupt_found", "Corrupt chunks found (reads, scrubs)", registry=r
        )
        self.capacity = Gauge("pails_node_capacity_bytes", "Capacity", registry=r)
        self.used = Gauge("pails_node_used_bytes", "Bytes of volume files", registry=r)
        self.free = Gauge("pails_node_free_bytes", "Bytes free for chunks", registry=r)
        self.chunks = Gauge("pails_node_chunks", "Chunks stored", registry=r)
        self.corrupt = Gauge("pails_node_corrupt_chunks", "Chunks known corrupt, awaiting repair", registry=r)
        self.garbage = Gauge("pails_node_garbage_bytes", "Bytes of deleted chunks not compacted", registry=r)
        self._corrupt_found = 0
        self._children: dict[tuple[str, int], Counter] = {}
        self._hist: dict[str, Histogram] = {}

    def observe(self, op: str, status: int, seconds: float) -> None:
        c = self._children.get((op, status))
        if c is None:
            c = self._children[(op, status)] = self.requests.labels(op, str(status))
        c.inc()
        h = self._hist.get(op)
        if h is None:
            h = self._hist[op] = self.latency.labels(op)
        h.observe(seconds)

    def render(self, usage: NodeUsage) -> bytes:
        self.capacity.set(usage.capacity)
        self.used.set(usage.used)
        self.free.set(usage.free)
        self.chunks.set(usage.chunks)
        self.corrupt.set(usage.corrupt)
        self.garbage.set(usage.garbage)
        self.corrupt_found.inc(usage.corrupt_found - self._corrupt_found)
        self._corrupt_found = usage.corrupt_found
        return generate_latest(self.registry)
