"""End-to-end S3 suite for Pails.

By default a `pails server` subprocess is started once per session (so once per pytest-xdist worker)
and metadata backend on a free port (tests/ports.py) with a temporary data dir. PAILS_TEST_BACKENDS (e.g. "sqlite", "postgres", "sqlite,postgres")
picks the metadata backends ("cluster": a `pails dev-cluster` with SQLite metadata); by default both when PostgreSQL is reachable at PAILS_TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres), else SQLite only (with CI set: both, so an
unreachable PostgreSQL fails). Each PostgreSQL server gets a fresh database, dropped afterwards. Set PAILS_TEST_ENDPOINT (+ PAILS_TEST_ACCESS_KEY / PAILS_TEST_SECRET_KEY / PAILS_TEST_REGION)
to run against an already-running server instead (tests needing the process are then skipped). When
that server is a reference implementation that does not verify signatures (e.g. moto), also set
PAILS_TEST_NO_AUTH=1 to skip the tests marked `auth`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from pgtestdb import (
    create_database_sync,
    drop_database_sync,
    in_ci,
    postgres_unreachable_reason,
    require_postgres,
)
from ports import free_port
from s3util import Creds, Raw

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = os.environ.get("PAILS_TEST_ENDPOINT")
NO_AUTH = os.environ.get("PAILS_TEST_NO_AUTH") == "1"
READY_TIMEOUT = 20.0
CLUSTER_FLAG = "--test-dev-cluster"
"""PAILS_TEST_BACKENDS=cluster (chosen explicitly only): `pails dev-cluster` (3 nodes, R=3) instead of a server."""
WORKERS = os.environ.get("PAILS_TEST_WORKERS", "").strip()
"""Passed as `pails server --workers` when set (e.g. 2): the suite then runs against worker processes."""


def _backends() -> list[str]:
    if EXTERNAL:
        return ["external"]
    chosen = os.environ.get("PAILS_TEST_BACKENDS", "")
    if chosen.strip():
        return [b.strip() for b in chosen.split(",") if b.strip()]
    if in_ci() or postgres_unreachable_reason() is None:
        return ["sqlite", "postgres"]
    return ["sqlite"]


BACKENDS = _backends()


def pytest_report_header(config: pytest.Config) -> str:
    note = ""
    if not os.environ.get("PAILS_TEST_BACKENDS") and "postgres" not in BACKENDS and not EXTERNAL:
        note = f" (PostgreSQL left out: {postgres_unreachable_reason()})"
    return f"pails metadata backends: {', '.join(BACKENDS)}{note}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running (crash/restart, 2 GiB); still runs by default")
    config.addinivalue_line(
        "markers", "needs_process: needs the local server process / data dir (skipped for external endpoints)"
    )
    config.addinivalue_line(
        "markers",
        "single_node: asserts on one server process's disk use, memory or store stats "
        "(skipped with PAILS_TEST_BACKENDS=cluster, where five processes share the work)",
    )
    config.addinivalue_line(
        "markers", "auth: verifies signatures/credentials (skipped with PAILS_TEST_NO_AUTH=1, e.g. moto)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_cluster = callspec is not None and callspec.params.get("metadata_backend") == "cluster"
        if on_cluster and "single_node" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="single-node internals (disk, RSS, store stats)"))
        if EXTERNAL and "needs_process" in item.keywords:
            item.add_marker(
                pytest.mark.skip(reason="needs the local server process (PAILS_TEST_ENDPOINT set)")
            )
        if NO_AUTH and "auth" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="target does not verify auth (PAILS_TEST_NO_AUTH=1)"))


@dataclass
class ServerInfo:
    endpoint: str
    host: str
    port: int
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    data_dir: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    args: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def creds(self) -> Creds:
        return Creds(self.access_key, self.secret_key, self.region)

    @property
    def raw(self) -> Raw:
        return Raw(self.host, self.port, self.creds)

    def client(
        self, endpoint_url: str | None = None, secret_key: str | None = None, **config_kwargs: object
    ):  # -> S3Client
        s3cfg = {"addressing_style": "path"}
        s3cfg.update(config_kwargs.pop("s3", {}))  # type: ignore[arg-type]
        cfg = Config(
            s3=s3cfg,
            signature_version="s3v4",
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=60,
            **config_kwargs,  # type: ignore[arg-type]
        )
        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
            config=cfg,
        )

    def stderr_text(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-8000:]
        return ""

    # -- lifecycle (local process only) --
    def start(self) -> None:
        assert self.data_dir is not None and self.log_path is not None
        env = dict(os.environ)
        env["PAILS_ROOT_ACCESS_KEY"] = self.access_key
        env["PAILS_ROOT_SECRET_KEY"] = self.secret_key
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(var, None)
        cmd = [sys.executable, "-m", "pails", "server", "--data", str(self.data_dir)]
        if CLUSTER_FLAG in self.args:  # PAILS_TEST_BACKENDS=cluster: a gateway over three nodes
            cmd = [sys.executable, "-m", "pails", "dev-cluster", "--nodes", "3", "--replicas", "3"]
            cmd += ["--data", str(self.data_dir)]
        cmd += ["--address", f"{self.host}:{self.port}", *(a for a in self.args if a != CLUSTER_FLAG)]
        if WORKERS and "--workers" not in self.args:
            cmd += ["--workers", WORKERS]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.data_dir.parent,
            )
        finally:
            log.close()
        self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                pytest.fail(f"pails server exited with {code} before ready; output:\n{self.stderr_text()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
                    last = f"status {r.status}"
            except urllib.error.HTTPError as e:
                last = f"status {e.code}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"pails server not ready after {timeout}s (last: {last}); output:\n{self.stderr_text()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def _new_local_server(base: Path, **kwargs: object) -> ServerInfo:
    port = free_port()
    data = base / "data"
    data.mkdir(parents=True, exist_ok=True)
    return ServerInfo(
        endpoint=f"http://127.0.0.1:{port}",
        host="127.0.0.1",
        port=port,
        access_key=str(kwargs.pop("access_key", "PAILSTESTROOTKEY0001")),
        secret_key=str(kwargs.pop("secret_key", "pails-test-secret-" + uuid.uuid4().hex)),
        data_dir=data,
        log_path=base / "server.log",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session", params=BACKENDS)
def metadata_backend(request: pytest.FixtureRequest) -> str:
    """The metadata store the servers of this part of the session use (tests run once per backend)."""
    return str(request.param)


def _metadata_args(backend: str, databases: list[str]) -> list[str]:
    """`pails server` flags for the backend; a PostgreSQL database is created (and noted for dropping)."""
    if backend == "cluster":
        return [CLUSTER_FLAG]
    if backend != "postgres":
        return []
    require_postgres()
    name, dsn = create_database_sync()
    databases.append(name)
    return ["--metadata", dsn]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, metadata_backend: str) -> Iterator[ServerInfo]:
    if EXTERNAL:
        from urllib.parse import urlsplit

        u = urlsplit(EXTERNAL)
        yield ServerInfo(
            endpoint=EXTERNAL.rstrip("/"),
            host=u.hostname or "127.0.0.1",
            port=u.port or 80,
            access_key=os.environ.get("PAILS_TEST_ACCESS_KEY", "testing"),
            secret_key=os.environ.get("PAILS_TEST_SECRET_KEY", "testing"),
            region=os.environ.get("PAILS_TEST_REGION", "us-east-1"),
        )
        return
    databases: list[str] = []
    srv = _new_local_server(
        tmp_path_factory.mktemp(f"pails-session-{metadata_backend}"),
        args=_metadata_args(metadata_backend, databases),
    )
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        for name in databases:
            drop_database_sync(name)


@pytest.fixture
def start_server(
    tmp_path_factory: pytest.TempPathFactory, metadata_backend: str
) -> Iterator[Callable[..., ServerInfo]]:
    """Factory for private servers (crash/restart tests). `start_server(reuse=info)` restarts on a data dir
    (and the same metadata database)."""
    if EXTERNAL:
        pytest.skip("private servers need the local process (PAILS_TEST_ENDPOINT set)")
    started: list[ServerInfo] = []
    databases: list[str] = []

    def start(
        reuse: ServerInfo | None = None, args: list[str] | None = None, region: str = "us-east-1"
    ) -> ServerInfo:
        if reuse is not None:
            port = free_port()  # a fresh port: the old one may linger in TIME_WAIT
            srv = ServerInfo(
                endpoint=f"http://{reuse.host}:{port}",
                host=reuse.host,
                port=port,
                access_key=reuse.access_key,
                secret_key=reuse.secret_key,
                region=reuse.region,
                data_dir=reuse.data_dir,
                log_path=reuse.log_path,
                args=list(reuse.args),
            )
        else:
            srv = _new_local_server(
                tmp_path_factory.mktemp("pails-private"),
                args=[*_metadata_args(metadata_backend, databases), *(args or [])],
                region=region,
            )
        started.append(srv)
        srv.start()
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()
        for name in databases:
            drop_database_sync(name)


@pytest.fixture(scope="session")
def s3(server: ServerInfo):  # -> S3Client
    return server.client()


@pytest.fixture(scope="session")
def raw(server: ServerInfo) -> Raw:
    return server.raw


def unique_bucket_name(prefix: str = "pt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def empty_and_delete_bucket(client, name: str) -> None:
    try:
        for _ in range(10):
            resp = client.list_objects_v2(Bucket=name, MaxKeys=1000)
            keys = [{"Key": o["Key"]} for o in resp.get("Contents", [])]
            if not keys:
                break
            client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)
    except ClientError:
        pass


@pytest.fixture
def bucket(s3) -> Iterator[str]:
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        empty_and_delete_bucket(s3, name)
