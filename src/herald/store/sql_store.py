"""`NotificationStore` on SQL: a constant number of statements per call, whatever the recipients."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from herald.core.model import (
    ListFilter,
    ListQuery,
    Notification,
    OrderField,
    Page,
    Sent,
    Status,
    severities_at_least,
)
from herald.core.ports import NewNotification, Outbox, route_key
from herald.core.settings_model import StoredSetting
from herald.store.database import Database, Dialect, Executor, Row

COLUMNS = ("id, user_ref, created, saved, read, updated, origin, title, description, link, topic, "
           "severity, scope, icon")

_N_COLS = ("n.id, n.user_ref, n.created, n.saved, n.read, n.updated, n.origin, n.title, n.description, "
           "n.link, n.topic, n.severity, n.scope, n.icon")
_B_COLS = ("b.id, NULL, b.created, s.saved, s.read, b.updated, b.origin, b.title, b.description, "
           "b.link, b.topic, b.severity, b.scope, b.icon")

_ORDER_COLUMN = {"user": "user_ref"}
_FIELDS = ("id", "created", "saved", "read", "updated", "origin", "title", "description", "link", "topic",
           "severity", "scope", "icon")
_N_ORDER: dict[str, str | None] = {**{f: f"n.{f}" for f in _FIELDS}, "user": "n.user_ref"}
_B_ORDER: dict[str, str | None] = {**{f: f"b.{f}" for f in _FIELDS},
                                   "user": None, "read": "s.read", "saved": "s.saved"}

_UPSERT_SET = (
    "title = excluded.title, "
    "description = COALESCE(excluded.description, {t}.description), "
    "link = COALESCE(excluded.link, {t}.link), "
    "topic = COALESCE(excluded.topic, {t}.topic), "
    "icon = COALESCE(excluded.icon, {t}.icon), "
    "severity = excluded.severity, "
    "updated = excluded.created"
)


def _row_to_notification(r: Row) -> Notification:
    return Notification(
        id=r[0], user=r[1], created=r[2], saved=r[3], read=r[4], updated=r[5], origin=r[6],
        title=r[7], description=r[8], link=r[9], topic=r[10], severity=r[11], scope=r[12], icon=r[13],
    )


def settings_hash(user: str, channel: str, origin: str, topic: str | None) -> str:
    return hashlib.sha256(f"{user}|{channel}|{origin}|{topic or ''}".encode()).hexdigest()


class _Where:
    """Filter conditions for one branch of the inbox union, with their parameters."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.params: dict[str, Any] = {}
        self.key: list[str] = []

    def build(self, f: ListFilter, cols: dict[str, str]) -> str:
        d = self.dialect
        conds: list[str] = []
        if f.read is not None:
            conds.append(f"{cols['read']} IS {'NOT ' if f.read else ''}NULL")
        if f.saved is not None:
            conds.append(f"{cols['saved']} IS {'NOT ' if f.saved else ''}NULL")
        if f.topic is not None:
            conds.append(f"{cols['topic']} = :topic")
            self.params["topic"] = f.topic
        if f.search:
            conds.append(f"({d.contains(d.fold(cols['title']), 'search')} OR "
                         f"{d.contains(d.fold(cols['description']), 'search')})")
            self.params["search"] = f.search.lower()
        if f.created_after is not None:
            conds.append(f"{cols['created']} >= :created_after")
            self.params["created_after"] = f.created_after
        if f.minimum_severity is not None:
            levels = severities_at_least(f.minimum_severity)
            conds.append(f"{cols['severity']} IN ({', '.join(repr(s) for s in levels)})")
        return " AND ".join(conds)


def _branch_cols(prefix: str, status: str) -> dict[str, str]:
    return {
        "read": f"{status}.read", "saved": f"{status}.saved", "topic": f"{prefix}.topic",
        "title": f"{prefix}.title", "description": f"{prefix}.description",
        "created": f"{prefix}.created", "severity": f"{prefix}.severity",
    }


class SqlNotificationStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.d = db.dialect
        self._insert_users_sql = self._build_insert_users()
        self._insert_broadcast_sql = self._build_insert_broadcast()
        d = self.d
        self._by_ids_sql = (
            f"SELECT {_N_COLS} FROM notification n WHERE n.user_ref = :user AND "
            + d.in_list("n.id", "ids", uuid=True)
            + f" UNION ALL SELECT {_B_COLS} FROM broadcast b LEFT JOIN broadcast_user_status s "
            "ON s.broadcast_id = b.id AND s.user_ref = :user WHERE " + d.in_list("b.id", "ids", uuid=True)
            + " ORDER BY 3 DESC"
        )

    # -- sending ------------------------------------------------------------------------------

    def _build_insert_users(self) -> str:
        values = (":origin, :created, :title, :description, :link, :severity, :topic, :scope, :icon")
        if self.d.name == "postgresql":
            source = (f"SELECT u.id, u.usr, {values} "
                      "FROM unnest(:ids::uuid[], :users::text[]) AS u(id, usr)")
        else:
            source = (f"SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), {values} "
                      "FROM json_each(:pairs) AS j WHERE true")
        return (
            "INSERT INTO notification (id, user_ref, origin, created, title, description, link, "
            "severity, topic, scope, icon) " + source + " "
            "ON CONFLICT (user_ref, origin, scope) WHERE scope IS NOT NULL DO UPDATE SET "
            + _UPSERT_SET.format(t="notification") + ", read = NULL "
            f"RETURNING {COLUMNS}"
        )

    def _build_insert_broadcast(self) -> str:
        return (
            "INSERT INTO broadcast (id, origin, created, title, description, link, severity, topic, "
            "scope, icon) VALUES (:id, :origin, :created, :title, :description, :link, :severity, "
            ":topic, :scope, :icon) "
            "ON CONFLICT (origin, scope) WHERE scope IS NOT NULL DO UPDATE SET "
            + _UPSERT_SET.format(t="broadcast") + " "
            "RETURNING id, NULL, created, NULL, NULL, updated, origin, title, description, link, topic, "
            "severity, scope, icon"
        )

    @staticmethod
    def _base_params(base: NewNotification) -> dict[str, Any]:
        return {
            "origin": base.origin, "created": base.created, "title": base.title,
            "description": base.description, "link": base.link, "severity": base.severity,
            "topic": base.topic, "scope": base.scope, "icon": base.icon,
        }

    async def save_user_notifications(self, base: NewNotification, users: Sequence[str],
                                      ids: Sequence[str], outbox: Outbox | None = None) -> list[Sent]:
        if outbox is not None and outbox.entries:
            async with self.db.transaction() as tx:
                stored = await self._upsert_users(tx, base, users, ids)
                await self._write_outbox(tx, outbox, {r.notification.user or "": r for r in stored})
            return stored
        return await self._upsert_users(self.db, base, users, ids)

    async def _upsert_users(self, ex: Executor, base: NewNotification, users: Sequence[str],
                            ids: Sequence[str]) -> list[Sent]:
        if not users:
            return []
        params = self._base_params(base)
        if self.d.name == "postgresql":
            params["ids"] = list(ids)
            params["users"] = list(users)
        else:
            params["pairs"] = self.d.encode_list([[i, u] for i, u in zip(ids, users, strict=True)])
        rows = await ex.fetch(self._insert_users_sql, params)  # one atomic statement
        by_user = {r[1]: _row_to_notification(r) for r in rows}
        fresh_ids = set(ids)
        out: list[Sent] = []
        for u in users:
            n = by_user.get(u)
            if n is not None:
                out.append(Sent(n, n.id in fresh_ids))
        return out

    async def save_broadcast(self, base: NewNotification, id: str, outbox: Outbox | None = None
                             ) -> Sent:
        params = self._base_params(base)
        params["id"] = id
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(self._insert_broadcast_sql, params)
            assert row is not None
            n = _row_to_notification(row)
            if n.id != id:
                # A scoped re-send is unread again for everyone (spec §11.12).
                await tx.execute("UPDATE broadcast_user_status SET read = NULL WHERE broadcast_id = :id",
                                 {"id": n.id})
            stored = Sent(n, n.id == id)
            if outbox is not None and outbox.entries:
                await self._write_outbox(tx, outbox, {"": stored})
        return stored

    # -- the delivery ledger (transactional outbox) ---------------------------------------------

    async def _write_outbox(self, tx: Executor, outbox: Outbox, stored: dict[str, Sent]) -> None:
        """Supersede pending deliveries of the same scope and destination, then insert the new ones.

        Two statements at most, whatever the number of entries. An entry without a notification id
        takes the id of the row stored for its user (`""` is the broadcast); `resend` tells the
        processor that the notification was updated in place."""
        ids: list[str] = []
        nids: list[str] = []
        users: list[str | None] = []
        channels: list[str] = []
        targets: list[str | None] = []
        route_keys: list[str] = []
        resends: list[bool] = []
        for e in outbox.entries:
            if e.notification_id is not None:
                nid, resend = e.notification_id, False
            else:
                row = stored.get(e.user or "")
                if row is None:
                    continue
                nid, resend = row.notification.id, not row.fresh
            ids.append(e.id)
            nids.append(nid)
            users.append(e.user)
            channels.append(e.channel)
            targets.append(e.target)
            route_keys.append(route_key(e.channel, e.user, e.target))
            resends.append(resend)
        if not ids:
            return
        d = self.d
        common = {"send_id": outbox.send_id, "origin": outbox.origin, "scope": outbox.scope,
                  "snapshot": outbox.snapshot, "now": outbox.now}
        if outbox.scope is not None:
            await tx.execute(
                "UPDATE delivery SET status = 'superseded', updated = :now, next_attempt_at = :now, "
                "detail = 'superseded by a scoped re-send' "
                "WHERE origin = :origin AND scope = :scope AND status IN ('pending', 'dead') AND "
                + d.in_list("route_key", "route_keys"),
                {"now": outbox.now, "origin": outbox.origin, "scope": outbox.scope,
                 "route_keys": d.encode_list(route_keys)})
        columns = ("INSERT INTO delivery (id, send_id, notification_id, user_ref, channel, target, route_key, "
                   "resend, origin, scope, snapshot, status, attempts, next_attempt_at, created, updated) ")
        if d.name == "postgresql":
            await tx.execute(
                columns + "SELECT x.id, :send_id, x.nid, x.usr, x.ch, x.tgt, x.rk, x.rs, :origin, :scope, "
                ":snapshot, 'pending', 0, :now, :now, :now FROM unnest(:ids::uuid[], :nids::uuid[], "
                ":users::text[], :channels::text[], :targets::text[], :route_keys::text[], :resends::boolean[]) "
                "AS x(id, nid, usr, ch, tgt, rk, rs)",
                {**common, "ids": ids, "nids": nids, "users": users, "channels": channels,
                 "targets": targets, "route_keys": route_keys, "resends": resends})
        else:
            rows = [list(r) for r in zip(ids, nids, users, channels, targets, route_keys, resends, strict=True)]
            await tx.execute(
                columns + "SELECT json_extract(j.value, '$[0]'), :send_id, json_extract(j.value, '$[1]'), "
                "json_extract(j.value, '$[2]'), json_extract(j.value, '$[3]'), json_extract(j.value, '$[4]'), "
                "json_extract(j.value, '$[5]'), json_extract(j.value, '$[6]'), :origin, :scope, :snapshot, "
                "'pending', 0, :now, :now, :now FROM json_each(:rows) AS j",
                {**common, "rows": d.encode_list(rows)})

    # -- reading ------------------------------------------------------------------------------

    def _union(self, f: ListFilter, user_param: str = "user") -> tuple[str, dict[str, Any]]:
        w = _Where(self.d)
        n_where = w.build(f, _branch_cols("n", "n"))
        b_where = w.build(f, _branch_cols("b", "s"))
        sql = (
            f"SELECT {_N_COLS} FROM notification n WHERE n.user_ref = :{user_param}"
            + (f" AND {n_where}" if n_where else "")
            + f" UNION ALL SELECT {_B_COLS} FROM broadcast b LEFT JOIN broadcast_user_status s "
            f"ON s.broadcast_id = b.id AND s.user_ref = :{user_param}"
            + (f" WHERE {b_where}" if b_where else "")
        )
        return sql, w.params

    def _count_sql(self, f: ListFilter) -> tuple[str, dict[str, Any]]:
        w = _Where(self.d)
        n_where = w.build(f, _branch_cols("n", "n"))
        b_where = w.build(f, _branch_cols("b", "s"))
        join = ("LEFT JOIN broadcast_user_status s ON s.broadcast_id = b.id AND s.user_ref = :user"
                if f.read is not None or f.saved is not None else "")
        sql = (
            "(SELECT count(*) FROM notification n WHERE n.user_ref = :user"
            + (f" AND {n_where}" if n_where else "") + ") + "
            f"(SELECT count(*) FROM broadcast b {join}" + (f" WHERE {b_where}" if b_where else "") + ")"
        )
        return sql, w.params

    @staticmethod
    def _order_sql(order: Sequence[OrderField], columns: dict[str, str | None] | None = None) -> str:
        """ORDER BY terms; with `columns`, for one branch of the union (None = constant, skipped)."""
        terms = []
        for o in order or (OrderField("created", "desc"),):
            col: str | None = _ORDER_COLUMN.get(o.field, o.field)
            if columns is not None:
                col = columns.get(o.field)
                if col is None:
                    continue
            terms.append(f"{col} DESC NULLS FIRST" if o.direction == "desc" else f"{col} ASC NULLS LAST")
        return ", ".join(terms)

    async def list_page(self, user: str, query: ListQuery) -> Page:
        count_sql, params = self._count_sql(query.filter)
        params["user"] = user
        if query.limit == 0:
            row = await self.db.fetchrow(f"SELECT {count_sql}", params)
            return Page([], int(row[0]) if row else 0)
        f = query.filter
        w = _Where(self.d)
        n_where = w.build(f, _branch_cols("n", "n"))
        b_where = w.build(f, _branch_cols("b", "s"))
        params.update(w.params)
        n_sql = (f"SELECT {_N_COLS} FROM notification n WHERE n.user_ref = :user"
                 + (f" AND {n_where}" if n_where else ""))
        b_sql = (f"SELECT {_B_COLS} FROM broadcast b LEFT JOIN broadcast_user_status s "
                 "ON s.broadcast_id = b.id AND s.user_ref = :user" + (f" WHERE {b_where}" if b_where else ""))
        if query.limit is not None:
            # Top-N in each branch first: the page is within the union of both branches' first
            # offset+limit rows, and each branch can walk its (user_ref, created) index.
            n_order = self._order_sql(query.order, _N_ORDER)
            b_order = self._order_sql(query.order, _B_ORDER)
            n_sql = f"SELECT * FROM ({n_sql} ORDER BY {n_order} LIMIT :branch_limit) AS nb"
            b_sql = f"SELECT * FROM ({b_sql}{' ORDER BY ' + b_order if b_order else ''} LIMIT :branch_limit) AS bb"
            params["branch_limit"] = query.limit + query.offset
        sql = (f"SELECT items.*, ({count_sql}) AS total FROM ({n_sql} UNION ALL {b_sql}) AS items "
               f"ORDER BY {self._order_sql(query.order)}")
        if query.limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = query.limit
        if query.offset:
            if query.limit is None and self.d.name == "sqlite":
                sql += " LIMIT -1"
            sql += " OFFSET :offset"
            params["offset"] = query.offset
        rows = await self.db.fetch(sql, params)
        if rows:
            return Page([_row_to_notification(r) for r in rows], int(rows[0][14]))
        row = await self.db.fetchrow(f"SELECT {count_sql}", params)
        return Page([], int(row[0]) if row else 0)

    async def get(self, user: str, id: str) -> Notification | None:
        found = await self.by_ids(user, [id])
        return found[0] if found else None

    async def by_ids(self, user: str, ids: Sequence[str]) -> list[Notification]:
        if not ids:
            return []
        rows = await self.db.fetch(self._by_ids_sql, {"user": user, "ids": self.d.encode_list(list(ids))})
        return [_row_to_notification(r) for r in rows]

    async def status(self, user: str) -> Status:
        sql = (
            "SELECT n.unread, n.read, (SELECT count(*) FROM broadcast), "
            "(SELECT count(*) FROM broadcast_user_status WHERE user_ref = :user AND read IS NOT NULL) "
            "FROM (SELECT count(*) FILTER (WHERE read IS NULL) AS unread, "
            "count(*) FILTER (WHERE read IS NOT NULL) AS read FROM notification WHERE user_ref = :user) AS n"
        )
        row = await self.db.fetchrow(sql, {"user": user})
        assert row is not None
        unread_n, read_n, broadcasts, read_b = (int(v) for v in row)
        return Status(unread=unread_n + broadcasts - read_b, read=read_n + read_b)

    async def topics(self, user: str, filter: ListFilter) -> list[str]:
        union, params = self._union(filter)
        params["user"] = user
        sql = (f"SELECT DISTINCT topic FROM ({union}) AS items WHERE topic IS NOT NULL "
               "ORDER BY topic")
        return [r[0] for r in await self.db.fetch(sql, params)]

    # -- updating -----------------------------------------------------------------------------

    async def mark(self, user: str, ids: Sequence[str], *, read: bool | None, saved: bool | None,
                   now: int) -> list[Notification]:
        """Set or clear read/saved on the caller's rows and broadcast status rows with these ids;
        returns the caller-visible rows after the change, newest first (one statement on PostgreSQL)."""
        d = self.d
        fields: dict[str, int | None] = {}
        if read is not None:
            fields["read"] = now if read else None
        if saved is not None:
            fields["saved"] = now if saved else None
        if not fields:
            return await self.by_ids(user, ids)
        params: dict[str, Any] = {"user": user, "ids": d.encode_list(list(ids)), **fields}
        assignments = ", ".join(f"{c} = :{c}" for c in fields)
        values = ", ".join(f"CAST(:{c} AS BIGINT)" if d.name == "postgresql" else f":{c}" for c in fields)
        update_sql = (f"UPDATE notification SET {assignments} WHERE user_ref = :user AND "
                      + d.in_list("id", "ids", uuid=True))
        status_sql = (
            f"INSERT INTO broadcast_user_status (broadcast_id, user_ref, {', '.join(fields)}) "
            f"SELECT b.id, :user, {values} FROM broadcast b WHERE " + d.in_list("b.id", "ids", uuid=True)
            + " ON CONFLICT (broadcast_id, user_ref) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in fields))
        if d.name == "postgresql":
            rows = await self.db.fetch(
                f"WITH un AS ({update_sql} RETURNING {COLUMNS}), "
                f"bs AS ({status_sql} RETURNING broadcast_id, read, saved) "
                f"SELECT * FROM un UNION ALL SELECT b.id, NULL, b.created, bs.saved, bs.read, b.updated, "
                "b.origin, b.title, b.description, b.link, b.topic, b.severity, b.scope, b.icon "
                "FROM bs JOIN broadcast b ON b.id = bs.broadcast_id ORDER BY 3 DESC", params)
            return [_row_to_notification(r) for r in rows]
        async with self.db.transaction() as tx:
            await tx.execute(update_sql, params)
            await tx.execute(status_sql, params)
            rows = await tx.fetch(self._by_ids_sql, {"user": user, "ids": params["ids"]})
        return [_row_to_notification(r) for r in rows]

    # -- settings -----------------------------------------------------------------------------

    async def settings_rows(self, users: Sequence[str], channels: Sequence[str] | None = None
                            ) -> list[StoredSetting]:
        if not users:
            return []
        d = self.d
        params: dict[str, Any] = {"users": d.encode_list(list(users))}
        sql = ("SELECT user_ref, channel, origin, topic, enabled FROM user_settings WHERE "
               + d.in_list("user_ref", "users"))
        if channels is not None:
            sql += " AND " + d.in_list("channel", "channels")
            params["channels"] = d.encode_list(list(channels))
        sql += " ORDER BY user_ref, channel, origin, topic NULLS FIRST"
        rows = await self.db.fetch(sql, params)
        return [StoredSetting(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    async def replace_settings(self, user: str, rows: Sequence[StoredSetting]) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM user_settings WHERE user_ref = :user", {"user": user})
            if rows:
                payload = [[r.channel, r.origin, r.topic, r.enabled,
                            settings_hash(user, r.channel, r.origin, r.topic)] for r in rows]
                if self.d.name == "postgresql":
                    await tx.execute(
                        "INSERT INTO user_settings (user_ref, channel, origin, topic, enabled, "
                        "settings_key_hash) SELECT :user, c, o, t, e, h FROM "
                        "unnest(:c::text[], :o::text[], :t::text[], :e::boolean[], :h::text[]) "
                        "AS x(c, o, t, e, h)",
                        {"user": user, "c": [p[0] for p in payload], "o": [p[1] for p in payload],
                         "t": [p[2] for p in payload], "e": [p[3] for p in payload],
                         "h": [p[4] for p in payload]})
                else:
                    await tx.execute(
                        "INSERT INTO user_settings (user_ref, channel, origin, topic, enabled, "
                        "settings_key_hash) SELECT :user, json_extract(value, '$[0]'), "
                        "json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
                        "json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each(:rows)",
                        {"user": user, "rows": self.d.encode_list(payload)})

    async def origins_and_topics(self, user: str) -> list[tuple[str, str | None]]:
        rows = await self.db.fetch(
            "SELECT origin, topic FROM notification WHERE user_ref = :user GROUP BY origin, topic "
            "ORDER BY min(created), origin, topic", {"user": user})
        return [(r[0], r[1]) for r in rows]

    # -- retention ----------------------------------------------------------------------------

    async def delete_older_than(self, cutoff_ms: int) -> int:
        cond = "(created <= :cutoff AND updated IS NULL) OR updated <= :cutoff"
        async with self.db.transaction() as tx:
            n = await tx.execute(f"DELETE FROM notification WHERE {cond}", {"cutoff": cutoff_ms})
            b = await tx.execute(f"DELETE FROM broadcast WHERE {cond}", {"cutoff": cutoff_ms})
        return int(n) + int(b)
