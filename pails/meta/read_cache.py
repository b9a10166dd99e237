"""Rows read through SQLite's read connection, kept until anyone commits to the database file.

SQLite's `PRAGMA data_version` changes on a connection whenever another connection has committed
to the file since it last asked: this process's writer thread, another `--workers` process, or any
other program. The read connection never writes, so an unchanged value proves that nothing read
through it since has changed. Asking costs one short statement; the object lookup it saves also
decodes a row, and is asked at most once per turn of the event loop. See docs/decisions/0019.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

_DATA_VERSION = "PRAGMA data_version"


class CommitValidatedCache(Generic[V]):
    """A bounded map of values read through `connection`, emptied by every commit to its file.

    Call `current()` before each lookup (on the event loop that uses the connection), then look
    keys up in what it returns and `put` new values. A value put after a commit that `current()`
    has not seen yet is dropped at the next `current()`.

    `current()` asks SQLite at most once per turn of the event loop. That is enough: whatever a
    read must observe (a commit acknowledged to a client before its request arrived, or a write
    the reading task awaited) happened before the callback that runs the read was scheduled. A
    callback scheduled before the question was asked runs before the `_expire` callback the
    question schedules (callbacks run in the order they were scheduled); one scheduled after it
    runs after `_expire`, so it asks again."""

    __slots__ = ("_cursor", "_entries", "_fresh", "_limit", "_version")

    def __init__(self, connection: sqlite3.Connection, limit: int = 32768) -> None:
        self._cursor = connection.cursor()  # reused: cheaper than a new cursor per question
        self._limit = limit
        self._entries: dict[Hashable, V | None] = {}
        self._version = -1
        self._fresh = False

    def current(self) -> dict[Hashable, V | None]:
        """The entries still valid now (a dict to look keys up in directly)."""
        if self._fresh:
            return self._entries
        version = self._cursor.execute(_DATA_VERSION).fetchone()[0]
        if version != self._version:
            self._version = version
            self._entries = {}
        self._fresh = True
        asyncio.get_running_loop().call_soon(self._expire)
        return self._entries

    def _expire(self) -> None:
        self._fresh = False

    def put(self, entries: dict[Hashable, V | None], key: Hashable, value: V | None) -> None:
        """Keep `value` (None too: "no such row") in `entries`, as returned by `current()`."""
        if len(entries) >= self._limit:
            del entries[next(iter(entries))]  # the oldest entry
        entries[key] = value
