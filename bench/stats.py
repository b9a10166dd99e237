"""Per-worker phase results and their merge into one row per phase."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class PhaseResult:
    """What one worker process measured in one phase (pickled back to the parent)."""

    name: str
    ok: int = 0
    errors: int = 0
    nbytes: int = 0
    items: int = 0
    start: float = 0.0
    end: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failed_keys: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class PhaseStats:
    name: str
    ok: int
    errors: int
    seconds: float
    ops_per_s: float
    mb_per_s: float
    items_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    client_cores: float
    server_cores: float | None = None
    workers: int = 1
    note: str = ""
    start: float = 0.0
    end: float = 0.0
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


def merge(parts: list[PhaseResult]) -> PhaseStats:
    """Combine workers: throughput over the union of their windows, exact percentiles."""
    start = min(p.start for p in parts)
    end = max(p.end for p in parts)
    seconds = max(end - start, 1e-9)
    lats = sorted(x for p in parts for x in p.latencies)
    ok = sum(p.ok for p in parts)
    p50, p99 = percentile(lats, 0.50), percentile(lats, 0.99)
    return PhaseStats(
        name=parts[0].name,
        ok=ok,
        errors=sum(p.errors for p in parts),
        seconds=seconds,
        ops_per_s=ok / seconds,
        mb_per_s=sum(p.nbytes for p in parts) / seconds / 1e6,
        items_per_s=sum(p.items for p in parts) / seconds,
        p50_ms=None if p50 is None else p50 * 1e3,
        p99_ms=None if p99 is None else p99 * 1e3,
        client_cores=sum(p.cpu for p in parts) / seconds if seconds > 0.01 else 0.0,
        workers=len(parts),
        note="; ".join(sorted({p.note for p in parts if p.note})),
        start=start,
        end=end,
    )
