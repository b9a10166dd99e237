"""One small-object operation in a tight loop against a running endpoint, for profiling.

    python -m bench.hotloop --endpoint URL --access-key A --secret-key S --op HEAD [--count 20000]
        [--concurrency 16] [--server-pid PID]

PUTs one 4 KiB object (and, for DELETE, `count` of them first), then runs `count` requests of
one kind with `concurrency` in flight from one process, and prints ops/s and, given
--server-pid, the server process tree's CPU microseconds per request. Run py-spy or
pyinstrument against the server meanwhile to see where one kind of request spends its time.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.client import Target
from bench.cpu import tree_cpu
from bench.rawhttp import OpFailed, RawS3

_BODY = bytes(range(256)) * 16


async def _prepare(s3: RawS3, op: str, count: int, concurrency: int) -> list[str]:
    """The keys the measured loop uses, with the objects it reads or deletes already there."""
    await s3.create_bucket()
    if op in ("PUT", "DELETE"):
        keys = [f"hot/{i}" for i in range(count)]
        if op == "DELETE":
            await _gather(s3, "PUT", keys, concurrency)
        return keys
    await s3.put("hot/one", _BODY)
    return ["hot/one"] * count


async def _gather(s3: RawS3, op: str, keys: list[str], concurrency: int) -> int:
    todo = iter(keys)
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for key in todo:
            try:
                if op == "PUT":
                    await s3.put(key, _BODY)
                elif op == "GET":
                    if await s3.get(key) != _BODY:
                        errors += 1
                elif op == "HEAD":
                    if (await s3.head(key))[0] != 200:
                        errors += 1
                else:
                    await s3.delete(key)
            except OpFailed:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.hotloop", description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--bucket", default="hotloop")
    ap.add_argument("--op", choices=("PUT", "GET", "HEAD", "DELETE"), default="HEAD")
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--server-pid", type=int)
    args = ap.parse_args(argv)
    s3 = RawS3(Target(args.endpoint, args.access_key, args.secret_key, bucket=args.bucket))

    async def go() -> None:
        keys = await _prepare(s3, args.op, args.count, args.concurrency)
        cpu0 = tree_cpu(args.server_pid) if args.server_pid else 0.0
        started = time.perf_counter()
        errors = await _gather(s3, args.op, keys, args.concurrency)
        elapsed = time.perf_counter() - started
        line = f"{args.op} x{args.count} c{args.concurrency}: {args.count / elapsed:,.0f} ops/s"
        if args.server_pid:
            cpu = tree_cpu(args.server_pid) - cpu0
            line += f", server CPU {cpu / args.count * 1e6:,.0f} us/request"
        print(line + f", errors {errors}", flush=True)
        await s3.close()

    try:
        import uvloop

        uvloop.run(go())
    except ImportError:
        asyncio.run(go())


if __name__ == "__main__":
    main()
