"""Ring simulation: balance, movement on joins and leaves, zone spread (`pails.data.ring`).

    python -m bench.ring_sim [--chunks 10000000] [--nodes 1000] [--zones 10] [--replicas 3]
                             [--vnodes 256] [--change 10] [--workers 2] [--sweep 64,128,256,512,1024] [--quick]

Nodes get weights 1, 2 or 4 (seeded random) and zones round robin. Four rings are built: `base`,
`join` (`--change` new nodes added), `leave` (`--change` random nodes removed) and `drain` (those
nodes marked draining instead). Then `--chunks` random 128-bit chunk ids are placed on all four
with one hash per chunk (a bisect per ring; the replica set of each vnode arc is computed once per
ring), and the run reports:

- balance on `base`: replicas per unit of weight, max/mean, p99/mean, min/mean, stdev/mean, both
  as sampled and as expected from the arc lengths (no sampling noise);
- the share of chunks whose replica set changes on join and on leave, the share of replicas that
  move, and the ideal for comparison (the weight added or removed as a share of the total);
- that draining places every chunk exactly where removing does;
- the share of replica sets spanning min(replicas, zones) zones; timings, including the
  throughput of the public `Ring.replicas` call.

`--sweep` repeats the expected (arc-length) balance of `base` for other vnode counts per unit.
Results print as a table and go to bench/results/ring-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import platform
import random
import statistics
import time
from bisect import bisect_left
from pathlib import Path
from typing import Any

from pails.data.ring import DEFAULT_VNODES_PER_UNIT, Node, Ring, build_ring

RESULTS = Path(__file__).resolve().parent / "results"
WEIGHTS = (1.0, 2.0, 4.0)
_BATCH = 100_000
_SPACE = 1 << 64


def make_nodes(count: int, zones: int, rng: random.Random, start: int = 0) -> list[Node]:
    return [
        Node(
            node_id=f"node-{i:05}",
            address=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:7070",
            zone=f"zone-{i % zones:02}",
            weight=rng.choice(WEIGHTS),
        )
        for i in range(start, start + count)
    ]


class Interner:
    """Replica sets as small ints, shared by all rings, so comparing two placements is `!=`."""

    def __init__(self) -> None:
        self.ids: dict[frozenset[str], int] = {}
        self.sets: list[frozenset[str]] = []

    def arc_set_ids(self, ring: Ring, r: int) -> list[int]:
        """One id per vnode arc, plus a copy of arc 0 at the end (a bisect past the top wraps)."""
        out: list[int] = []
        for arc in range(ring.vnode_count):
            key = frozenset(n.node_id for n in ring.arc_replicas(arc, r))
            sid = self.ids.get(key)
            if sid is None:
                sid = self.ids[key] = len(self.sets)
                self.sets.append(key)
            out.append(sid)
        out.append(out[0])
        return out


def ratios(values: list[float]) -> dict[str, float]:
    mean = statistics.fmean(values)
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "max/mean": max(values) / mean,
        "p99/mean": p99 / mean,
        "min/mean": min(values) / mean,
        "stdev/mean": statistics.pstdev(values) / mean,
    }


def per_unit_weight(ring: Ring, arc_weights: list[float], r: int) -> list[float]:
    """Replicas per unit of weight for each node, given the amount that lands on each arc."""
    load = {n.node_id: 0.0 for n in ring.nodes}
    for arc, amount in enumerate(arc_weights):
        if amount:
            for node in ring.arc_replicas(arc, r):
                load[node.node_id] += amount
    return [load[n.node_id] / n.weight for n in ring.nodes if n.state == "up"]


def arc_lengths(ring: Ring) -> list[float]:
    """Share of the hash space whose walk starts at each vnode (the arc ending at it)."""
    pts = ring.points
    return [
        ((p - pts[i - 1]) % _SPACE or (_SPACE if len(pts) == 1 else 0)) / _SPACE for i, p in enumerate(pts)
    ]


def expected_balance(ring: Ring, r: int) -> dict[str, float]:
    return ratios(per_unit_weight(ring, arc_lengths(ring), r))


_Pairs = dict[tuple[int, int], int]
_STATE: tuple[Any, ...] = ()


def _place(job: tuple[int, int]) -> tuple[list[int], _Pairs, _Pairs, int]:
    """Place `count` random chunk ids (seeded) on the rings in `_STATE`; runs in a worker."""
    seed, count = job
    pts_base, pts_join, pts_leave, sid_base, sid_join, sid_leave, sid_drain = _STATE
    counts = [0] * (len(pts_base) + 1)
    pairs_join: _Pairs = {}
    pairs_leave: _Pairs = {}
    drain_differs = 0
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    rng = random.Random(seed)
    done = 0
    while done < count:
        batch = min(_BATCH, count - done)
        blob = rng.randbytes(16 * batch)
        for off in range(0, 16 * batch, 16):
            p = from_bytes(blake2b(blob[off : off + 16], digest_size=8).digest(), "big")
            a = bisect_left(pts_base, p)
            counts[a] += 1
            s = sid_base[a]
            s_join = sid_join[bisect_left(pts_join, p)]
            if s != s_join:
                pairs_join[s, s_join] = pairs_join.get((s, s_join), 0) + 1
            s_leave = sid_leave[bisect_left(pts_leave, p)]
            if s != s_leave:
                pairs_leave[s, s_leave] = pairs_leave.get((s, s_leave), 0) + 1
            if sid_drain[a] != s_leave:
                drain_differs += 1
        done += batch
    return counts, pairs_join, pairs_leave, drain_differs


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    r = args.replicas
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    nodes = make_nodes(args.nodes, args.zones, rng)
    base = build_ring(nodes, version=1, vnodes_per_unit=args.vnodes)
    joined_nodes = make_nodes(args.change, args.zones, rng, start=args.nodes)
    join = build_ring(nodes + joined_nodes, version=2, vnodes_per_unit=args.vnodes)
    gone = set(rng.sample([n.node_id for n in nodes], args.change))
    leave = build_ring([n for n in nodes if n.node_id not in gone], version=3, vnodes_per_unit=args.vnodes)
    drain = build_ring(
        [
            Node(n.node_id, n.address, n.zone, n.weight, "draining" if n.node_id in gone else "up")
            for n in nodes
        ],
        version=4,
        vnodes_per_unit=args.vnodes,
    )
    timings["build 4 rings (s)"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    interner = Interner()
    sid_base, sid_join, sid_leave, sid_drain = (
        interner.arc_set_ids(g, r) for g in (base, join, leave, drain)
    )
    timings["replica sets of every arc (s)"] = time.perf_counter() - t0

    # The hot loop: one hash per chunk, one bisect per ring (drain shares base's vnodes), split
    # over `--workers` forked processes that inherit the rings.
    global _STATE
    _STATE = (base.points, join.points, leave.points, sid_base, sid_join, sid_leave, sid_drain)
    shares = [args.chunks // args.workers + (i < args.chunks % args.workers) for i in range(args.workers)]
    jobs = [(args.seed + 1 + i, n) for i, n in enumerate(shares)]
    t0 = time.perf_counter()
    if args.workers == 1:
        parts = [_place(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            parts = pool.map(_place, jobs)
    counts = [sum(col) for col in zip(*(part[0] for part in parts), strict=True)]
    pairs_join: dict[tuple[int, int], int] = {}
    pairs_leave: dict[tuple[int, int], int] = {}
    for _, pj, pl, _ in parts:
        for merged, part in ((pairs_join, pj), (pairs_leave, pl)):
            for key, c in part.items():
                merged[key] = merged.get(key, 0) + c
    drain_differs = sum(part[3] for part in parts)
    place_s = time.perf_counter() - t0
    timings["place chunks on 4 rings (s)"] = place_s
    timings["chunks/s (4 rings per chunk)"] = args.chunks / place_s
    chunk_rng = random.Random(args.seed)

    counts[0] += counts.pop()  # past the top wraps to arc 0
    sampled = ratios(per_unit_weight(base, [float(c) for c in counts], r))
    expected = ratios(per_unit_weight(base, arc_lengths(base), r))

    zone_target = min(r, args.zones)
    zones_of = {n.node_id: n.zone for n in base.nodes}
    spread = sum(
        c
        for arc, c in enumerate(counts)
        if c and len({zones_of[n.node_id] for n in base.arc_replicas(arc, r)}) >= zone_target
    )

    def movement(pairs: dict[tuple[int, int], int]) -> dict[str, float]:
        chunks_moved = sum(pairs.values())
        replicas_moved = sum(c * len(interner.sets[a] - interner.sets[b]) for (a, b), c in pairs.items())
        return {
            "chunks whose set changes": chunks_moved / args.chunks,
            "replicas moved": replicas_moved / (args.chunks * r),
        }

    total_w = sum(n.weight for n in nodes)
    added_w = sum(n.weight for n in joined_nodes)
    removed_w = sum(n.weight for n in nodes if n.node_id in gone)
    f_join, f_leave = added_w / (total_w + added_w), removed_w / total_w
    moved_join, moved_leave = movement(pairs_join), movement(pairs_leave)
    moved_join |= {"ideal replicas moved": f_join, "ideal chunks changed": 1 - (1 - f_join) ** r}
    moved_leave |= {"ideal replicas moved": f_leave, "ideal chunks changed": 1 - (1 - f_leave) ** r}

    # The public API on its own (a warm ring): Ring.replicas per second.
    sample = [chunk_rng.randbytes(16) for _ in range(min(args.chunks, 1_000_000))]
    t0 = time.perf_counter()
    for chunk_id in sample:
        base.replicas(chunk_id, r)
    timings["Ring.replicas calls/s (warm)"] = len(sample) / (time.perf_counter() - t0)

    sweep: dict[str, dict[str, float]] = {}
    for v in args.sweep:
        t0 = time.perf_counter()
        ring = base if v == args.vnodes else build_ring(nodes, version=1, vnodes_per_unit=v)
        sweep[str(v)] = expected_balance(ring, r) | {
            "vnodes": ring.vnode_count,
            "build+walk (s)": time.perf_counter() - t0,
        }

    return {
        "params": {
            "chunks": args.chunks,
            "nodes": args.nodes,
            "zones": args.zones,
            "replicas": r,
            "vnodes_per_unit": args.vnodes,
            "change": args.change,
            "seed": args.seed,
            "weights": {str(w): sum(1 for n in nodes if n.weight == w) for w in WEIGHTS},
            "vnodes": base.vnode_count,
        },
        "balance sampled": sampled,
        "balance expected": expected,
        "join": moved_join | {"nodes": args.change, "weight share": f_join},
        "leave": moved_leave | {"nodes": args.change, "weight share": f_leave},
        "drain == leave": drain_differs == 0,
        "drain differs from leave (chunks)": drain_differs,
        f"sets spanning {zone_target} zones": spread / args.chunks,
        "sweep (expected balance)": sweep,
        "timings": timings,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def print_report(res: dict[str, Any]) -> None:
    p = res["params"]
    print(
        f"ring: {p['nodes']} nodes (weights {p['weights']}), {p['zones']} zones, R={p['replicas']}, "
        f"{p['vnodes_per_unit']} vnodes per unit ({p['vnodes']} vnodes), {p['chunks']:,} chunks"
    )
    print(
        f"{'balance (replicas per unit weight)':<36} {'max/mean':>9} {'p99/mean':>9} {'min/mean':>9} {'stdev':>7}"
    )
    for label in ("balance sampled", "balance expected"):
        b = res[label]
        print(
            f"{label:<36} {b['max/mean']:>9.3f} {b['p99/mean']:>9.3f} {b['min/mean']:>9.3f} {b['stdev/mean']:>7.3f}"
        )
    print(f"{'movement':<36} {'chunks':>9} {'ideal':>9} {'replicas':>9} {'ideal':>7}")
    for label in ("join", "leave"):
        m = res[label]
        print(
            f"{label + ' ' + str(m['nodes']) + ' nodes':<36} {m['chunks whose set changes']:>9.2%} "
            f"{m['ideal chunks changed']:>9.2%} {m['replicas moved']:>9.2%} {m['ideal replicas moved']:>7.2%}"
        )
    print(f"drain places exactly as leave: {res['drain == leave']}")
    for key, value in res.items():
        if key.startswith("sets spanning"):
            print(f"{key}: {value:.4%}")
    if res["sweep (expected balance)"]:
        print(
            f"{'vnodes per unit (expected balance)':<36} {'max/mean':>9} {'p99/mean':>9} {'min/mean':>9} {'vnodes':>9}"
        )
        for v, b in res["sweep (expected balance)"].items():
            print(
                f"{v:<36} {b['max/mean']:>9.3f} {b['p99/mean']:>9.3f} {b['min/mean']:>9.3f} {b['vnodes']:>9}"
            )
    for key, value in res["timings"].items():
        print(f"{key:<36} {value:>12,.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=10_000_000)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument(
        "--vnodes", type=int, default=DEFAULT_VNODES_PER_UNIT, help="vnodes per unit of weight"
    )
    parser.add_argument("--change", type=int, default=10, help="nodes that join, and nodes that leave")
    parser.add_argument("--sweep", default="", help="comma-separated vnodes-per-unit values")
    parser.add_argument("--workers", type=int, default=2, help="processes placing chunks")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="100,000 chunks")
    args = parser.parse_args(argv)
    if args.quick:
        args.chunks = min(args.chunks, 100_000)
    args.sweep = [int(v) for v in args.sweep.split(",") if v.strip()]
    started = time.perf_counter()
    res = simulate(args)
    res["timings"]["total (s)"] = time.perf_counter() - started
    print_report(res)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ring-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
