"""Real cluster processes for tests: storage nodes (`pails node`) and gateways (`pails gateway`) on
127.0.0.1, with short background intervals so that the fault tests stay fast."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from ports import free_port

from pails.admin_client import AdminClient

ROOT = Path(__file__).resolve().parents[2]

FAST_SETTINGS = {
    "PAILS_NODE_CONNECT_TIMEOUT": "0.5",
    "PAILS_NODE_READ_TIMEOUT": "2",
    "PAILS_NODE_WRITE_TIMEOUT": "10",
    "PAILS_WRITE_STRAGGLER_SECONDS": "0.5",
    "PAILS_PROBE_INTERVAL_SECONDS": "0.3",
    "PAILS_PROBE_TIMEOUT_SECONDS": "0.5",
    "PAILS_RING_REFRESH_SECONDS": "1",
    "PAILS_LEASE_SECONDS": "3",
    "PAILS_REPAIR_INTERVAL_SECONDS": "1",
    "PAILS_ANTIENTROPY_INTERVAL_SECONDS": "3",
    "PAILS_BACKGROUND_COPIES_PER_SECOND": "2000",
    "PAILS_GC_INTERVAL_SECONDS": "3600",
    "PAILS_GC_GRACE_SECONDS": "3600",
    "PAILS_LOG_LEVEL": "warning",
}


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.3):
        return True
    return False


@dataclass
class Proc:
    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    stopped: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, wait: Callable[[], bool] | None = None, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        finally:
            log.close()
        ready = wait or (lambda: _port_open(self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        if sig == signal.SIGSTOP:
            self.stopped = True
        elif sig == signal.SIGCONT:
            self.stopped = False

    def kill9(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Cluster:
    base: Path
    metadata_url: str
    replicas: int = 3
    write_quorum: int = 2
    settings: dict[str, str] = field(default_factory=dict)
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    access_key: str = "PAILSCLUSTERROOT0001"
    secret_key: str = field(default_factory=lambda: "cluster-secret-" + secrets.token_hex(8))
    server_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    nodes: list[Proc] = field(default_factory=list)
    gateways: list[Proc] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(var, None)
        env.update(FAST_SETTINGS)
        env.update(self.settings)
        env.update(
            PAILS_CLUSTER_SECRET=self.secret,
            PAILS_ROOT_ACCESS_KEY=self.access_key,
            PAILS_ROOT_SECRET_KEY=self.secret_key,
            PAILS_SERVER_KEY=self.server_key,
            PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            PYTHONUNBUFFERED="1",
        )
        return env

    # -- processes ------------------------------------------------------------------------------

    def add_node_process(self, extra: list[str] | None = None) -> Proc:
        k = len(self.nodes) + 1
        port = free_port()
        data = self.base / f"node-{k}"
        data.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pails", "node", "--data", str(data), "--address", f"127.0.0.1:{port}"]
        proc = Proc(f"node-{k}", cmd + (extra or []), self.env(), self.base / f"node-{k}.log", port)
        proc.start()
        self.nodes.append(proc)
        return proc

    def node_data(self, k: int) -> Path:
        return self.base / f"node-{k + 1}"

    def add_gateway(self) -> Proc:
        k = len(self.gateways) + 1
        port = free_port()
        cmd = [
            sys.executable, "-m", "pails", "gateway", "--metadata", self.metadata_url,
            "--address", f"127.0.0.1:{port}", "--replicas", str(self.replicas),
            "--write-quorum", str(self.write_quorum),
        ]  # fmt: skip
        proc = Proc(f"gateway-{k}", cmd, self.env(), self.base / f"gateway-{k}.log", port)
        proc.start(wait=lambda: _ready(port))
        self.gateways.append(proc)
        return proc

    def restart(self, proc: Proc) -> None:
        proc.kill9()
        proc.start(wait=(lambda: _ready(proc.port)) if proc.name.startswith("gateway") else None)

    def register_nodes(self, gateway: int = 0) -> None:
        for k, node in enumerate(self.nodes):
            self.admin(gateway).call(
                "POST", "cluster/nodes", {"address": node.address, "zone": f"z{k + 1}", "weight": 1.0}
            )

    def stop(self) -> None:
        for proc in [*self.gateways, *self.nodes]:
            with contextlib.suppress(Exception):
                proc.stop()

    # -- clients --------------------------------------------------------------------------------

    def endpoint(self, gateway: int = 0) -> str:
        return f"http://{self.gateways[gateway].address}"

    def s3(self, gateway: int = 0, attempts: int = 1, read_timeout: float = 30) -> Any:
        cfg = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"total_max_attempts": attempts},
            connect_timeout=5,
            read_timeout=read_timeout,
            max_pool_connections=20,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint(gateway),
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=cfg,
        )

    def admin(self, gateway: int = 0) -> AdminClient:
        return AdminClient(self.endpoint(gateway), self.access_key, self.secret_key)

    def status(self, gateway: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self.admin(gateway).call("GET", "cluster/status")
        return result

    def run_jobs(self, *jobs: str, gateway: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self.admin(gateway).call(
            "POST", "cluster/jobs", query="run=" + ",".join(jobs)
        )
        return result

    def wait_nodes(self, up: int, gateway: int = 0, timeout: float = 15, ring_version: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(gateway)
            if sum(1 for n in status["nodes"] if n["up"]) == up and status["ring_version"] >= ring_version:
                return
            time.sleep(0.1)
        raise AssertionError(f"not {up} nodes up: {self.status(gateway)['nodes']}")


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# -- node-level checks through the node protocol -----------------------------------------------------


def node_chunks(cluster: Cluster, k: int) -> dict[bytes, float]:
    """Every chunk id on node k (through the node protocol)."""
    import aiohttp

    from pails.data.client import NodeClient

    async def run() -> dict[bytes, float]:
        async with aiohttp.ClientSession() as session:
            client = NodeClient(cluster.nodes[k].address, cluster.secret.encode(), session)
            found: dict[bytes, float] = {}
            after: bytes | None = None
            while True:
                page = await client.list_chunks(after, 1000)
                found.update(page)
                if len(page) < 1000:
                    return found
                after = page[-1][0]

    return asyncio.run(run())


def referenced_chunks(cluster: Cluster) -> set[bytes]:
    """Every chunk id a committed object or part names (read from the metadata store)."""
    from pails.meta.factory import create_metadata_store

    async def run() -> set[bytes]:
        meta = create_metadata_store(cluster.metadata_url)
        await meta.open()
        try:
            return {c async for c in meta.referenced_chunks()}
        finally:
            await meta.close()

    return asyncio.run(run())


# -- a steady, bounded stream of PUTs and GETs ----------------------------------------------------


@dataclass
class Load:
    """PUTs and GETs of small objects from a thread: bounded in count and time, every failure kept."""

    client: Any
    bucket: str
    prefix: str = "load/"
    size: int = 32 * 1024
    max_ops: int = 4000
    max_seconds: float = 120
    pause: float = 0.01
    ops: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    written: dict[str, bytes] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        i = 0
        while (
            not self._stop.is_set()
            and self.ops < self.max_ops
            and time.monotonic() - started < self.max_seconds
        ):
            key = f"{self.prefix}{i:06d}"
            body = os.urandom(self.size)
            t0 = time.monotonic()
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
                self.written[key] = body
                got = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                if got != body:
                    self.failures.append(f"GET {key}: wrong bytes")
            except Exception as exc:
                self.failures.append(f"{key}: {exc!r}")
            self.latencies.append(time.monotonic() - t0)
            self.ops += 1
            i += 1
            time.sleep(self.pause)

    def stop(self) -> Load:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        return self


def object_chunks(cluster: Cluster, bucket: str, keys: list[str]) -> dict[str, list[bytes]]:
    """The chunk ids of each committed object (from the metadata store)."""
    from pails.meta.factory import create_metadata_store

    async def run() -> dict[str, list[bytes]]:
        meta = create_metadata_store(cluster.metadata_url)
        await meta.open()
        try:
            b = await meta.get_bucket(bucket)
            assert b is not None
            found: dict[str, list[bytes]] = {}
            for key in keys:
                obj = await meta.get_object(b.id, key)
                assert obj is not None, key
                found[key] = [ref.chunk_id for ref in obj.manifest]
            return found
        finally:
            await meta.close()

    return asyncio.run(run())


def current_ring(cluster: Cluster) -> Any:
    from pails.meta.cluster import create_cluster_store

    async def run() -> Any:
        store = create_cluster_store(cluster.metadata_url)
        await store.open()
        try:
            return (await store.rings(1))[0]
        finally:
            await store.close()

    return asyncio.run(run())


def node_get(cluster: Cluster, k: int, chunk_id: bytes) -> bytes:
    """A chunk read straight from node k (the node verifies it)."""
    import aiohttp

    from pails.data.client import NodeClient

    async def run() -> bytes:
        async with aiohttp.ClientSession() as session:
            client = NodeClient(cluster.nodes[k].address, cluster.secret.encode(), session)
            return b"".join([p async for p in client.get_chunk(chunk_id)])

    return asyncio.run(run())
