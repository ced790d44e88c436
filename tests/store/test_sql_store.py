"""The SQL store on SQLite and PostgreSQL: the same behaviour on both."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from herald.core.model import ListFilter, ListQuery, OrderField
from herald.core.ports import NewNotification
from herald.store import migrate
from herald.store.database import Database, connect
from herald.store.sql_store import SqlNotificationStore

U, OTHER = "user:default/john.doe", "user:default/jane.doe"


def base(created: int, title: str = "t", **kw: Any) -> NewNotification:
    fields: dict[str, Any] = {"origin": "o", "created": created, "title": title, "description": None,
                              "link": None, "severity": "normal", "topic": None, "scope": None, "icon": None}
    fields.update(kw)
    return NewNotification(**fields)


def nid() -> str:
    return str(uuid.uuid4())


async def send(store: SqlNotificationStore, users: list[str], b: NewNotification) -> list[str]:
    rows = await store.save_user_notifications(b, users, [nid() for _ in users])
    return [r.notification.id for r in rows]


async def test_round_trip_of_every_field(db: Database) -> None:
    s = SqlNotificationStore(db)
    [i] = await send(s, [U], base(1000, "Title", description="Desc", link="/catalog", severity="critical",
                                  topic="tp", icon="docs"))
    n = await s.get(U, i)
    assert n is not None
    assert (n.user, n.title, n.description, n.link, n.severity, n.topic, n.icon, n.origin) == (
        U, "Title", "Desc", "/catalog", "critical", "tp", "docs", "o")
    assert await s.get(OTHER, i) is None


async def test_listing_filters_order_and_paging(db: Database) -> None:
    s = SqlNotificationStore(db)
    ids = []
    for k, (sev, topic) in enumerate([("low", "b"), ("high", "a"), ("normal", None), ("critical", "c")]):
        ids += await send(s, [U], base(1000 + 10 * k, f"Item {k} ÜNÏCÖDÉ" if k == 2 else f"Item {k}",
                                       severity=sev, topic=topic))
    await send(s, [OTHER], base(5000, "other"))
    bcast = (await s.save_broadcast(base(1005, "broadcast 100%"), nid())).notification.id
    page = await s.list_page(U, ListQuery())
    assert [n.id for n in page.notifications] == [ids[3], ids[2], ids[1], bcast, ids[0]]
    assert page.total_count == 5
    assert page.notifications[3].user is None
    page = await s.list_page(U, ListQuery(order=(OrderField("topic", "asc"),)))
    assert [n.topic for n in page.notifications] == ["a", "b", "c", None, None]
    page = await s.list_page(U, ListQuery(order=(OrderField("created", "asc"),), offset=1, limit=2))
    assert [n.id for n in page.notifications] == [bcast, ids[1]] and page.total_count == 5
    page = await s.list_page(U, ListQuery(offset=10, limit=5))
    assert page.notifications == [] and page.total_count == 5
    page = await s.list_page(U, ListQuery(limit=0))
    assert page.notifications == [] and page.total_count == 5
    high = await s.list_page(U, ListQuery(ListFilter(minimum_severity="high")))
    assert {n.id for n in high.notifications} == {ids[1], ids[3]}
    found = await s.list_page(U, ListQuery(ListFilter(search="ünïcödé")))
    assert [n.id for n in found.notifications] == [ids[2]]
    literal = await s.list_page(U, ListQuery(ListFilter(search="100%")))
    assert [n.id for n in literal.notifications] == [bcast]
    assert (await s.list_page(U, ListQuery(ListFilter(search="item _")))).total_count == 0
    assert await s.topics(U, ListFilter()) == ["a", "b", "c"]
    assert await s.topics(U, ListFilter(minimum_severity="critical")) == ["c"]


async def test_read_saved_and_status_per_user(db: Database) -> None:
    s = SqlNotificationStore(db)
    [mine] = await send(s, [U], base(1000))
    b = (await s.save_broadcast(base(2000), nid())).notification.id
    rows = await s.mark(U, [mine, b], read=True, saved=None, now=3000)
    assert {(n.id, n.read) for n in rows} == {(mine, 3000), (b, 3000)}
    assert [n.id for n in rows] == [b, mine]
    rows = await s.mark(U, [b], read=None, saved=True, now=4000)
    assert (rows[0].read, rows[0].saved) == (3000, 4000)          # saving keeps it read
    assert (await s.status(U)).read == 2 and (await s.status(U)).unread == 0
    assert (await s.status(OTHER)).unread == 1                        # OTHER still sees the broadcast unread
    other = await s.list_page(OTHER, ListQuery(ListFilter(read=False)))
    assert [n.id for n in other.notifications] == [b]
    assert await s.mark(OTHER, [mine], read=True, saved=None, now=5000) == []   # not OTHER's
    assert (await s.get(U, mine)).read == 3000  # type: ignore[union-attr]


async def test_scoped_resend_updates_in_place(db: Database) -> None:
    s = SqlNotificationStore(db)
    first = await s.save_user_notifications(base(1000, "v1", scope="sc", description="d", topic="t"), [U], [nid()])
    await s.mark(U, [first[0].notification.id], read=True, saved=True, now=1500)
    again = await s.save_user_notifications(base(2000, "v2", scope="sc"), [U], [nid()])
    n = again[0].notification
    assert not again[0].fresh and n.id == first[0].notification.id
    assert (n.title, n.description, n.topic, n.created, n.updated, n.read, n.saved) == (
        "v2", "d", "t", 1000, 2000, None, 1500)


async def test_concurrent_scoped_sends_make_one_row(db_url: str) -> None:
    dbs = [await connect(db_url) for _ in range(4)]
    try:
        stores = [SqlNotificationStore(d) for d in dbs]
        await asyncio.gather(*(st.save_user_notifications(base(1000 + k, f"v{k}", scope="race"), [U], [nid()])
                               for k, st in enumerate(stores)))
        await asyncio.gather(*(st.save_broadcast(base(1000 + k, f"b{k}", scope="race"), nid())
                               for k, st in enumerate(stores)))
        page = await stores[0].list_page(U, ListQuery())
        assert page.total_count == 2
    finally:
        for d in dbs:
            await d.close()


async def test_scoped_broadcast_resend_is_unread_again(db: Database) -> None:
    s = SqlNotificationStore(db)
    b1 = await s.save_broadcast(base(1000, "v1", scope="sc"), nid())
    await s.mark(U, [b1.notification.id], read=True, saved=None, now=1100)
    b2 = await s.save_broadcast(base(2000, "v2", scope="sc"), nid())
    assert b2.notification.id == b1.notification.id and not b2.fresh
    n = await s.get(U, b1.notification.id)
    assert n is not None and n.read is None and n.title == "v2"


async def test_retention_deletes_old_rows(db: Database) -> None:
    s = SqlNotificationStore(db)
    await send(s, [U], base(1000, "old"))
    [recent] = await send(s, [U], base(9000, "recent"))
    await s.save_broadcast(base(1000, "old broadcast"), nid())
    old_updated = await s.save_user_notifications(base(1000, "x", scope="s"), [U], [nid()])
    await s.save_user_notifications(base(8000, "x2", scope="s"), [U], [nid()])   # updated recently: kept
    assert await s.delete_older_than(5000) == 2
    left = {n.id for n in (await s.list_page(U, ListQuery())).notifications}
    assert left == {recent, old_updated[0].notification.id}


async def test_settings_replace_is_atomic_and_deduplicated(db: Database) -> None:
    from herald.core.settings_model import StoredSetting

    s = SqlNotificationStore(db)
    rows = [StoredSetting(U, "Web", "o", None, False), StoredSetting(U, "Web", "o", "t", True)]
    await s.replace_settings(U, rows)
    assert await s.settings_rows([U]) == rows
    await s.replace_settings(U, [])
    assert await s.settings_rows([U]) == []


@pytest.mark.parametrize("target", ["base"])
async def test_migrations_downgrade_and_upgrade_again(db_url: str, target: str) -> None:
    await asyncio.to_thread(migrate.downgrade, db_url, target)
    await asyncio.to_thread(migrate.upgrade, db_url)
    d = await connect(db_url)
    try:
        assert (await SqlNotificationStore(d).status(U)).unread == 0
    finally:
        await d.close()
