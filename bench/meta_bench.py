"""Metadata store benchmark: SQLite vs PostgreSQL, directly against the store classes.

    python -m bench.meta_bench [--backends sqlite,postgres] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                               [--concurrency 16] [--duration 3] [--keys 1000000]

Phases per backend, each on fresh storage (a temp dir; a throwaway database `pails_bench_<random>`
that is dropped afterwards):

- `put 0B`: put_object of 0-byte objects (empty manifest), unique keys, `--concurrency` callers,
  for `--duration` seconds;
- `get`: get_object of random keys written by the put phase;
- `list page`: list_objects pages of 1000 keys at random start points in that bucket;
- `walk 1M`: a bucket of `--keys` keys is bulk-loaded (executemany for SQLite, COPY for PostgreSQL,
  not timed as a store operation), then listed from start to end in pages of 1000 with
  start_after = next_marker, as ListObjectsV2 with continuation tokens does: keys/s;
- `delimiter 1M`: one delimited listing of that bucket's root (100 common prefixes, each holding
  `--keys`/100 keys): seconds per page, showing the seek past each prefix.

Results print as a table and go to bench/results/meta-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from pails.meta.models import ObjectVersion
from pails.meta.postgres import PostgresMetadataStore
from pails.meta.sqlite import SqliteMetadataStore

Store = SqliteMetadataStore | PostgresMetadataStore
RESULTS = Path(__file__).resolve().parent / "results"
_EMPTY_ETAG = "d41d8cd98f00b204e9800998ecf8427e"
_BULK_BATCH = 50_000


def _key(i: int) -> str:
    return f"dir{i % 100:02}/obj{i:08}"


@asynccontextmanager
async def open_store(backend: str, pg_admin: str, workdir: Path, concurrency: int) -> AsyncIterator[Store]:
    if backend == "sqlite":
        sqlite_store = SqliteMetadataStore(workdir / "meta.db")
        await sqlite_store.open()
        try:
            yield sqlite_store
        finally:
            await sqlite_store.close()
        return
    name = f"pails_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_admin)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        dsn = urlunsplit(urlsplit(pg_admin)._replace(path="/" + name))
        pg_store = PostgresMetadataStore(dsn, pool_min=concurrency, pool_max=concurrency)
        await pg_store.open()
        try:
            yield pg_store
        finally:
            await pg_store.close()
    finally:
        admin = await asyncpg.connect(pg_admin)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def timed(
    concurrency: int, duration: float, op: Callable[[int, int], Awaitable[int]]
) -> tuple[int, int, float, list[float]]:
    """Run op(worker, i) in `concurrency` loops for `duration` s: (ops, items, seconds, latencies)."""
    deadline = time.perf_counter() + duration
    counts = [0] * concurrency
    items = [0] * concurrency
    latencies: list[float] = []

    async def loop(worker: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            items[worker] += await op(worker, i)
            latencies.append(time.perf_counter() - started)
            counts[worker] += 1
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(concurrency)))
    return sum(counts), sum(items), time.perf_counter() - started, latencies


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bulk_load(store: Store, bucket_id: int, keys: int) -> float:
    """Insert `keys` 0-byte objects straight into the tables; returns the seconds it took."""
    started = time.perf_counter()
    if isinstance(store, SqliteMetadataStore):
        conn = sqlite3.connect(store.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO objects (bucket_id, key, version_id, size, etag, content_type, "
                "last_modified, manifest) VALUES (?, ?, 'null', 0, ?, 'binary/octet-stream', ?, x'')",
                ((bucket_id, _key(i).encode(), _EMPTY_ETAG, 1_700_000_000.0) for i in range(keys)),
            )
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
        finally:
            conn.close()
    else:
        async with store.pool.acquire() as conn:
            for start in range(0, keys, _BULK_BATCH):
                records = [
                    (bucket_id, _key(i).encode(), "null", 0, _EMPTY_ETAG, "binary/octet-stream", 1.7e9, b"")
                    for i in range(start, min(keys, start + _BULK_BATCH))
                ]
                await conn.copy_records_to_table(
                    "objects",
                    records=records,
                    columns=[
                        "bucket_id",
                        "key",
                        "version_id",
                        "size",
                        "etag",
                        "content_type",
                        "last_modified",
                        "manifest",
                    ],
                )
            await conn.execute("VACUUM ANALYZE objects")
    return time.perf_counter() - started


async def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend, "phases": {}}
    phases: dict[str, Any] = out["phases"]
    c, duration = args.concurrency, args.duration
    with tempfile.TemporaryDirectory(prefix="pails-meta-bench-") as tmp:
        async with open_store(backend, args.pg, Path(tmp), c) as store:
            bucket = await store.create_bucket("bench", "owner", "us-east-1")
            written: list[list[str]] = [[] for _ in range(c)]

            async def put(worker: int, i: int) -> int:
                key = f"w{worker:02}/k{i:08}"
                obj = ObjectVersion(bucket.id, key, "null", 0, _EMPTY_ETAG, time.time())
                await store.put_object(obj)
                written[worker].append(key)
                return 1

            ops, _, secs, lat = await timed(c, duration, put)
            phases["put 0B"] = {
                "ops_s": ops / secs,
                "p50_ms": _pct(lat, 0.5) * 1e3,
                "p99_ms": _pct(lat, 0.99) * 1e3,
            }
            all_keys = [k for keys in written for k in keys]
            rng = random.Random(1)

            async def get(worker: int, i: int) -> int:
                found = await store.get_object(bucket.id, rng.choice(all_keys))
                assert found is not None
                return 1

            ops, _, secs, lat = await timed(c, duration, get)
            phases["get"] = {
                "ops_s": ops / secs,
                "p50_ms": _pct(lat, 0.5) * 1e3,
                "p99_ms": _pct(lat, 0.99) * 1e3,
            }
            ordered = sorted(all_keys)
            starts = ordered[: max(1, len(ordered) - 1000)]

            async def page(worker: int, i: int) -> int:
                result = await store.list_objects(bucket.id, start_after=rng.choice(starts), max_keys=1000)
                return len(result.entries)

            ops, items, secs, lat = await timed(c, duration, page)
            phases["list page (1000)"] = {
                "ops_s": ops / secs,
                "keys_s": items / secs,
                "p50_ms": _pct(lat, 0.5) * 1e3,
                "p99_ms": _pct(lat, 0.99) * 1e3,
                "keys_in_bucket": len(all_keys),
            }

            big = await store.create_bucket("big", "owner", "us-east-1")
            load_s = await bulk_load(store, big.id, args.keys)
            started = time.perf_counter()
            marker, total, pages = "", 0, 0
            while True:
                result = await store.list_objects(big.id, start_after=marker, max_keys=1000)
                total += len(result.entries)
                pages += 1
                if not result.is_truncated:
                    break
                assert result.next_marker is not None
                marker = result.next_marker
            walk_s = time.perf_counter() - started
            if total != args.keys:
                raise AssertionError(f"walk listed {total} keys of {args.keys}")
            phases[f"walk {args.keys} keys"] = {
                "keys_s": total / walk_s,
                "seconds": walk_s,
                "pages": pages,
                "bulk_load_s": load_s,
            }
            started = time.perf_counter()
            result = await store.list_objects(big.id, delimiter="/", max_keys=1000)
            delim_s = time.perf_counter() - started
            assert len(result.common_prefixes) == min(100, args.keys)
            phases[f"delimiter root of {args.keys} keys"] = {
                "seconds": delim_s,
                "prefixes": len(result.common_prefixes),
            }
    return out


def _print(results: list[dict[str, Any]]) -> None:
    names: list[str] = []
    for result in results:
        for name in result["phases"]:
            if name not in names:
                names.append(name)
    backends = [r["backend"] for r in results]
    print(f"{'phase':36}" + "".join(f"{b:>34}" for b in backends))
    for name in names:
        cells = []
        for result in results:
            m = result["phases"].get(name, {})
            if "ops_s" in m and "keys_s" in m:
                cell = f"{m['ops_s']:,.0f} pages/s {m['keys_s']:,.0f} keys/s"
            elif "ops_s" in m:
                cell = f"{m['ops_s']:,.0f} ops/s p99 {m['p99_ms']:.1f} ms"
            elif "keys_s" in m:
                cell = f"{m['keys_s']:,.0f} keys/s ({m['seconds']:.1f} s)"
            else:
                cell = f"{m.get('seconds', 0) * 1e3:,.1f} ms"
            cells.append(f"{cell:>34}")
        print(f"{name:36}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args()
    results = [asyncio.run(bench_backend(b.strip(), args)) for b in args.backends.split(",") if b.strip()]
    _print(results)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"meta-{time.strftime('%Y%m%d-%H%M%S')}.json"
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": _cpus()}
    path.write_text(json.dumps({"args": vars(args), "machine": machine, "results": results}, indent=2))
    print(f"results: {path}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


if __name__ == "__main__":
    main()
