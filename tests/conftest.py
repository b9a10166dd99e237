"""Shared by tests/unit and tests/s3: this directory is on sys.path, so `import pgtestdb` works.

Markers that decide how scripts/test schedules a test (decision 0020):

- `serial`: the test asserts on wall-clock bounds under load or injects faults with sub-second
  timeouts (killed, paused or restarted nodes and databases). scripts/test runs these in a pass of
  their own, one at a time, after the parallel passes, so no other test competes for the two CPUs.
- `xdist_group(name="memory-bound")` (pytest-xdist): asserts on a server's peak RSS while it streams
  gigabytes. They run in the parallel pass, all on one worker, so never two at once.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "serial: wall-clock bounds or fault injection with short timeouts; scripts/test runs these "
        "alone, after the parallel passes (-m serial / -m 'not serial')",
    )


@pytest.hookimpl(trylast=True)  # after pytest's own grouping of tests by parametrized fixture
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On pytest-xdist workers, the long tests first (`slow`, and the memory-bound group, which one
    worker works through alone): started last, they would leave the other workers idle at the end.
    Every worker sorts alike, so the collections still agree; a run without xdist keeps file order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    items.sort(
        key=lambda item: 0 if item.get_closest_marker("slow") or item.get_closest_marker("xdist_group") else 1
    )
