"""Storage node throughput through NodeClient: aiohttp's low-level server (what `pails node` runs)
against the same handler behind a web.Application (one catch-all route), to measure that choice.

Usage::

    python -m bench.node_bench [--small 3000] [--big 24] [--concurrency 16]

Each variant runs in its own process on a fresh data directory; the client is one process
(one event loop). Phases: PUT, GET, HEAD of 4 KiB chunks; PUT and GET of 8 MiB chunks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from awscrt.checksums import crc32c

from pails.data.client import NodeClient

SECRET = "bench-cluster-secret"
MiB = 1 << 20


def _serve_app(data_dir: str, port: int) -> None:
    """(child) The node's handler behind web.Application instead of the low-level server."""
    from aiohttp import web

    from pails.data.node import NodeApp
    from pails.data.node_store import NodeStore
    from pails.obs.node_metrics import NodeMetrics

    async def main() -> None:
        store = NodeStore(Path(data_dir))
        await store.open()
        node = NodeApp(store, SECRET.encode(), NodeMetrics())
        app = web.Application(client_max_size=16 * MiB)

        async def route(request: web.Request) -> web.StreamResponse:
            return await node.handle(request)

        app.router.add_route("*", "/{tail:.*}", route)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(f"Pails node serving on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.install()  # as `pails node` does
    except ImportError:
        pass
    asyncio.run(main())


def _start(variant: str, data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PAILS_CLUSTER_SECRET": SECRET}
    if variant == "lowlevel":
        cmd = [
            sys.executable,
            "-m",
            "pails",
            "node",
            "--data",
            str(data_dir),
            "--address",
            f"127.0.0.1:{port}",
        ]
    else:
        cmd = [sys.executable, "-m", "bench.node_bench", "--serve-app", str(data_dir), str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving on" not in line:
        proc.kill()
        raise RuntimeError(f"node did not start: {line}")
    return proc


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(
    n: int, concurrency: int, op: Callable[[int], Awaitable[None]], pid: int
) -> tuple[float, float]:
    """(ops/s, node CPU microseconds per op) of n calls of op(i), `concurrency` in flight."""
    next_i = 0
    cpu0 = _cpu_seconds(pid)

    async def worker() -> None:
        nonlocal next_i
        while next_i < n:
            i = next_i
            next_i += 1
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = n / (time.perf_counter() - start)
    return rate, (_cpu_seconds(pid) - cpu0) / n * 1e6


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _bench(address: str, small: int, big: int, concurrency: int, pid: int) -> dict[str, float]:
    out: dict[str, float] = {}

    async def run(
        name: str, n: int, conc: int, op: Callable[[int], Awaitable[None]], scale: float = 1
    ) -> None:
        rate, cpu = await _run(n, conc, op, pid)
        out[f"{name} {'MB/s' if scale != 1 else 'ops/s'}"] = rate * scale
        out[f"{name} node CPU us/op"] = cpu

    async with aiohttp.ClientSession() as session:
        c = NodeClient(address, SECRET.encode(), session)
        s_body = os.urandom(4096)
        s_crc = crc32c(s_body)
        s_ids = [os.urandom(16) for _ in range(small)]

        async def put_small(i: int) -> None:
            await c.put_chunk(s_ids[i], _one(s_body), len(s_body), s_crc)

        async def get_small(i: int) -> None:
            got = b"".join([p async for p in c.get_chunk(s_ids[i])])
            assert got == s_body

        async def head_small(i: int) -> None:
            assert await c.head_chunk(s_ids[i]) == len(s_body)

        await run("PUT 4 KiB", small, concurrency, put_small)
        await run("GET 4 KiB", small, concurrency, get_small)
        await run("HEAD 4 KiB", small, concurrency, head_small)
        b_body = os.urandom(8 * MiB)
        b_crc = crc32c(b_body)
        b_ids = [os.urandom(16) for _ in range(big)]

        async def pieces() -> AsyncIterator[bytes]:
            view = memoryview(b_body)
            for k in range(0, len(b_body), MiB):
                yield bytes(view[k : k + MiB])

        async def put_big(i: int) -> None:
            await c.put_chunk(b_ids[i], pieces(), len(b_body), b_crc)

        async def get_big(i: int) -> None:
            n = 0
            async for p in c.get_chunk(b_ids[i]):
                n += len(p)
            assert n == len(b_body)

        await run("PUT 8 MiB", big, 4, put_big, 8 * MiB / 1e6)
        await run("GET 8 MiB", big, 4, get_big, 8 * MiB / 1e6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=3000)
    ap.add_argument("--big", type=int, default=24)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--serve-app", nargs=2, metavar=("DIR", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_app:
        _serve_app(args.serve_app[0], int(args.serve_app[1]))
        return
    results: dict[str, dict[str, float]] = {}
    for variant in ("lowlevel", "application", "lowlevel", "application"):
        with tempfile.TemporaryDirectory() as tmp:
            port = 19100 + len(results)
            proc = _start(variant, Path(tmp) / "data", port)
            try:
                got = asyncio.run(
                    _bench(f"127.0.0.1:{port}", args.small, args.big, args.concurrency, proc.pid)
                )
            finally:
                proc.terminate()
                proc.wait(10)
        key = variant if variant not in results else variant + " (2nd)"
        results[key] = got
    names = list(next(iter(results.values())))
    print(f"{'phase':<28}" + "".join(f"{k:>20}" for k in results))
    for name in names:
        print(f"{name:<28}" + "".join(f"{results[k][name]:>20,.0f}" for k in results))


if __name__ == "__main__":
    main()
