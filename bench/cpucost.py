"""Server CPU per request: what one small-object request costs Pails, independent of machine load.

    python -m bench.cpucost [--pails-workers 1,2] [--rounds 2] [--duration 4] [--concurrency 16,64]

Starts Pails (once per setting and round, fresh data), runs the small-object phases of the load
generator (PUT/GET/HEAD/DELETE of 4 KiB) and prints, per phase, ops/s and the server process
tree's CPU time divided by the requests completed (microseconds per request). Throughput on a
shared machine varies with the neighbours' load; CPU per request varies much less, which is
why optimisations are judged by it.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import peers
from bench.client import Target
from bench.cpu import CpuSampler
from bench.jobs import JobSpec
from bench.loadgen import SuiteConfig, run_job


def measure(
    pails_workers: int, concurrency: tuple[int, ...], duration: float
) -> dict[str, tuple[float, float]]:
    """{phase: (ops/s, server CPU us per request)} for one fresh server."""
    server = peers.start("pails", pails_args=("--workers", str(pails_workers)))
    out: dict[str, tuple[float, float]] = {}
    try:
        target = Target(
            server.endpoint, server.access_key, server.secret_key, bucket=f"cost-{int(time.time())}"
        )
        cfg = SuiteConfig(target=target, duration=duration, concurrency=concurrency, log=lambda _: None)
        import asyncio

        from bench.loadgen import _create_bucket

        asyncio.run(_create_bucket(target))
        with CpuSampler(server.pid, interval=0.05) as sampler:
            for c in concurrency:
                spec = JobSpec("small", f"4KiB c{c}", c, duration, 2_000_000, size=4096, tag=f"small/c{c}")
                for s in run_job(cfg, spec, cfg.workers, 4 * duration + 120, sampler)[0]:
                    if s.errors or not s.ok or s.server_cores is None:
                        print(f"  {s.name}: errors={s.errors} {s.note}")
                        continue
                    out[s.name] = (s.ops_per_s, s.server_cores * s.seconds / s.ok * 1e6)
    finally:
        peers.stop(server)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.cpucost", description=__doc__.split("\n")[0] if __doc__ else ""
    )
    ap.add_argument("--pails-workers", default="1,2", help="comma list of `pails server --workers` values")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--concurrency", default="16,64")
    args = ap.parse_args(argv)
    concurrency = tuple(int(c) for c in args.concurrency.split(",") if c)
    settings = [int(w) for w in args.pails_workers.split(",") if w]
    runs: dict[int, list[dict[str, tuple[float, float]]]] = {w: [] for w in settings}
    for r in range(args.rounds):
        for w in settings if r % 2 == 0 else reversed(settings):
            import os

            print(f"round {r + 1}, --workers {w} (load average {os.getloadavg()[0]:.2f})", flush=True)
            runs[w].append(measure(w, concurrency, args.duration))
    names = list(dict.fromkeys(n for w in settings for res in runs[w] for n in res))
    header = f"{'phase':<18}" + "".join(f"{f'w={w} ops/s':>14}{f'w={w} us/req':>14}" for w in settings)
    print()
    print(header)
    for name in names:
        row = f"{name:<18}"
        for w in settings:
            vals = [res[name] for res in runs[w] if name in res]
            if not vals:
                row += f"{'-':>14}{'-':>14}"
                continue
            row += f"{statistics.mean(v[0] for v in vals):>14,.0f}{statistics.median(v[1] for v in vals):>14,.0f}"
        print(row)


if __name__ == "__main__":
    main()
