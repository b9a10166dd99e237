"""Assembles and runs the single-node server: metadata, chunk store, services, HTTP front, GC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from pails.api.app import S3Application, Services
from pails.api.http import HttpServer
from pails.api.transport import protocol_error
from pails.config import Settings
from pails.data.engine import ChunkStore
from pails.data.local import LocalChunkStore
from pails.iam import serverkey
from pails.iam.credentials import Credential, load_or_create_root
from pails.iam.directory import CredentialStore
from pails.iam.identities import IdentityService
from pails.iam.sts import StsService
from pails.meta.factory import create_metadata_store, default_metadata_url, describe
from pails.meta.iam_store import identity_store_for
from pails.meta.store import MetadataStore
from pails.obs.metrics import Metrics
from pails.service.access import AccessService
from pails.service.buckets import BucketService
from pails.service.copy import CopyService
from pails.service.gc import GarbageCollector
from pails.service.multipart import MultipartService
from pails.service.objects import ObjectService
from pails.service.peers import Peers
from pails.service.tagging import TaggingService

log = logging.getLogger("pails.server")


def _banner(settings: Settings, root: Credential) -> str:
    endpoint = f"http://{settings.address}"
    return (
        "Pails generated root credentials (stored in DATA_DIR/root-credentials.json, shown once):\n"
        f"  AWS_ACCESS_KEY_ID={root.identity.access_key}\n"
        f"  AWS_SECRET_ACCESS_KEY={root.secret_key}\n"
        "Try:\n"
        f"  AWS_ACCESS_KEY_ID={root.identity.access_key} AWS_SECRET_ACCESS_KEY={root.secret_key} "
        f"AWS_DEFAULT_REGION={settings.region} aws --endpoint-url {endpoint} s3 ls\n"
    )


async def serve(
    settings: Settings, *, worker: int = 0, workers: int = 1, run_dir: Path | None = None
) -> None:
    """Serve S3. With workers > 1 this is worker `worker` of a group sharing the port
    (SO_REUSEPORT), the metadata store and the chunks directory (decision 0007)."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    root, generated = load_or_create_root(data_dir, settings.root_access_key, settings.root_secret_key)
    if generated:
        print(_banner(settings, root), flush=True)

    metadata_url = settings.metadata_url or default_metadata_url(data_dir)
    meta = create_metadata_store(metadata_url)
    log.info("metadata store: %s", describe(metadata_url))
    chunks = LocalChunkStore(data_dir / "chunks", worker=worker)
    await meta.open()
    await chunks.open()
    metrics = Metrics(run_dir / "metrics" if workers > 1 and run_dir is not None else None)
    gc = GarbageCollector(
        meta,
        chunks,
        metrics,
        grace_seconds=settings.gc_grace_seconds,
        garbage_ratio=settings.compact_garbage_ratio,
        upload_retention_seconds=settings.upload_retention_seconds,
        owner=worker if workers > 1 else None,
    )
    services = await build_services(settings, root, meta, chunks, gc, metrics)
    peers: Peers | None = None
    if workers > 1 and run_dir is not None:
        peers = services.peers = Peers(run_dir, worker, workers)
        await peers.start(gc, services.access.cache.forget, services.credentials.invalidate, metrics.fold)
        services.access.cache.on_invalidate = peers.forget_bucket
        metrics.before_scrape = peers.fold_metrics
        services.credentials.on_invalidate = peers.forget_credentials
    http = await start_http(services, settings, reuse_port=workers > 1)
    services.ready = True
    log.info("Pails S3 endpoint on http://%s (data in %s)", settings.address, data_dir.resolve())
    print(f"Pails is serving S3 on http://{settings.address} (data: {data_dir.resolve()})", flush=True)

    stop = stop_event()
    gc_task = asyncio.create_task(gc.run_forever(settings.gc_interval_seconds))
    try:
        await stop.wait()
    finally:
        services.ready = False
        gc_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gc_task
        await http.close()
        metrics.fold()  # with several workers, the shared files outlive this one
        if peers is not None:
            await peers.stop()
        await services.access.close()
        await chunks.close()
        await meta.close()
        log.info("Pails stopped")


async def build_services(
    settings: Settings,
    root: Credential,
    meta: MetadataStore,
    chunks: ChunkStore,
    gc: GarbageCollector,
    metrics: Metrics,
) -> Services:
    """The S3, IAM and STS services over a metadata store and a chunk store (the server's and the
    gateway's). Starts the bucket-access cache (close it with services.access.close())."""
    keys = serverkey.ServerKeys.from_master(serverkey.load_or_create(settings.data_dir, settings.server_key))
    credentials = CredentialStore(root, identity_store_for(meta), keys, ttl=settings.iam_cache_ttl_seconds)
    await credentials.refresh_accounts(force=True)
    access = AccessService(
        meta,
        credentials,
        ttl=settings.cache_ttl_seconds,
        redis_url=settings.cache_url,
        registry=metrics.registry,
    )
    await access.start()
    return Services(
        settings=settings,
        credentials=credentials,
        iam=IdentityService(credentials),
        sts=StsService(credentials, min_duration=settings.sts_min_duration_seconds),
        buckets=BucketService(meta, settings.region, access),
        objects=ObjectService(meta, chunks),
        multipart=MultipartService(meta, chunks),
        copies=CopyService(meta),
        gc=gc,
        metrics=metrics,
        tagging=TaggingService(meta),
        metadata_ping=getattr(meta, "ping", None),  # PostgreSQL; an SQLite file is always there
        access=access,
    )


async def start_http(services: Services, settings: Settings, *, reuse_port: bool = False) -> HttpServer:
    """Listen on settings.address and serve S3 with `services`; close() the server to stop."""
    app = S3Application(services)
    server = HttpServer(app.handle, protocol_error)
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.host, settings.port))
    await server.start(sock)
    return server


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def run(settings: Settings, workers: int = 1, *, pin_workers: bool = False) -> None:
    """Run the server; workers > 1 forks that many worker processes (0: one per CPU), each bound to
    one CPU of those allowed with `pin_workers`."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if workers == 0:
        workers = os.cpu_count() or 1
    if workers == 1:
        _install_uvloop()
        asyncio.run(serve(settings))
        return
    if not 1 < workers <= 256:
        raise ValueError("workers must be in 0..256")
    sys.exit(_supervise(settings, workers, pin_workers))


def _prepare(settings: Settings) -> None:
    """(parent) Root credentials and schema migrations, once, before any worker starts."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    root, generated = load_or_create_root(
        settings.data_dir, settings.root_access_key, settings.root_secret_key
    )
    if generated:
        print(_banner(settings, root), flush=True)
    serverkey.load_or_create(settings.data_dir, settings.server_key)

    async def migrate() -> None:
        meta = create_metadata_store(settings.metadata_url or default_metadata_url(settings.data_dir))
        await meta.open()
        await meta.close()

    asyncio.run(migrate())


def _die_with_parent(parent: int) -> None:
    """(worker) Get SIGKILL when the parent dies, even by SIGKILL (Linux prctl PR_SET_PDEATHSIG):
    a worker must never go on serving the port alone."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: like a crash of the whole server
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def _supervise(settings: Settings, workers: int, pin_workers: bool = False) -> int:
    """(parent) Fork the workers, forward SIGTERM/SIGINT, and stop them all when one ends
    (nothing is restarted). Returns the exit status."""
    _prepare(settings)
    run_dir = Path(tempfile.mkdtemp(prefix="pails-"))  # private (0700): sockets and metrics
    (run_dir / "metrics").mkdir()
    try:
        return _fork_workers(settings, workers, run_dir, pin_workers)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _fork_workers(settings: Settings, workers: int, run_dir: Path, pin_workers: bool) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    children: dict[int, int] = {}
    parent = os.getpid()
    cpus = sorted(os.sched_getaffinity(0))

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for k in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                _die_with_parent(parent)
                if pin_workers:
                    # The worker's threads (event loop, SQLite writer, fsync) hand the GIL to each
                    # other many times per write; on one CPU that is no cross-CPU wake-up (0007).
                    os.sched_setaffinity(0, {cpus[k % len(cpus)]})
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _install_uvloop()
                asyncio.run(serve(settings, worker=k, workers=workers, run_dir=run_dir))
            except BaseException:
                log.exception("worker %d failed", k)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = k

    status = 0
    stopping = False
    while children:
        try:
            pid, wstatus = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        k = children.pop(pid)
        code = os.waitstatus_to_exitcode(wstatus)
        if code != 0:
            status = status or 1
        if not stopping:
            stopping = True
            if code != 0:
                log.error("worker %d ended (exit status %d): stopping the server", k, code)
            forward(signal.SIGTERM, None)
    return status
