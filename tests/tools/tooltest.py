"""Helpers for the third-party tool tests: import-or-skip (fail in CI), finding executables,
a directory tree of test files, and running a command with its output kept for the failure message."""

from __future__ import annotations

import importlib
import os
import random
import re
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import pytest
from pgtestdb import in_ci

MIB = 1024 * 1024
VENV_BIN = Path(sys.executable).parent

# Relative path -> size. Nested directories, a 0-byte file, a 12 MiB file (below every tool's
# multipart threshold, so a single PUT), non-ASCII names and characters that need URL encoding.
TREE_SIZES: dict[str, int] = {
    "top.txt": 12,
    "empty.bin": 0,
    "nested/a/b/c/deep.txt": 1_000,
    "nested/a/sibling.json": 333,
    "nested/other/x.bin": 65_537,
    "big/twelve-mib.bin": 12 * MIB,
    "ünïcødé/日本語 ファイル.txt": 2_048,
    "ünïcødé/emoji 🎉 Ωmega.dat": 77,
    "special/spaces and (parens) a+b=c&d.txt": 5,
}

# The keys of the `many_keys_bucket` fixture: more than one 1000-key listing page, plus 3 "directories".
MANY_KEYS = [f"many/k-{i:05d}" for i in range(1_050)] + [f"many/sub{j}/x" for j in range(3)]
MANY_TOP = [k for k in MANY_KEYS if "/sub" not in k]
MANY_PREFIXES = [f"many/sub{j}/" for j in range(3)]


def _missing(what: str, detail: str) -> None:
    msg = f"{what} is not available ({detail}); `pip install -e '.[dev]'` installs it"
    if in_ci():
        pytest.fail(f"{msg}; CI is set, so this is a failure, not a skip")
    pytest.skip(msg)


def need(module: str, package: str | None = None) -> ModuleType:
    """Import `module`, or skip the test (fail it with CI set) naming the PyPI `package`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        _missing(f"Python package {package or module!r}", f"{type(exc).__name__}: {exc}")
        raise  # unreachable: skip/fail raise


def need_executable(name: str, package: str) -> str:
    """The venv's own copy of a console tool (shipped by a PyPI package) or one on PATH."""
    local = VENV_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        _missing(f"executable {name!r} (PyPI package {package!r})", f"not in {VENV_BIN} nor on PATH")
    assert found is not None
    return found


def content(rel: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes for a test file."""
    return random.Random(f"{rel}:{size}").randbytes(size)


def make_tree(root: Path, sizes: Mapping[str, int] = TREE_SIZES) -> dict[str, bytes]:
    files = {rel: content(rel, size) for rel, size in sizes.items()}
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_tree(got: Mapping[str, bytes], want: Mapping[str, bytes]) -> None:
    assert sorted(got) == sorted(want)
    bad = [rel for rel in want if got[rel] != want[rel]]
    assert not bad, f"content differs for {bad}"


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(cmd),
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}"
            f"\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def list_keys(client, bucket: str, prefix: str = "") -> dict[str, int]:
    """Key -> size of every object under prefix (boto3, the suite's reference client)."""
    keys: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            keys[obj["Key"]] = obj["Size"]
    return keys


def clean_env() -> dict[str, str]:
    """This process's environment without AWS settings that a tool could pick up instead of ours."""
    env = dict(os.environ)
    for var in list(env):
        if var.startswith(("AWS_", "RCLONE_")) or var in ("S3CMD_CONFIG",):
            env.pop(var)
    return env


def empty_and_delete_bucket(client, name: str) -> None:
    """Best-effort cleanup of a bucket a test made itself (not through the `bucket` fixture)."""
    import pails_s3_suite_conftest  # loaded by tests/tools/conftest.py

    pails_s3_suite_conftest.empty_and_delete_bucket(client, name)


_REQUESTS = re.compile(r"^pails_s3_requests_total\{([^}]*)\}\s+([0-9.eE+-]+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def request_counts(server) -> Counter[tuple[str, str]]:
    """(S3 API, HTTP status) -> requests served so far, from the server's /metrics; empty when the
    target has no such endpoint (an external reference server)."""
    counts: Counter[tuple[str, str]] = Counter()
    try:
        with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    except OSError:
        return counts
    for line in body.splitlines():
        m = _REQUESTS.match(line)
        if m:
            labels = dict(_LABEL.findall(m.group(1)))
            counts[(labels.get("api", "?"), labels.get("status", "?"))] += int(float(m.group(2)))
    return counts


def requests_since(server, before: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    after = request_counts(server)
    after.subtract(before)
    return +after


def api_total(counts: Counter[tuple[str, str]], api: str) -> int:
    return sum(n for (name, _status), n in counts.items() if name == api)
