"""Prometheus metrics of a cluster gateway (added to the gateway's /metrics registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from pails.obs.metrics import Metrics


class ClusterMetrics:
    def __init__(self, metrics: Metrics) -> None:
        reg = metrics.registry
        self.replica_writes = Counter(
            "pails_cluster_replica_writes", "Chunk replica writes by outcome", ["outcome"], registry=reg
        )
        self.hinted_writes = Counter(
            "pails_cluster_hinted_writes", "Replicas written to a handoff node", registry=reg
        )
        self.quorum_failures = Counter(
            "pails_cluster_quorum_failures", "Chunk writes with fewer than W acknowledgements", registry=reg
        )
        self.read_failovers = Counter(
            "pails_cluster_read_failovers", "Reads that moved on to another replica", ["reason"], registry=reg
        )
        self.repairs_queued = Counter(
            "pails_cluster_repairs_queued", "Replicas queued for repair", ["reason"], registry=reg
        )
        self.repairs_done = Counter(
            "pails_cluster_repairs_done", "Repair queue entries processed", ["outcome"], registry=reg
        )
        self.replicas_copied = Counter(
            "pails_cluster_replicas_copied", "Replicas copied by background jobs", ["job"], registry=reg
        )
        self.replicas_dropped = Counter(
            "pails_cluster_replicas_dropped",
            "Replicas deleted from nodes that no longer own them (handoffs, rebalancing)",
            registry=reg,
        )
        self.chunks_scanned = Counter(
            "pails_cluster_chunks_scanned", "Chunk ids walked by anti-entropy", registry=reg
        )
        self.background_passes = Counter(
            "pails_cluster_background_passes", "Background job passes", ["job"], registry=reg
        )
        self.nodes_up = Gauge("pails_cluster_nodes_up", "Nodes answering their health probe", registry=reg)
        self.nodes_down = Gauge("pails_cluster_nodes_down", "Nodes not answering", registry=reg)
        self.ring_version = Gauge("pails_cluster_ring_version", "The ring version in use", registry=reg)
        self.repair_backlog = Gauge("pails_cluster_repair_backlog", "Queued repairs", registry=reg)
        self.lease_held = Gauge(
            "pails_cluster_background_lease", "1 if this gateway runs the background jobs", registry=reg
        )
