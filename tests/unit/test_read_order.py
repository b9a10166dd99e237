"""Where a gateway looks for a chunk (ClusterView.read_order): pure given the rings and health."""

from __future__ import annotations

import os
from pathlib import Path

from pails.cluster_settings import ClusterSettings
from pails.data.membership import ClusterView, NodeHealth
from pails.data.ring import Node, build_ring
from pails.meta.cluster_sqlite import SqliteClusterStore
from pails.obs.cluster_metrics import ClusterMetrics
from pails.obs.metrics import Metrics


def _view(tmp_path: Path) -> ClusterView:
    settings = ClusterSettings(replicas=3, write_quorum=2, cluster_secret="s")
    return ClusterView(SqliteClusterStore(tmp_path / "m.db"), settings, ClusterMetrics(Metrics()))


def _nodes(n: int) -> list[Node]:
    return [Node(f"n{k}", f"127.0.0.1:{7000 + k}", f"z{k}", 1.0) for k in range(n)]


def test_owners_first_then_the_previous_rings_owners_then_the_rest_down_nodes_last(tmp_path: Path) -> None:
    view = _view(tmp_path)
    old = build_ring(_nodes(4), version=1)
    new = build_ring(_nodes(6), version=2)
    view.ring, view.previous = new, old
    for _ in range(200):
        chunk_id = os.urandom(16)
        order = [n.node_id for n in view.read_order(chunk_id)]
        owners = [n.node_id for n in new.replicas(chunk_id, 3)]
        assert order[:3] == owners
        assert sorted(order) == sorted(n.node_id for n in new.nodes)  # every node, once
        old_owners = {n.node_id for n in old.replicas(chunk_id, 3)}
        rest = order[3:]
        moved_from = [i for i, node_id in enumerate(rest) if node_id in old_owners]
        others = [i for i, node_id in enumerate(rest) if node_id not in old_owners]
        assert not moved_from or not others or max(moved_from) < min(others)
    chunk_id = os.urandom(16)
    first = next(iter(view.read_order(chunk_id)))
    view.health[first.node_id] = NodeHealth(up=False)
    order = list(view.read_order(chunk_id))
    assert order[-1].node_id == first.node_id
    assert order[0].node_id != first.node_id


def test_a_draining_owner_is_still_read_before_the_other_nodes(tmp_path: Path) -> None:
    view = _view(tmp_path)
    nodes = _nodes(5)
    before = build_ring(nodes, version=1)
    chunk_id = next(
        c for c in (os.urandom(16) for _ in range(1000)) if before.replicas(c, 3)[0].node_id == "n0"
    )
    drained = [
        Node(n.node_id, n.address, n.zone, n.weight, "draining" if n.node_id == "n0" else "up") for n in nodes
    ]
    view.ring = build_ring(drained, version=2)
    order = [n.node_id for n in view.read_order(chunk_id)]
    assert "n0" in order[:4]
