"""Plain-text tables and JSON output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.stats import PhaseStats


def _fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    out.append(line)
    for r in rows:
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(out)


def headline(s: PhaseStats) -> tuple[float | None, str]:
    """The number a phase is judged by, and its unit."""
    if s.skipped or (s.ok == 0 and s.errors == 0):
        return None, ""
    if s.name.startswith("LIST"):
        return s.items_per_s, "keys/s"
    if "MiB" in s.name or "GiB" in s.name:
        return s.mb_per_s, "MB/s"
    return s.ops_per_s, "ops/s"


def phase_table(phases: list[PhaseStats]) -> str:
    headers = [
        "phase",
        "rate",
        "unit",
        "p50 ms",
        "p99 ms",
        "ok",
        "errors",
        "client cores",
        "server cores",
        "note",
    ]
    rows = []
    for s in phases:
        value, unit = headline(s)
        rows.append(
            [
                s.name,
                _fmt(value),
                unit,
                _fmt(s.p50_ms, 2),
                _fmt(s.p99_ms, 2),
                str(s.ok),
                str(s.errors),
                _fmt(s.client_cores, 2),
                _fmt(s.server_cores, 2),
                s.note[:60],
            ]
        )
    return table(headers, rows)


def _cell(s: PhaseStats | None) -> str:
    if s is None:
        return "-"
    if s.skipped:
        return "skipped"
    value, _ = headline(s)
    text = _fmt(value)
    return f"{text} !{s.errors} err" if s.errors else text


def compare_table(results: dict[str, list[PhaseStats]], base: str = "pails") -> str:
    servers = list(results)
    others = [s for s in servers if s != base] if base in servers else []
    headers = ["metric", *servers, *[f"{base}/{o}" for o in others]]
    names: list[str] = []
    for phases in results.values():
        names.extend(p.name for p in phases if p.name not in names)
    by = {srv: {p.name: p for p in phases} for srv, phases in results.items()}
    rows = []
    for name in names:
        unit = next(
            (headline(by[s][name])[1] for s in servers if name in by[s] and headline(by[s][name])[1]), ""
        )
        row = [f"{name} {unit}".strip(), *[_cell(by[s].get(name)) for s in servers]]
        mine = by.get(base, {}).get(name)
        for o in others:
            theirs = by[o].get(name)
            a = headline(mine)[0] if mine and not mine.errors else None
            b = headline(theirs)[0] if theirs and not theirs.errors else None
            row.append(f"{a / b:.2f}x" if a is not None and b else "-")
        rows.append(row)
        if unit == "ops/s":
            lat = [
                f"{_fmt(by[s][name].p50_ms, 2)} / {_fmt(by[s][name].p99_ms, 2)}" if name in by[s] else "-"
                for s in servers
            ]
            rows.append(["  p50 / p99 ms", *lat, *["" for _ in others]])
    errs = [str(sum(p.errors for p in results[s])) for s in servers]
    rows.append(["total errors", *errs, *["" for _ in others]])
    return table(headers, rows)


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    kernel = subprocess.run(["uname", "-r"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        # The venv's base interpreter: builds of one version differ up to 2x in speed (0018).
        "python_base": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        "loadavg_at_start": os.getloadavg(),
        "kernel": kernel,
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True))
