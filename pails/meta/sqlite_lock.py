"""A cross-process lock around each SQLite write transaction (`pails server --workers N`).

Every worker has its own group-commit writer on the same database file. Left to SQLite, a writer
that finds the write lock taken gets SQLITE_BUSY and its busy handler sleeps in growing
millisecond steps (1, 2, 5, 10 ms...), however soon the lock is released: the worker's queue stalls
and each commit covers fewer operations. An flock(2) on a file next to the database instead puts
the waiting writer to sleep in the kernel and wakes it the moment the other one commits, so the
writers take turns and each turn commits everything its worker queued meanwhile. Uncontended (one
process) it costs two system calls per transaction. See docs/decisions/0007.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class WriterLock:
    def __init__(self, database: Path) -> None:
        self._fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)
