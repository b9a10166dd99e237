"""Worker-process side of the load generator: one asyncio/uvloop loop, one pooled session.

Each job runs a sequence of phases; workers line up on a shared barrier between phases so
all processes measure the same operation at the same time.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from bench.client import S3Client, Target
from bench.payload import LargePattern, small_body
from bench.rawhttp import OpFailed, RawS3
from bench.stats import PhaseResult

Op = Callable[[int, int], Awaitable[int | None]]  # (task, i) -> bytes moved; None: no more work
LIST_PREFIX = "list/"


@dataclass(frozen=True)
class JobSpec:
    kind: str  # "small" | "fill" | "list" | "large"
    label: str  # suffix of phase names, e.g. "4KiB c16"
    concurrency: int  # total in-flight requests across all workers
    duration: float
    max_ops: int  # cap per phase across all workers
    size: int = 0
    keys: int = 0
    exclude: tuple[str, ...] = ()
    tag: str = "bench"


def list_key(i: int) -> str:
    return f"{LIST_PREFIX}k{i:06d}"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_phase(
    name: str, tasks: int, duration: float, max_ops: int, op: Op, min_ops: int = 0
) -> PhaseResult:
    """Run ``op`` from ``tasks`` coroutines until ``duration`` s or ``max_ops`` ops, whichever first."""
    res = PhaseResult(name)
    issued = 0
    cpu0 = _cpu()
    res.start = time.time()
    deadline = time.perf_counter() + duration

    async def loop(t: int) -> None:
        nonlocal issued
        i = 0
        while issued < max_ops and (time.perf_counter() < deadline or i < min_ops):
            issued += 1
            t0 = time.perf_counter()
            try:
                r = await op(t, i)
            except Exception as exc:  # any failure is an error, never a fast success
                res.errors += 1
                res.note = res.note or f"first error: {exc!r}"[:200]
                i += 1
                continue
            if r is None:
                issued -= 1
                return
            res.ok += 1
            res.nbytes += r
            res.latencies.append(time.perf_counter() - t0)
            i += 1

    await asyncio.gather(*(loop(t) for t in range(tasks)))
    res.end = time.time()
    res.cpu = _cpu() - cpu0
    return res


Sync = Callable[[], Awaitable[None]]


async def _small(cl: RawS3, spec: JobSpec, wid: int, tasks: int, sync: Sync) -> list[PhaseResult]:
    size, quota = spec.size, spec.max_ops
    keys: list[list[str]] = [[] for _ in range(tasks)]
    deleted = [0] * tasks

    async def put(t: int, i: int) -> int:
        key = f"{spec.tag}/w{wid}/t{t}/{i}"
        await cl.put(key, small_body(key, size))
        keys[t].append(key)
        return size

    async def get(t: int, i: int) -> int | None:
        if not keys[t]:
            return None
        key = keys[t][i % len(keys[t])]
        if await cl.get(key) != small_body(key, size):
            raise OpFailed("GET body differs from what was PUT")
        return size

    async def head(t: int, i: int) -> int | None:
        if not keys[t]:
            return None
        status, length = await cl.head(keys[t][i % len(keys[t])])
        if status != 200 or length != size:
            raise OpFailed(f"HEAD HTTP {status} Content-Length {length}")
        return 0

    async def delete(t: int, i: int) -> int | None:
        if i >= len(keys[t]):
            return None
        deleted[t] += 1
        await cl.delete(keys[t][i])
        return 0

    out = []
    ops: list[tuple[str, Op]] = [("PUT", put), ("GET", get), ("HEAD", head), ("DELETE", delete)]
    for name, op in ops:
        await sync()
        out.append(await run_phase(f"{name} {spec.label}", tasks, spec.duration, quota, op))
    for t in range(tasks):  # deleted objects must really be gone
        if deleted[t] and (await cl.head(keys[t][0]))[0] != 404:
            out[-1].errors += 1
            out[-1].note = out[-1].note or "deleted object still readable"
    return out


async def _fill(cl: RawS3, spec: JobSpec, wid: int, nworkers: int, tasks: int) -> list[PhaseResult]:
    todo = iter(range(wid, spec.keys, nworkers))
    failed: list[str] = []

    async def put(t: int, i: int) -> int | None:
        n = next(todo, None)
        if n is None:
            return None
        try:
            await cl.put(list_key(n), b"")
        except Exception:
            failed.append(list_key(n))
            raise
        return 0

    res = await run_phase(f"PUT 0B x{spec.keys} c{spec.concurrency}", tasks, spec.duration, spec.keys, put)
    res.failed_keys = failed + [list_key(n) for n in todo]
    return [res]


async def _list(cl: RawS3, spec: JobSpec) -> list[PhaseResult]:
    expected = {list_key(i) for i in range(spec.keys)} - set(spec.exclude)
    listed = [0]

    async def list_all(t: int, i: int) -> int:
        seen: list[str] = []
        token: str | None = None
        while True:
            keys, token = await cl.list_page(LIST_PREFIX, token)
            seen.extend(keys)
            if token is None or len(seen) > 2 * spec.keys + 1000:
                break
        if len(seen) != len(expected) or set(seen) != expected:
            raise OpFailed(f"listing returned {len(seen)} keys, expected {len(expected)}")
        listed[0] += len(seen)
        return 0

    out = await run_phase(f"LIST {spec.label}", 1, spec.duration, spec.max_ops, list_all, min_ops=1)
    out.items = listed[0]
    return [out]


async def _large(cl: S3Client, spec: JobSpec, wid: int, nworkers: int, sync: Sync) -> list[PhaseResult]:
    patterns: dict[str, LargePattern] = {}
    keys: list[str] = []
    quota = max(1, spec.max_ops // nworkers)

    def pattern(key: str) -> LargePattern:
        if key not in patterns:
            patterns[key] = LargePattern(key, spec.size)
        return patterns[key]

    async def put(t: int, i: int) -> int:
        key = f"{spec.tag}/w{wid}/{i}"
        if not await cl.put_stream(key, pattern(key)):
            raise OpFailed("large PUT failed")
        keys.append(key)
        return spec.size

    async def get(t: int, i: int) -> int | None:
        if not keys:
            return None
        key = keys[i % len(keys)]
        if not await cl.get_stream(key, pattern(key)):
            raise OpFailed("large GET failed or body differs from what was PUT")
        return spec.size

    await sync()
    out = [await run_phase(f"PUT {spec.label}", 1, spec.duration, quota, put, min_ops=1)]
    await sync()
    out.append(await run_phase(f"GET {spec.label}", 1, spec.duration, quota, get, min_ops=1))
    raw = RawS3(cl.target)
    for key in keys:  # free the server's disk; not timed
        try:
            await raw.delete(key)
        except Exception:
            pass
    await raw.close()
    return out


async def _dispatch(
    target: Target, spec: JobSpec, wid: int, nworkers: int, barrier: Barrier
) -> list[PhaseResult]:
    tasks = spec.concurrency // nworkers + (1 if wid < spec.concurrency % nworkers else 0)

    async def sync() -> None:
        await asyncio.to_thread(barrier.wait, spec.duration + 4 * target.timeout + 60)

    if spec.kind == "large":
        big = S3Client(target, tasks)
        try:
            return await _large(big, spec, wid, nworkers, sync)
        finally:
            await big.close()
    cl = RawS3(target)
    try:
        if spec.kind == "small":
            return await _small(cl, spec, wid, tasks, sync)
        if spec.kind == "fill":
            return await _fill(cl, spec, wid, nworkers, tasks)
        if spec.kind == "list":
            return await _list(cl, spec)
        raise ValueError(f"unknown job kind {spec.kind}")
    finally:
        await cl.close()


def worker_main(
    target: Target, spec: JobSpec, wid: int, nworkers: int, barrier: Barrier, queue: Queue[object]
) -> None:
    """Process entry point: run one job and put ``(wid, results, error)`` on ``queue``."""
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(_dispatch(target, spec, wid, nworkers, barrier))
        queue.put((wid, results, ""))
    except BaseException as exc:
        barrier.abort()
        queue.put((wid, [], repr(exc)[:500]))
