"""Migration 0003 creates the ledger exactly as `store/schema.py` declares it, and reverts cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from herald.store import migrate
from herald.store.schema import metadata

LEDGER = {"delivery", "delivery_attempt"}


def _ledger_diffs(diffs: list[Any]) -> list[Any]:
    out = []
    for d in diffs:
        for item in d if isinstance(d, list) else [d]:
            if any(getattr(x, "name", None) in LEDGER or getattr(getattr(x, "table", None), "name", None) in LEDGER
                   for x in item[1:] if x is not None):
                out.append(item)
    return out


async def _diffs(url: str) -> list[Any]:
    engine = create_async_engine(migrate.sqlalchemy_url(url))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    from sqlalchemy import inspect

    engine = create_async_engine(migrate.sqlalchemy_url(url))
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_schema_matches_migration_and_downgrade_removes_the_ledger(db_url: str) -> None:
    assert await _tables(db_url) >= LEDGER
    assert _ledger_diffs(await _diffs(db_url)) == []
    await asyncio.to_thread(migrate.downgrade, db_url, "0002")
    assert not (LEDGER & await _tables(db_url))
    await asyncio.to_thread(migrate.upgrade, db_url)
    assert await _tables(db_url) >= LEDGER
