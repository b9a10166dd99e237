"""Rows read through SQLite's read connection, kept until anyone commits to the database file.

SQLite's `PRAGMA data_version` changes on a connection whenever another connection has committed
to the file since it last asked: this process's writer thread, another `--workers` process, or any
other program. The read connection never writes, so an unchanged value proves that nothing read
through it since has changed. Asking costs one short statement; the object lookup it saves also
decodes a row. See docs/decisions/0019.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

_DATA_VERSION = "PRAGMA data_version"


class CommitValidatedCache(Generic[V]):
    """A bounded map of values read through `connection`, emptied by every commit to its file.

    Call `current()` before each lookup (on the thread that uses the connection), then `get` /
    `put`. A value put after a commit that `current()` has not seen yet is dropped at the next
    `current()`, so a stale value is never served after a client saw its write acknowledged."""

    __slots__ = ("_cursor", "_entries", "_limit", "_version")

    def __init__(self, connection: sqlite3.Connection, limit: int = 4096) -> None:
        self._cursor = connection.cursor()  # reused: cheaper than a new cursor per question
        self._limit = limit
        self._entries: dict[Hashable, V | None] = {}
        self._version = -1

    def current(self) -> dict[Hashable, V | None]:
        """The entries still valid now (a dict to look keys up in directly)."""
        version = self._cursor.execute(_DATA_VERSION).fetchone()[0]
        if version != self._version:
            self._version = version
            self._entries = {}
        return self._entries

    def put(self, entries: dict[Hashable, V | None], key: Hashable, value: V | None) -> None:
        """Keep `value` (None too: "no such row") in `entries`, as returned by `current()`."""
        if len(entries) >= self._limit:
            del entries[next(iter(entries))]  # the oldest entry
        entries[key] = value
