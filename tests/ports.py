"""Free TCP ports on 127.0.0.1 for the servers, nodes, gateways, Redis and PostgreSQL the tests start.

`free_port()` answers a port nobody listens on now and that no other pytest process of this run can be
handed: ports 16000-31999, below the kernel's ephemeral range (32768-60999 on Linux), are split
evenly between the pytest-xdist workers (PYTEST_XDIST_WORKER=gw0, gw1, ... of
PYTEST_XDIST_WORKER_COUNT), and each walks its own block in order. So two workers never pick
the same port in the moment between probing it and their server binding it, and a port given back by
a stopped node (which some tests restart on the same port) is not handed to anyone else soon after:
the walk only comes back to it after the whole block. Ports the kernel hands out itself (`bind(0)`,
outgoing connections, `pails dev-cluster`'s own nodes) all lie in the ephemeral range, so they never
meet these either.

A run without xdist (no PYTEST_XDIST_WORKER) has the whole range: the passes of scripts/test run
one after another, never side by side.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading

FIRST_PORT = 16000
LAST_PORT = 31999  # below the ephemeral range


def _block() -> tuple[int, int]:
    """(first port, size) of this process's block: the range split evenly between the workers."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw3"
    index = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    workers = max(int(count) if count.isdigit() else 1, index + 1)
    size = (LAST_PORT + 1 - FIRST_PORT) // workers
    if size < 100:
        raise RuntimeError(f"{workers} pytest-xdist workers: too many for ports {FIRST_PORT}-{LAST_PORT}")
    return FIRST_PORT + index * size, size


_first, _size = _block()
# Start somewhere in the block: ports of the previous pytest run may linger in TIME_WAIT.
_start = random.randrange(_size)
_offsets = itertools.cycle([*range(_start, _size), *range(_start)])
_lock = threading.Lock()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))  # no SO_REUSEADDR: a port in TIME_WAIT counts as taken
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port of this worker's block that can be bound right now."""
    with _lock:
        for _ in range(_size):
            port = _first + next(_offsets)
            if _bindable(port):
                return port
    raise RuntimeError(f"no free port in 127.0.0.1:{_first}-{_first + _size - 1}")
