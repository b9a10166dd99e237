"""Free TCP ports on 127.0.0.1 for the servers, nodes, gateways, Redis and PostgreSQL the tests start.

`free_port()` answers a port nobody listens on now and that no other pytest process of this run can be
handed: each pytest-xdist worker (PYTEST_XDIST_WORKER=gw0, gw1, ...) owns a block of its own below
the kernel's ephemeral range (32768-60999 on Linux), and walks it in order. So two workers never pick
the same port in the moment between probing it and their server binding it, and a port given back by
a stopped node (which some tests restart on the same port) is not handed to anyone else soon after:
the walk only comes back to it after the whole block. Ports the kernel hands out itself (`bind(0)`,
outgoing connections, `pails dev-cluster`'s own nodes) all lie in the ephemeral range, so they never
meet these either.

A run without xdist (no PYTEST_XDIST_WORKER) uses block 0, like gw0: the passes of scripts/test run
one after another, never side by side.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading

FIRST_PORT = 16000
BLOCK = 2000  # ports per worker
MAX_WORKERS = 8  # 16000..31999, below the ephemeral range


def _worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw3"
    digits = name[2:] if name.startswith("gw") else ""
    return int(digits) % MAX_WORKERS if digits.isdigit() else 0


_first = FIRST_PORT + _worker_index() * BLOCK
# Start somewhere in the block: ports of the previous pytest run may linger in TIME_WAIT.
_offsets = itertools.cycle(range(BLOCK))
for _ in range(random.randrange(BLOCK)):
    next(_offsets)
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
        for _ in range(BLOCK):
            port = _first + next(_offsets)
            if _bindable(port):
                return port
    raise RuntimeError(f"no free port in 127.0.0.1:{_first}-{_first + BLOCK - 1}")
