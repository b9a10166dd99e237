"""The gateway's view of the cluster: the current and previous ring, a client per node, health.

The ring is read from the metadata database at start and again every `ring_refresh_seconds`
(and at once after a membership change made through this gateway). Health comes from probes:
every `probe_interval_seconds` each node's /health is asked with `probe_timeout_seconds`; a node
that fails is down until it answers again. The data path also marks a node down at once when it
refuses a connection, so the next requests skip it without waiting for the probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp

from pails.cluster_settings import ClusterSettings
from pails.data.client import NodeClient, NodeStats
from pails.data.ring import Node, Ring
from pails.meta.cluster import ClusterStore
from pails.obs.cluster_metrics import ClusterMetrics

log = logging.getLogger("pails.cluster")


@dataclass(slots=True)
class NodeHealth:
    up: bool = True  # optimistic until the first probe: a fresh gateway must serve at once
    since: float = 0.0
    last_error: str = ""
    stats: NodeStats | None = None


class ClusterView:
    def __init__(
        self, store: ClusterStore, settings: ClusterSettings, metrics: ClusterMetrics
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.ring: Ring | None = None
        self.previous: Ring | None = None
        self.health: dict[str, NodeHealth] = {}
        self._clients: dict[tuple[str, str, bool], NodeClient] = {}
        self._session: aiohttp.ClientSession | None = None
        self._write_session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._secret = (settings.cluster_secret or "").encode()

    async def start(self) -> None:
        # Uploads get a connection pool of their own: aiohttp can leave a pooled connection with the
        # read timer of its previous request armed (a 5 s read), which then fires in the middle of
        # a long upload that waits for an fsync.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=64, enable_cleanup_closed=True),
            auto_decompress=False,
        )
        self._write_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=64, enable_cleanup_closed=True),
            auto_decompress=False,
        )
        await self.refresh()
        await self.probe_all()
        self._tasks = [
            asyncio.create_task(self._every(self.settings.ring_refresh_seconds, self.refresh)),
            asyncio.create_task(self._every(self.settings.probe_interval_seconds, self.probe_all)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for session in (self._session, self._write_session):
            if session is not None:
                await session.close()
        self._session = self._write_session = None

    async def _every(self, seconds: float, job: object) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()  # type: ignore[operator]
            except Exception:
                log.exception("cluster view: %s failed", getattr(job, "__name__", job))

    async def refresh(self) -> None:
        rings = await self.store.rings(2)
        self.ring = rings[0] if rings else None
        self.previous = rings[1] if len(rings) > 1 else None
        self.metrics.ring_version.set(self.ring.version if self.ring else 0)

    # -- nodes ---------------------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        """Every node of the current and the previous ring (current entries first)."""
        seen: dict[str, Node] = {}
        for ring in (self.ring, self.previous):
            if ring is not None:
                for node in ring.nodes:
                    seen.setdefault(node.node_id, node)
        return list(seen.values())

    def client(self, node: Node, *, write: bool = False) -> NodeClient:
        """The node's client; `write`: the one for chunk uploads, whose answer waits for an fsync
        (`node_write_timeout`, longer than the `node_read_timeout` of everything else)."""
        key = (node.node_id, node.address, write)
        found = self._clients.get(key)
        if found is None:
            session = self._write_session if write else self._session
            if session is None:
                raise RuntimeError("the cluster view is not started")
            settings = self.settings
            found = self._clients[key] = NodeClient(
                node.address,
                self._secret,
                session,
                connect_timeout=settings.node_connect_timeout,
                read_timeout=settings.node_write_timeout if write else settings.node_read_timeout,
            )
        return found

    def is_up(self, node_id: str) -> bool:
        health = self.health.get(node_id)
        return health is None or health.up

    def mark_down(self, node_id: str, reason: str) -> None:
        health = self.health.setdefault(node_id, NodeHealth())
        if health.up:
            log.warning("node %s is down: %s", node_id, reason)
            health.up, health.since = False, time.time()
        health.last_error = reason

    def _mark_up(self, node_id: str) -> NodeHealth:
        health = self.health.setdefault(node_id, NodeHealth())
        if not health.up:
            log.info("node %s is up again", node_id)
            health.up, health.since = True, time.time()
        health.last_error = ""
        return health

    async def probe(self, node: Node) -> None:
        client = self.client(node)
        try:
            async with asyncio.timeout(self.settings.probe_timeout_seconds):
                ok = await client.health()
                stats = await client.stats() if ok else None
        except Exception as exc:  # timeouts, refusals, resets, bad answers: all mean "down"
            self.mark_down(node.node_id, repr(exc) or type(exc).__name__)
            return
        if not ok:
            self.mark_down(node.node_id, "health check failed")
            return
        self._mark_up(node.node_id).stats = stats

    async def probe_all(self) -> None:
        nodes = self.nodes()
        await asyncio.gather(*(self.probe(n) for n in nodes))
        up = sum(1 for n in nodes if self.is_up(n.node_id))
        self.metrics.nodes_up.set(up)
        self.metrics.nodes_down.set(len(nodes) - up)

    # -- placement -----------------------------------------------------------------------------

    def owners(self, chunk_id: bytes) -> tuple[Node, ...]:
        """The R nodes that should hold `chunk_id` under the current ring."""
        if self.ring is None:
            return ()
        return self.ring.replicas(chunk_id, self.settings.replicas)

    def read_order(self, chunk_id: bytes) -> Iterator[Node]:
        """Where to look for a chunk: its current owners (healthy first), then the previous ring's
        owners (a rebalance in progress), then every other node (handoffs), down nodes last."""
        r = self.settings.replicas
        ordered: list[Node] = []
        seen: set[str] = set()

        def add(nodes: Iterator[Node] | tuple[Node, ...]) -> None:
            for node in nodes:
                if node.node_id not in seen:
                    seen.add(node.node_id)
                    ordered.append(node)

        if self.ring is not None:
            add(self.ring.replicas(chunk_id, r))
        if self.previous is not None:
            add(self.previous.replicas(chunk_id, r))
        if self.ring is not None:
            # Draining nodes are in no replica set but still hold their chunks until moved.
            preference = tuple(self.ring.preference_list(chunk_id, r))
            add(tuple(n for n in preference if n.state == "draining"))
            add(preference)
        if self.previous is not None:
            add(self.previous.preference_list(chunk_id, r))
        up = [n for n in ordered if self.is_up(n.node_id)]
        down = [n for n in ordered if not self.is_up(n.node_id)]
        yield from up
        yield from down
