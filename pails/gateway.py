"""Assembles and runs a cluster gateway (`pails gateway`): the S3 front of pails/server.py over
the replicated chunk store, with the cluster view, the admin API and the background jobs.

A gateway keeps no state of its own: metadata (objects, membership, the ring, the repair queue,
the background lease) is in the metadata database, chunks are on the storage nodes, and the root
credentials come from the environment. Several gateways can share one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from pails.cluster_settings import ClusterSettings
from pails.config import Settings
from pails.data.membership import ClusterView
from pails.data.placement import ReplicatedChunkStore
from pails.iam.credentials import load_or_create_root
from pails.meta.cluster import ClusterStore, create_cluster_store
from pails.meta.factory import create_metadata_store, describe
from pails.obs.cluster_metrics import ClusterMetrics
from pails.obs.metrics import Metrics
from pails.server import _install_uvloop, build_services, start_http, stop_event
from pails.service.cluster_gc import ClusterGarbageCollector
from pails.service.cluster_jobs import LEASE, BackgroundJobs

log = logging.getLogger("pails.gateway")


class GatewayConfigError(ValueError):
    """A setting the gateway cannot start without is missing or wrong."""


@dataclass(slots=True)
class ClusterRuntime:
    settings: ClusterSettings
    view: ClusterView
    store: ReplicatedChunkStore
    jobs: BackgroundJobs

    async def status(self) -> dict[str, Any]:
        view = self.view
        backlog = await view.store.repair_backlog()
        nodes = []
        for record in await view.store.list_nodes():
            health = view.health.get(record.node_id)
            stats = health.stats if health is not None else None
            nodes.append(
                {
                    **record.to_dict(),
                    "up": view.is_up(record.node_id),
                    "last_error": health.last_error if health is not None else "",
                    "capacity": stats.capacity if stats else None,
                    "used": stats.used if stats else None,
                    "free": stats.free if stats else None,
                    "chunks": stats.chunks if stats else None,
                    "corrupt": stats.corrupt if stats else None,
                    "repair_backlog": backlog.get(record.node_id, 0),
                }
            )
        return {
            "ring_version": view.ring.version if view.ring else 0,
            "previous_ring_version": view.previous.version if view.previous else None,
            "replicas": self.settings.replicas,
            "write_quorum": self.settings.write_quorum,
            "background_lease": {"holder": self.jobs.holder, "held": self.jobs.held, "name": LEASE},
            "repair_backlog": sum(backlog.values()),
            "nodes": nodes,
            "last_jobs": self.jobs.last_reports,
        }


def check_gateway_settings(settings: Settings, cluster: ClusterSettings) -> None:
    if not settings.metadata_url:
        raise GatewayConfigError("a gateway needs --metadata (sqlite:///path or postgresql://...)")
    if not (settings.root_access_key and settings.root_secret_key):
        raise GatewayConfigError(
            "a gateway needs PAILS_ROOT_ACCESS_KEY and PAILS_ROOT_SECRET_KEY (gateways keep no state)"
        )
    if not settings.server_key:
        raise GatewayConfigError(
            "a gateway needs PAILS_SERVER_KEY (the key IAM secrets are encrypted with; every gateway "
            "sharing the metadata database must use the same one)"
        )
    try:
        cluster.check()
    except ValueError as exc:
        raise GatewayConfigError(str(exc)) from None


async def serve_gateway(settings: Settings, cluster_settings: ClusterSettings) -> None:
    check_gateway_settings(settings, cluster_settings)
    url = settings.metadata_url or ""
    root, _ = load_or_create_root(settings.data_dir, settings.root_access_key, settings.root_secret_key)
    meta = create_metadata_store(url)
    cluster_store: ClusterStore = create_cluster_store(url)
    log.info("metadata store: %s", describe(url))
    await meta.open()
    await cluster_store.open()
    metrics = Metrics()
    cluster_metrics = ClusterMetrics(metrics)
    view = ClusterView(cluster_store, cluster_settings, cluster_metrics)
    await view.start()
    chunks = ReplicatedChunkStore(view)
    gc = ClusterGarbageCollector(meta, chunks, metrics, grace_seconds=settings.gc_grace_seconds)
    jobs = BackgroundJobs(chunks, gc, settings, cluster_settings)
    services = await build_services(settings, root, meta, chunks, gc, metrics)
    services.cluster = ClusterRuntime(cluster_settings, view, chunks, jobs)
    http = await start_http(services, settings)
    services.ready = True
    nodes = len(view.ring.nodes) if view.ring else 0
    print(
        f"Pails gateway is serving S3 on http://{settings.address} "
        f"(R={cluster_settings.replicas}, W={cluster_settings.write_quorum}, {nodes} nodes, "
        f"metadata: {describe(url)})",
        flush=True,
    )
    stop = stop_event()
    jobs_task = asyncio.create_task(jobs.run_forever())
    try:
        await stop.wait()
    finally:
        services.ready = False
        jobs_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await jobs_task
        await http.close()
        await services.access.close()
        await chunks.close()
        await view.stop()
        await cluster_store.close()
        await meta.close()
        log.info("Pails gateway stopped")


def run_gateway(settings: Settings, cluster_settings: ClusterSettings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    _install_uvloop()
    asyncio.run(serve_gateway(settings, cluster_settings))
