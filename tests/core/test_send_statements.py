"""A send's number of SQL statements does not grow with the number of recipients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from herald.catalog import FileCatalog
from herald.catalog.generate import generate_org
from herald.core.clock import SystemClock
from herald.core.model import WEB_CHANNEL, EntityRecipients, Payload, Principal, SendRequest
from herald.core.service import NotificationService
from herald.core.settings_model import SettingsPolicy
from herald.store.database import Database
from herald.store.sql_store import SqlNotificationStore


class _CountingExecutor:
    def __init__(self, inner: Any, log: list[str]) -> None:
        self._inner = inner
        self._log = log

    async def fetch(self, sql: str, params: Any = None) -> Any:
        self._log.append(sql)
        return await self._inner.fetch(sql, params)

    async def fetchrow(self, sql: str, params: Any = None) -> Any:
        self._log.append(sql)
        return await self._inner.fetchrow(sql, params)

    async def execute(self, sql: str, params: Any = None) -> Any:
        self._log.append(sql)
        return await self._inner.execute(sql, params)


class CountingDatabase(_CountingExecutor):
    """Wraps a real database and records every statement, inside transactions too."""

    def __init__(self, inner: Database) -> None:
        self.statements: list[str] = []
        super().__init__(inner, self.statements)
        self.dialect = inner.dialect

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._inner.transaction() as tx:
            yield _CountingExecutor(tx, self.statements)


class _Signals:
    def __init__(self) -> None:
        self.published: list[Any] = []

    async def publish(self, signals: Any) -> None:
        self.published.extend(signals)


async def _send_and_count(db: Database, catalog: FileCatalog, refs: list[str], title: str) -> tuple[int, int]:
    counting = CountingDatabase(db)
    signals = _Signals()
    service = NotificationService(
        store=SqlNotificationStore(counting),  # type: ignore[arg-type]
        resolver=catalog, signals=signals, policy=SettingsPolicy(None, [WEB_CHANNEL]), clock=SystemClock(),
        app_base_url="http://localhost",
    )
    sent = await service.send(Principal("service", "external:bench"),
                              SendRequest(EntityRecipients(tuple(refs)), Payload(title=title, sent={"title": title})))
    return len(counting.statements), len(sent)


async def test_statement_count_is_independent_of_recipients(db: Database) -> None:
    catalog = FileCatalog.from_files([])
    one = [f"user:default/solo-{i}" for i in range(1)]
    many = [f"user:default/many-{i}" for i in range(1000)]
    n1, sent1 = await _send_and_count(db, catalog, one, "one")
    n1000, sent1000 = await _send_and_count(db, catalog, many, "many")
    assert (sent1, sent1000) == (1, 1000)
    assert n1 == n1000, (n1, n1000)


async def test_group_send_statements_do_not_grow(db: Database, tmp_path: Any) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(generate_org(1000, 10))
    catalog = FileCatalog.from_files([str(org)])
    root = "group:default/acme"  # generate_org's root organization
    small = next(u.ref for u in catalog.users())
    n_small, _ = await _send_and_count(db, catalog, [small], "small")
    n_big, sent = await _send_and_count(db, catalog, [root], "big")
    assert sent == 1000
    assert n_small == n_big
