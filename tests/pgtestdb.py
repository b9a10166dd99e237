"""Throwaway PostgreSQL databases for tests.

PAILS_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres) names a server and
a role allowed to CREATE DATABASE. Each test database is `pails_test_<random>`, dropped afterwards.
When the server is unreachable, tests skip with the reason, unless CI is set: then they fail.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ADMIN_URL = os.environ.get("PAILS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@functools.cache
def _unreachable_reason() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(ADMIN_URL, timeout=3)
        await conn.close()

    try:  # in a thread of its own: the caller may be inside a running event loop
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except Exception as exc:
        return f"PostgreSQL at {ADMIN_URL} is unreachable ({type(exc).__name__}: {exc})"
    return None


def require_postgres() -> None:
    """Skip (or, with CI set, fail) the calling test when PostgreSQL cannot be reached."""
    reason = _unreachable_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason}; CI is set, so this is a failure, not a skip")
    pytest.skip(f"{reason}; set PAILS_TEST_POSTGRES_URL or start PostgreSQL to run these tests")


def dsn_for(name: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + name))


async def create_database() -> tuple[str, str]:
    """A new empty database: (name, dsn)."""
    name = f"pails_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, dsn_for(name)


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """The DSN of a database that exists for the duration of the block."""
    require_postgres()
    name, dsn = await create_database()
    try:
        yield dsn
    finally:
        await drop_database(name)


def _in_thread(make: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()


def create_database_sync() -> tuple[str, str]:
    """create_database() for synchronous fixtures (runs its own event loop in a thread)."""
    return cast(tuple[str, str], _in_thread(create_database))


def drop_database_sync(name: str) -> None:
    _in_thread(lambda: drop_database(name))


def postgres_unreachable_reason() -> str | None:
    return _unreachable_reason()
