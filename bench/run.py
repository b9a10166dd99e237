"""Benchmark Pails and its peers side by side in one run.

    python -m bench.run [--servers pails,moto,rclone] [--duration 5] [--quick] [--pails-workers N]

Starts each server in turn on a free 127.0.0.1 port, runs the same load-generator phases
against it (client CPU and server CPU sampled), stops it, then prints one table with
pails/moto and pails/rclone ratios and writes bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from typing import Any

from bench import peers
from bench.client import Target
from bench.cpu import CpuSampler
from bench.loadgen import RESULTS, add_common_args, config_from_args, run_suite
from bench.report import compare_table, headline, machine, write_json
from bench.stats import PhaseStats


def check_targets(results: dict[str, list[PhaseStats]]) -> list[str]:
    """The issue's targets: small PUT/GET/HEAD >= 5x moto and >= rclone; 64 MiB GET >= 1 GB/s."""
    by = {srv: {p.name: p for p in phases} for srv, phases in results.items()}
    mine = by.get("pails")
    if not mine:
        return ["pails not measured"]

    def rate(srv: str, name: str) -> float | None:
        p = by.get(srv, {}).get(name)
        return None if p is None or p.errors else headline(p)[0]

    lines = []
    for name in [n for n in mine if n.split()[0] in ("PUT", "GET", "HEAD") and "KiB" in n]:
        a = rate("pails", name)
        for srv, factor in (("moto", 5.0), ("rclone", 1.0)):
            b = rate(srv, name)
            if b is None and name in by.get(srv, {}):
                lines.append(f"n/a   {name}: {srv} had errors in this phase, no comparison")
            elif b is not None:
                ok = a is not None and a >= factor * b
                verdict = "PASS" if ok else "FAIL"
                goal = f"{factor:g}x {srv} {factor * b:,.0f}"
                lines.append(f"{verdict}  {name}: pails {a or 0:,.0f} vs {goal} ops/s")
    for name in [n for n in mine if n.startswith("GET") and "64MiB" in n]:
        a = rate("pails", name)
        lines.append(f"{'PASS' if a and a >= 1000 else 'FAIL'}  {name}: {a or 0:,.0f} MB/s vs 1,000 MB/s")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description="Pails vs moto vs rclone, one run")
    ap.add_argument("--servers", default="pails,moto,rclone")
    ap.add_argument("--keep-data", action="store_true", help="keep the servers' temp dirs")
    ap.add_argument(
        "--pails-workers",
        type=int,
        default=None,
        help="pails server --workers N (default: the server's default)",
    )
    ap.add_argument(
        "--pails-pin", action="store_true", help="pails server --pin-workers (one CPU per worker)"
    )
    add_common_args(ap)
    args = ap.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, list[PhaseStats]] = {}
    failures: dict[str, str] = {}
    config: dict[str, Any] = {}
    for name in [s.strip() for s in args.servers.split(",") if s.strip()]:
        print(f"=== {name} (load average {os.getloadavg()[0]:.2f})", flush=True)
        try:
            pails_args: tuple[str, ...] = ()
            if args.pails_workers is not None:
                pails_args += ("--workers", str(args.pails_workers))
            if args.pails_pin:
                pails_args += ("--pin-workers",)
            server = peers.start(name, pails_args=pails_args)
        except (RuntimeError, FileNotFoundError, ValueError) as exc:
            failures[name] = str(exc)
            print(f"  could not start {name}: {exc}", flush=True)
            continue
        try:
            target = Target(server.endpoint, server.access_key, server.secret_key, bucket=f"bench-{stamp}")
            cfg = config_from_args(args, target)
            config = {k: v for k, v in vars(cfg).items() if k not in ("log", "target")}
            with CpuSampler(server.pid) as sampler:
                results[name] = run_suite(cfg, sampler)
        except Exception as exc:
            failures[name] = repr(exc)
            print(f"  {name} failed: {traceback.format_exc()}\n{server.log_tail()}", flush=True)
        finally:
            peers.stop(server, keep_data=args.keep_data)
    table = compare_table(results) if results else "(no results)"
    targets = check_targets(results)
    print()
    print(table)
    for name, why in failures.items():
        print(f"{name}: not measured: {why.splitlines()[0] if why else ''}")
    if targets:
        print("\n" + "\n".join(targets))
    path = RESULTS / f"{stamp}.json"
    write_json(
        path,
        {
            "command": " ".join(["python -m bench.run", *(sys.argv[1:] if argv is None else argv)]),
            "machine": machine(),
            "config": config,
            "results": {srv: [p.to_json() for p in phases] for srv, phases in results.items()},
            "failures": failures,
            "table": table,
            "targets": targets,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
