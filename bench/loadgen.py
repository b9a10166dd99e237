"""Load generator: P worker processes x (C/P) asyncio tasks, pre-built SigV4, pooled keep-alive.

Usage::

    python -m bench.loadgen --endpoint http://127.0.0.1:9000 --access-key A --secret-key S \\
        [--region us-east-1] [--duration 5] [--workers 2] [--quick] [--json out.json]

Phases: PUT/GET/HEAD/DELETE of 4 KiB objects at 16 and 64 in flight, PUT of 10,000 empty
objects then full ListObjectsV2 listings (pages of 1000), and streamed 64 MiB / 1 GiB
PUT+GET.  Every GET body is compared with what was PUT; failures count as errors and are
excluded from rates.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import queue as queue_mod
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.client import Target
from bench.cpu import CpuSampler
from bench.jobs import JobSpec, worker_main
from bench.rawhttp import RawS3
from bench.report import machine, phase_table, write_json
from bench.stats import PhaseResult, PhaseStats, merge

MiB = 1 << 20
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class SuiteConfig:
    target: Target
    workers: int = 2
    duration: float = 5.0
    concurrency: tuple[int, ...] = (16, 64)
    small_size: int = 4096
    list_keys: int = 10_000
    large_mib: int = 64
    huge_mib: int = 1024
    large_streams: int = 1
    huge_budget: float = 120.0  # skip the 1 GiB phase if 64 MiB rates predict more than this
    fill_budget: float = 180.0
    quick: bool = False
    max_ops: int = 2_000_000
    log: Callable[[str], None] = field(default=print)


def run_job(
    cfg: SuiteConfig, spec: JobSpec, workers: int, budget: float, sampler: CpuSampler | None
) -> tuple[list[PhaseStats], list[PhaseResult]]:
    """Run ``spec`` in ``workers`` fresh processes; kill them if ``budget`` seconds pass."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results: queue_mod.Queue[Any] = ctx.Queue()  # type: ignore[assignment]
    procs = [
        ctx.Process(target=worker_main, args=(cfg.target, spec, w, workers, barrier, results), daemon=True)
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    deadline = time.monotonic() + budget
    per_worker: list[list[PhaseResult]] = []
    problems: list[str] = []
    for _ in procs:
        try:
            _, res, err = results.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue_mod.Empty:
            problems.append(f"timed out after {budget:.0f}s")
            barrier.abort()
            break
        if err:
            problems.append(err)
        per_worker.append(res)
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)
    raw = [r for rs in per_worker for r in rs]
    names = list(dict.fromkeys(r.name for r in raw))
    stats = [merge([r for r in raw if r.name == n]) for n in names]
    if problems:
        note = "worker problem: " + "; ".join(sorted(set(problems)))[:300]
        if not stats:
            stats = [PhaseStats(spec.kind + " " + spec.label, 0, 1, 0, 0, 0, 0, None, None, 0, note=note)]
        for s in stats:
            s.note = "; ".join(x for x in (s.note, note) if x)
            s.errors = max(s.errors, 1)
    if sampler is not None:
        for s in stats:
            s.server_cores = sampler.cores(s.start, s.end)
    for s in stats:
        cfg.log(f"  {s.name}: ok={s.ok} errors={s.errors} {s.seconds:.1f}s")
    return stats, raw


def _skipped(name: str, why: str) -> PhaseStats:
    return PhaseStats(name, 0, 0, 0, 0, 0, 0, None, None, 0, note=why, skipped=True)


async def _create_bucket(target: Target) -> int:
    cl = RawS3(target)
    try:
        return await cl.create_bucket()
    finally:
        await cl.close()


def run_suite(cfg: SuiteConfig, sampler: CpuSampler | None = None) -> list[PhaseStats]:
    t = cfg.target
    status = asyncio.run(_create_bucket(t))
    if status not in (200, 409):
        raise RuntimeError(f"CreateBucket {t.bucket} returned HTTP {status}")
    out: list[PhaseStats] = []
    small_budget = 4 * (cfg.duration + t.timeout) + 60
    for c in cfg.concurrency:
        label = f"{cfg.small_size // 1024}KiB c{c}"
        spec = JobSpec("small", label, c, cfg.duration, cfg.max_ops, size=cfg.small_size, tag=f"small/c{c}")
        cfg.log(f"[{t.endpoint}] small objects, {c} in flight")
        out += run_job(cfg, spec, cfg.workers, small_budget, sampler)[0]

    cfg.log(f"[{t.endpoint}] filling {cfg.list_keys} keys for LIST")
    fill = JobSpec("fill", "", 64, cfg.fill_budget, cfg.list_keys, keys=cfg.list_keys)
    stats, raw = run_job(cfg, fill, cfg.workers, cfg.fill_budget + 60, sampler)
    out += stats
    failed = tuple(k for r in raw for k in r.failed_keys)
    if len(failed) < cfg.list_keys:
        spec = JobSpec(
            "list", f"{cfg.list_keys} keys", 1, cfg.duration, 1000, keys=cfg.list_keys, exclude=failed
        )
        out += run_job(cfg, spec, 1, cfg.duration + 4 * t.timeout + 60, sampler)[0]
    else:
        out.append(_skipped(f"LIST {cfg.list_keys} keys", "fill failed"))

    mib = cfg.large_mib
    spec = JobSpec(
        "large", f"{mib}MiB", cfg.large_streams, cfg.duration, 10_000, size=mib * MiB, tag=f"large{mib}"
    )
    cfg.log(f"[{t.endpoint}] {mib} MiB objects")
    large = run_job(cfg, spec, cfg.large_streams, 2 * cfg.duration + 4 * t.timeout + 60, sampler)[0]
    out += large

    huge = f"{cfg.huge_mib // 1024}GiB" if cfg.huge_mib % 1024 == 0 else f"{cfg.huge_mib}MiB"
    if cfg.quick:
        out += [_skipped(f"PUT {huge}", "--quick"), _skipped(f"GET {huge}", "--quick")]
        return out
    rates = [s.mb_per_s for s in large if s.ok and not s.errors]
    estimate = sum(cfg.huge_mib * MiB / 1e6 / r for r in rates) if len(rates) == 2 else float("inf")
    if estimate > cfg.huge_budget:
        why = f"too slow: {mib} MiB rates predict {estimate:.0f}s > {cfg.huge_budget:.0f}s budget"
        out += [_skipped(f"PUT {huge}", why), _skipped(f"GET {huge}", why)]
        return out
    spec = JobSpec(
        "large", huge, cfg.large_streams, 0.0, cfg.large_streams, size=cfg.huge_mib * MiB, tag="huge"
    )
    cfg.log(f"[{t.endpoint}] {huge} objects (estimated {estimate:.0f}s)")
    out += run_job(cfg, spec, cfg.large_streams, 3 * cfg.huge_budget + 60, sampler)[0]
    return out


def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--duration", type=float, default=None, help="seconds per phase (default 5, 2 with --quick)"
    )
    ap.add_argument("--workers", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--concurrency", default="16,64", help="in-flight small requests, comma list")
    ap.add_argument("--list-keys", type=int, default=10_000)
    ap.add_argument("--large-streams", type=int, default=1, help="concurrent large-object streams")
    ap.add_argument("--huge-mib", type=int, default=1024, help="size of the 'huge' object phase")
    ap.add_argument("--quick", action="store_true", help="skip the 1 GiB phase, 2 s phases")


def config_from_args(args: argparse.Namespace, target: Target) -> SuiteConfig:
    return SuiteConfig(
        target=target,
        workers=args.workers,
        duration=args.duration if args.duration is not None else (2.0 if args.quick else 5.0),
        concurrency=tuple(int(c) for c in args.concurrency.split(",") if c),
        list_keys=args.list_keys,
        large_streams=args.large_streams,
        huge_mib=args.huge_mib,
        quick=args.quick,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.loadgen", description=__doc__.split("\n")[0] if __doc__ else ""
    )
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--bucket", default=None, help="bucket to create/use (default bench-<time>)")
    ap.add_argument("--server-pid", type=int, default=None, help="sample this process tree's CPU")
    ap.add_argument("--json", type=Path, default=None)
    add_common_args(ap)
    args = ap.parse_args(argv)
    bucket = args.bucket or f"bench-{int(time.time())}"
    cfg = config_from_args(args, Target(args.endpoint, args.access_key, args.secret_key, args.region, bucket))
    if args.server_pid:
        with CpuSampler(args.server_pid) as sampler:
            phases = run_suite(cfg, sampler)
    else:
        phases = run_suite(cfg)
    print(phase_table(phases))
    path = args.json or RESULTS / f"loadgen-{time.strftime('%Y%m%d-%H%M%S')}.json"
    cfg_json = {
        k: v
        for k, v in vars(replace(cfg, target=replace(cfg.target, secret_key="***"))).items()
        if k != "log"
    }
    cfg_json["target"] = vars(cfg_json["target"])
    write_json(path, {"machine": machine(), "config": cfg_json, "phases": [p.to_json() for p in phases]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
