"""The other workers of a `pails server --workers N` group, over unix sockets (decision 0007).

Each worker serves a tiny internal HTTP API on RUN_DIR/w{k}.sock (RUN_DIR: a private temporary
directory the parent creates and removes): `POST /gc` runs its garbage collector, `GET /stats` returns
its chunk-store stats. The admin API sums them over the group, so that a GC trigger frees every
worker's chunks and the stats describe the whole store, whichever worker the request reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from pails.service.gc import GarbageCollector

_START_WAIT = 30.0


class Peers:
    def __init__(self, run_dir: Path, worker: int, workers: int) -> None:
        self.run_dir = run_dir
        self.worker = worker
        self.workers = workers
        self._runner: web.AppRunner | None = None

    def socket_path(self, k: int) -> Path:
        return self.run_dir / f"w{k}.sock"

    def all_listening(self) -> bool:
        """Every worker of the group has its socket: each creates it before it serves S3, so the
        group is complete (what /health/ready reports)."""
        return all(self.socket_path(k).exists() for k in range(self.workers))

    async def start(
        self,
        gc: GarbageCollector,
        forget_bucket: Callable[[str], None] | None = None,
        forget_credentials: Callable[[], None] | None = None,
        fold_metrics: Callable[[], None] | None = None,
    ) -> None:
        """forget_bucket: drop a bucket from this worker's authorization cache (POST /forget);
        forget_credentials: drop this worker's cached IAM lookups (POST /forget-credentials);
        fold_metrics: write this worker's pending request counts to the shared metric files
        (POST /fold-metrics)."""

        async def run_gc(request: web.Request) -> web.Response:
            return web.json_response(await gc.run_once(sweep_orphans=True, immediate=True))

        async def stats(request: web.Request) -> web.Response:
            return web.json_response(gc.store_stats())

        async def forget(request: web.Request) -> web.Response:
            if forget_bucket is not None:
                forget_bucket(request.query.get("bucket", ""))
            return web.json_response({})

        async def forget_iam(request: web.Request) -> web.Response:
            if forget_credentials is not None:
                forget_credentials()
            return web.json_response({})

        async def fold(request: web.Request) -> web.Response:
            if fold_metrics is not None:
                fold_metrics()
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/fold-metrics", fold)
        app.router.add_post("/forget", forget)
        app.router.add_post("/forget-credentials", forget_iam)
        app.router.add_post("/gc", run_gc)
        app.router.add_get("/stats", stats)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.socket_path(self.worker))).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _call(self, k: int, method: str, path: str, wait: float = 0.0) -> dict[str, Any]:
        """`wait`: seconds to wait for a worker that has not created its socket yet (starting)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        # Another process creates the socket: nothing in this one can signal it, so poll.
        while not self.socket_path(k).exists() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        timeout = aiohttp.ClientTimeout(total=600)
        connector = aiohttp.UnixConnector(path=str(self.socket_path(k)))
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.request(method, f"http://worker{k}{path}") as resp,
        ):
            resp.raise_for_status()
            body: dict[str, Any] = await resp.json()
            return body

    def _others(self) -> list[int]:
        return [k for k in range(self.workers) if k != self.worker]

    async def _tell_others(self, path: str) -> None:
        """POST to every other worker; one that fails is skipped (its cache expires by TTL)."""
        await asyncio.gather(*(self._call(k, "POST", path) for k in self._others()), return_exceptions=True)

    async def forget_bucket(self, name: str) -> None:
        """Tell the other workers that a bucket's policy, ACL, PublicAccessBlock or owner changed."""
        await self._tell_others("/forget?" + urlencode({"bucket": name}))

    async def forget_credentials(self) -> None:
        """Tell the other workers that users, keys, groups, roles or policies changed."""
        await self._tell_others("/forget-credentials")

    async def fold_metrics(self) -> None:
        """Have the other workers write their pending request counts (before a /metrics scrape)."""
        await self._tell_others("/fold-metrics")

    async def gather(self, method: str, path: str) -> list[dict[str, Any]]:
        """The answers of every other worker (one still starting is waited for, up to 30 s)."""
        calls = (self._call(k, method, path, wait=_START_WAIT) for k in self._others())
        return list(await asyncio.gather(*calls))


def summed(mine: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """Field-wise sums of numeric reports."""
    total = dict(mine)
    for other in others:
        for key, value in other.items():
            if isinstance(value, int | float) and isinstance(total.get(key, 0), int | float):
                total[key] = total.get(key, 0) + value
    return total
