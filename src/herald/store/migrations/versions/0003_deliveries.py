"""Delivery ledger: the transactional outbox of external deliveries (email, webhooks, Slack …) and
every attempt made at each of them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.String(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql")


def upgrade() -> None:
    op.create_table(
        "delivery",
        sa.Column("id", Id, primary_key=True),
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
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("claimed_by", sa.String(255)),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger),
        sa.Column("detail", sa.Text),
        sa.Column("receipt", sa.Text),
    )
    op.create_index("ix_delivery_due", "delivery", ["channel", "status", "next_attempt_at"])
    op.create_index("ix_delivery_status_updated", "delivery", ["status", "updated"])
    op.create_index("ix_delivery_notification", "delivery", ["notification_id"])
    op.create_index("ix_delivery_send", "delivery", ["send_id"])
    op.create_index("ix_delivery_scope", "delivery", ["origin", "scope", "route_key"])

    op.create_table(
        "delivery_attempt",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("delivery_id", Id, sa.ForeignKey("delivery.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started", sa.BigInteger, nullable=False),
        sa.Column("finished", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("worker", sa.String(255)),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_delivery_attempt_delivery", "delivery_attempt", ["delivery_id", "attempt"])


def downgrade() -> None:
    op.drop_index("ix_delivery_attempt_delivery", table_name="delivery_attempt")
    op.drop_table("delivery_attempt")
    for name in ("ix_delivery_scope", "ix_delivery_send", "ix_delivery_notification",
                 "ix_delivery_status_updated", "ix_delivery_due"):
        op.drop_index(name, table_name="delivery")
    op.drop_table("delivery")
