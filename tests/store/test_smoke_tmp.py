from herald.core.model import ListQuery, ListFilter, OrderField
from herald.core.ports import NewNotification
from herald.store.sql_store import SqlNotificationStore


async def test_smoke(db):
    s = SqlNotificationStore(db)
    base = NewNotification("o", 1000, "t", None, "/x", "normal", "tp", None, None)
    rows = await s.save_user_notifications(base, ["user:default/a", "user:default/b"],
                                           ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"])
    assert [r.fresh for r in rows] == [True, True]
    b = await s.save_broadcast(base, "33333333-3333-4333-8333-333333333333")
    page = await s.list_page("user:default/a", ListQuery())
    assert page.total_count == 2
    page = await s.list_page("user:default/a", ListQuery(ListFilter(search="T", read=False), (OrderField("topic", "asc"),), 0, 1))
    assert page.total_count == 2 and len(page.notifications) == 1
    await s.mark("user:default/a", ["11111111-1111-4111-8111-111111111111", b.notification.id], read=True, saved=None, now=5)
    st = await s.status("user:default/a")
    assert (st.read, st.unread) == (2, 0)
    assert await s.topics("user:default/a", ListFilter()) == ["tp"]
    scoped = NewNotification("o", 2000, "t2", None, None, "high", None, "sc", None)
    r1 = await s.save_user_notifications(scoped, ["user:default/a"], ["44444444-4444-4444-8444-444444444444"])
    r2 = await s.save_user_notifications(scoped, ["user:default/a"], ["55555555-5555-4555-8555-555555555555"])
    assert r1[0].fresh and not r2[0].fresh and r2[0].notification.id == r1[0].notification.id
    assert await s.delete_older_than(1500) == 3
