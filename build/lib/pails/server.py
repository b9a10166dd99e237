"""Assembles and runs the single-node server: metadata, chunk store, services, HTTP front, GC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket

from aiohttp import web

from pails.api.app import S3Application, Services
from pails.api.transport import S3Server
from pails.config import Settings
from pails.data.local import LocalChunkStore
from pails.iam.credentials import Credential, CredentialStore, load_or_create_root
from pails.meta.factory import create_metadata_store, default_metadata_url, describe
from pails.obs.metrics import Metrics
from pails.service.buckets import BucketService
from pails.service.copy import CopyService
from pails.service.gc import GarbageCollector
from pails.service.multipart import MultipartService
from pails.service.objects import ObjectService
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


async def serve(settings: Settings) -> None:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    root, generated = load_or_create_root(data_dir, settings.root_access_key, settings.root_secret_key)
    if generated:
        print(_banner(settings, root), flush=True)

    metadata_url = settings.metadata_url or default_metadata_url(data_dir)
    meta = create_metadata_store(metadata_url)
    log.info("metadata store: %s", describe(metadata_url))
    chunks = LocalChunkStore(data_dir / "chunks")
    await meta.open()
    await chunks.open()
    metrics = Metrics()
    gc = GarbageCollector(
        meta,
        chunks,
        metrics,
        grace_seconds=settings.gc_grace_seconds,
        garbage_ratio=settings.compact_garbage_ratio,
    )
    services = Services(
        settings=settings,
        credentials=CredentialStore(root),
        buckets=BucketService(meta, settings.region),
        objects=ObjectService(meta, chunks),
        multipart=MultipartService(meta, chunks),
        copies=CopyService(meta),
        gc=gc,
        metrics=metrics,
        tagging=TaggingService(meta),
    )
    app = S3Application(services)
    server = S3Server(app.handle, max_field_size=8190, max_line_size=16384, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    services.ready = True
    log.info("Pails S3 endpoint on http://%s (data in %s)", settings.address, data_dir.resolve())
    print(f"Pails is serving S3 on http://{settings.address} (data: {data_dir.resolve()})", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    gc_task = asyncio.create_task(gc.run_forever(settings.gc_interval_seconds))
    try:
        await stop.wait()
    finally:
        services.ready = False
        gc_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gc_task
        await runner.cleanup()
        await chunks.close()
        await meta.close()
        log.info("Pails stopped")


def run(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(settings))
