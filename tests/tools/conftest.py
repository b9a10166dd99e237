"""Third-party S3 tools (rclone, s3cmd, minio-py, s3fs, pyarrow, DuckDB, polars, obstore) against Pails.

The server fixtures (`server`, `s3`, `bucket`, `start_server`) are the end-to-end suite's own, taken
from tests/s3/conftest.py (loaded once more under another module name), so these tests start, stop
and configure `pails server` exactly as tests/s3 does, PAILS_TEST_ENDPOINT included.

They run once per metadata backend that tests/s3 uses (PAILS_TEST_BACKENDS; listing order and key
encoding are the backend's business, and the tools notice both). PAILS_TEST_TOOLS_BACKENDS (e.g.
"sqlite") sets them for this directory alone.

A tool whose package cannot be imported is skipped with the reason; with CI set it fails instead,
since the CI run installs the `dev` extra, which lists every tool.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tooltest import MANY_KEYS, request_counts, requests_since

TESTS = Path(__file__).resolve().parents[1]


def _load_s3_suite_conftest():
    for folder in (TESTS, TESTS / "s3"):  # its own imports: pgtestdb (tests/), s3util (tests/s3/)
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    name = "pails_s3_suite_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTS / "s3" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_suite = _load_s3_suite_conftest()

# Re-exported fixtures: pytest registers every fixture object found in a conftest's namespace.
server = _suite.server
s3 = _suite.s3
bucket = _suite.bucket
start_server = _suite.start_server

ServerInfo = _suite.ServerInfo


def __getattr__(name: str):
    """tests/s3 modules do `from conftest import unique_bucket_name`, which reads whichever conftest was
    imported last under the name `conftest`; with `pytest tests/s3/x.py tests/tools` that is this one.
    So it answers for the suite's conftest too (plain names only: never pytest's own conftest variables
    such as pytest_plugins or collect_ignore)."""
    if not name.startswith(("_", "pytest", "collect_ignore")) and hasattr(_suite, name):
        return getattr(_suite, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


TOOLS_BACKENDS = [
    b.strip() for b in os.environ.get("PAILS_TEST_TOOLS_BACKENDS", "").split(",") if b.strip()
] or _suite.BACKENDS


@pytest.fixture(scope="session", params=TOOLS_BACKENDS)
def metadata_backend(request: pytest.FixtureRequest) -> str:
    """Overrides the suite's fixture of that name: the backend(s) the tools' server uses."""
    return str(request.param)


_BEFORE = pytest.StashKey[tuple[ServerInfo, Counter[tuple[str, str]]]]()


@pytest.fixture(autouse=True)
def _pails_request_log(request: pytest.FixtureRequest, server: ServerInfo) -> None:
    """Remembers the server's request counters, so that a failure report can list what the tool sent."""
    request.node.stash[_BEFORE] = (server, request_counts(server))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.when == "call" and report.failed and _BEFORE in item.stash:
        server, before = item.stash[_BEFORE]
        delta = requests_since(server, before)
        lines = [f"{api} -> {status}: {n}" for (api, status), n in sorted(delta.items())]
        errors = [line for line in lines if not line.split("-> ")[1].startswith("2")]
        text = "\n".join(["requests by API and status (non-2xx first):", *errors, "---", *lines])
        report.sections.append(("pails requests during this test", text))
    return report


@pytest.fixture(scope="session")
def many_keys_bucket(s3) -> Iterator[str]:
    """A bucket holding MANY_KEYS (more than one 1000-key listing page), each key's body its own name.
    Read-only for the tests that use it; made once per server."""
    name = _suite.unique_bucket_name("pt-many")
    s3.create_bucket(Bucket=name)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: s3.put_object(Bucket=name, Key=key, Body=key.encode()), MANY_KEYS))
        yield name
    finally:
        _suite.empty_and_delete_bucket(s3, name)
