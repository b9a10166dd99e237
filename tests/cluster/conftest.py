"""Fixtures of the cluster fault tests: real `pails node` and `pails gateway` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clusterutil import Cluster

SERIAL_FIXTURES = {"make_cluster", "dev_cluster"}


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whole clusters run with sub-second node timeouts and probe intervals (FAST_SETTINGS), and the
    fault tests bound latencies: a test on one is `serial`, run alone by scripts/test (decision 0020)."""
    for item in items:
        if SERIAL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.serial)


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start nodes, one gateway (SQLite metadata) and register the nodes; everything is stopped
    afterwards, even when the test fails (stopped processes get SIGCONT first)."""
    made: list[Cluster] = []

    def make(
        nodes: int = 3,
        replicas: int = 3,
        write_quorum: int = 2,
        settings: dict[str, str] | None = None,
        metadata_url: str | None = None,
        gateways: int = 1,
        node_args: list[str] | None = None,
    ) -> Cluster:
        cluster = Cluster(
            base=tmp_path,
            metadata_url=metadata_url or f"sqlite://{tmp_path / 'meta.db'}",
            replicas=replicas,
            write_quorum=write_quorum,
            settings=settings or {},
        )
        made.append(cluster)
        for _ in range(nodes):
            cluster.add_node_process(node_args)
        for _ in range(gateways):
            cluster.add_gateway()
        cluster.register_nodes()
        for k in range(gateways):
            cluster.wait_nodes(nodes, gateway=k, ring_version=nodes)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()
