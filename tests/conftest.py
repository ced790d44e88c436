"""Shared fixtures: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL is the local server (`HERALD_TEST_PG`, default postgresql://postgres@127.0.0.1:5432).
Each test creates and drops its own database. Unreachable PostgreSQL skips those tests locally
and fails them under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from herald.store import migrate
from herald.store.database import Database, connect

PG_ADMIN = os.environ.get("HERALD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
_pg_ok: bool | None = None


async def _pg_reachable() -> bool:
    global _pg_ok
    if _pg_ok is None:
        import asyncpg

        try:
            conn = await asyncpg.connect(PG_ADMIN, timeout=5)
            await conn.close()
            _pg_ok = True
        except (OSError, asyncpg.PostgresError, TimeoutError):
            _pg_ok = False
    return _pg_ok


def _require_pg() -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is unreachable at {PG_ADMIN} (CI=true: this is a failure)")
    pytest.skip(f"PostgreSQL is unreachable at {PG_ADMIN}")


async def create_pg_database() -> str:
    """Create a fresh database; returns its URL."""
    import asyncpg

    if not await _pg_reachable():
        _require_pg()
    name = f"herald_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_url(db_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database of each kind."""
    if db_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'herald.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
        return
    url = await create_pg_database()
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await connect(db_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"
