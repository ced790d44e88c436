"""The tables, defined once for SQLite and PostgreSQL. Times are epoch milliseconds (BIGINT).

Names follow Backstage's tables where they exist (spec §1.11); `user_ref` replaces `user`, a
reserved word in PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

Id = sa.String(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql")
Ms = sa.BigInteger()

notification = sa.Table(
    "notification", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_ref", sa.String(255), nullable=False),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("created", Ms, nullable=False),
    sa.Column("updated", Ms),
    sa.Column("read", Ms),
    sa.Column("saved", Ms),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("link", sa.Text),
    sa.Column("severity", sa.String(8), nullable=False),
    sa.Column("topic", sa.String(255)),
    sa.Column("scope", sa.String(255)),
    sa.Column("icon", sa.String(255)),
    sa.Index("ix_notification_user_created", "user_ref", sa.text("created DESC")),
    sa.Index("ix_notification_user_read", "user_ref", "read"),
    sa.Index("ix_notification_created", "created"),
    sa.Index("ux_notification_scope", "user_ref", "origin", "scope", unique=True,
             postgresql_where=sa.text("scope IS NOT NULL"), sqlite_where=sa.text("scope IS NOT NULL")),
)

broadcast = sa.Table(
    "broadcast", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("created", Ms, nullable=False),
    sa.Column("updated", Ms),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("link", sa.Text),
    sa.Column("severity", sa.String(8), nullable=False),
    sa.Column("topic", sa.String(255)),
    sa.Column("scope", sa.String(255)),
    sa.Column("icon", sa.String(255)),
    sa.Index("ix_broadcast_created", sa.text("created DESC")),
    sa.Index("ux_broadcast_scope", "origin", "scope", unique=True,
             postgresql_where=sa.text("scope IS NOT NULL"), sqlite_where=sa.text("scope IS NOT NULL")),
)

broadcast_user_status = sa.Table(
    "broadcast_user_status", metadata,
    sa.Column("broadcast_id", Id, sa.ForeignKey("broadcast.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_ref", sa.String(255), nullable=False),
    sa.Column("read", Ms),
    sa.Column("saved", Ms),
    sa.PrimaryKeyConstraint("broadcast_id", "user_ref", name="pk_broadcast_user_status"),
    sa.Index("ix_broadcast_user_status_user", "user_ref"),
)

user_settings = sa.Table(
    "user_settings", metadata,
    sa.Column("user_ref", sa.String(255), nullable=False),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(255)),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("settings_key_hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("settings_key_hash", name="ux_user_settings_key"),
    sa.Index("ix_user_settings_user", "user_ref"),
)

signal_event = sa.Table(
    "signal_event", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("user_ref", sa.String(255)),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created", Ms, nullable=False),
    sa.Index("ix_signal_event_created", "created"),
    sqlite_autoincrement=True,
)

# -- the delivery ledger (migration 0003): one row per notification x user x channel x target ------

delivery = sa.Table(
    "delivery", metadata,
    sa.Column("id", Id, primary_key=True),  # the idempotency key, stable across attempts
    sa.Column("send_id", Id, nullable=False),
    sa.Column("notification_id", Id, nullable=False),
    sa.Column("user_ref", sa.String(255)),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("target", sa.Text),
    sa.Column("route_key", sa.Text, nullable=False),
    sa.Column("resend", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("scope", sa.String(255)),
    sa.Column("snapshot", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retry_base", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Ms, nullable=False),
    sa.Column("claimed_by", sa.String(255)),
    sa.Column("created", Ms, nullable=False),
    sa.Column("updated", Ms, nullable=False),
    sa.Column("delivered_at", Ms),
    sa.Column("detail", sa.Text),
    sa.Column("receipt", sa.Text),
    sa.Index("ix_delivery_due", "channel", "status", "next_attempt_at"),
    sa.Index("ix_delivery_status_updated", "status", "updated"),
    sa.Index("ix_delivery_notification", "notification_id"),
    sa.Index("ix_delivery_send", "send_id"),
    sa.Index("ix_delivery_scope", "origin", "scope", "route_key"),
)

delivery_attempt = sa.Table(
    "delivery_attempt", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("delivery_id", Id, sa.ForeignKey("delivery.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started", Ms, nullable=False),
    sa.Column("finished", Ms, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("worker", sa.String(255)),
    sa.Index("ix_delivery_attempt_delivery", "delivery_id", "attempt"),
    sqlite_autoincrement=True,
)
