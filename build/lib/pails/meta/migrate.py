"""Versioned schema migrations: numbered SQL files per backend, applied in order, recorded in a table.

Files live in ``pails/meta/migrations/<backend>/NNNN_name.sql``; versions start at 1 and have no
gaps. Each applied migration adds one row to ``schema_version``; the schema's version is the largest.
Loading and ordering (``load_migrations``, ``pending``) are backend-neutral; ``migrate_sqlite``
applies them to a SQLite connection, one transaction per migration (SQLite DDL is transactional);
``migrate_postgres`` applies them to an asyncpg connection in one transaction that holds a
transaction-scoped advisory lock, so gateways starting at once apply each migration once.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
)
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The migration files or the database's recorded version are inconsistent."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The migrations shipped for `backend` ("sqlite", "postgres"), sorted and checked for gaps."""
    folder = resources.files("pails.meta").joinpath("migrations", backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{backend} migrations: expected version {expected}, found {migration.version}"
            )
    return found


def pending(migrations: Sequence[Migration], current: int) -> list[Migration]:
    """The migrations after `current`; refuses a database newer than this code."""
    latest = migrations[-1].version if migrations else 0
    if current > latest:
        raise MigrationError(
            f"the database schema is version {current} but this Pails knows only up to {latest}; "
            "upgrade Pails instead of opening the database with an older release"
        )
    return [m for m in migrations if m.version > current]


def split_sqlite_statements(sql: str) -> list[str]:
    """Split a script into single statements (sqlite3 runs one per execute), triggers kept whole."""
    statements: list[str] = []
    buffer = ""
    pieces = sql.split(";")
    for index, piece in enumerate(pieces):
        buffer += piece
        if index < len(pieces) - 1:
            buffer += ";"
            if sqlite3.complete_statement(buffer):
                if _has_code(buffer):
                    statements.append(buffer.strip())
                buffer = ""
    if _has_code(buffer):
        raise MigrationError(f"unterminated SQL statement: {buffer.strip()[:80]!r}")
    return statements


def _has_code(sql: str) -> bool:
    code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return code.strip(" \t\r\n;") != ""


def sqlite_version(conn: sqlite3.Connection) -> int:
    conn.execute(SCHEMA_VERSION_DDL)
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def migrate_sqlite(conn: sqlite3.Connection, migrations: Sequence[Migration] | None = None) -> int:
    """Bring the database up to date and return its schema version.

    The connection must be in autocommit mode (isolation_level=None). Each migration runs in its
    own BEGIN IMMEDIATE transaction together with its schema_version row, and the version is read
    again under that lock, so two processes opening one database at once apply each migration once.
    """
    if conn.in_transaction:
        raise MigrationError("migrate_sqlite needs a connection outside any transaction")
    todo = load_migrations("sqlite") if migrations is None else list(migrations)
    current = sqlite_version(conn)
    for migration in pending(todo, current):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if sqlite_version(conn) < migration.version:
                for statement in split_sqlite_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()  # a no-op when SQLite already rolled back
            raise
    return sqlite_version(conn)


# --- PostgreSQL ---------------------------------------------------------------------------------

PG_SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version integer PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL)"
)
# pg_advisory_xact_lock key: "pails-mi" as a 64-bit integer, shared by every Pails gateway.
PG_MIGRATION_LOCK = int.from_bytes(b"pails-mi", "big") - 2**63


async def postgres_version(conn: Any) -> int:
    """The schema version of the database behind an asyncpg connection (0: never migrated)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))


async def migrate_postgres(conn: Any, migrations: Sequence[Migration] | None = None) -> int:
    """Bring a PostgreSQL database up to date and return its schema version.

    `conn` is an asyncpg connection outside any transaction. Everything pending runs in one
    transaction (PostgreSQL DDL is transactional) after pg_advisory_xact_lock: a second gateway
    starting at the same time waits for the lock, then reads the new version and applies nothing.
    The lock is released by the COMMIT or ROLLBACK, so a crashed migration leaves no lock behind.
    """
    if conn.is_in_transaction():
        raise MigrationError("migrate_postgres needs a connection outside any transaction")
    todo = load_migrations("postgres") if migrations is None else list(migrations)
    if not pending(todo, await postgres_version(conn)):
        return await postgres_version(conn)  # the common case: no lock, no DDL
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", PG_MIGRATION_LOCK)
        await conn.execute(PG_SCHEMA_VERSION_DDL)
        for migration in pending(todo, await postgres_version(conn)):
            await conn.execute(migration.sql)  # several statements: the simple query protocol
            await conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                time.time(),
            )
    return await postgres_version(conn)
