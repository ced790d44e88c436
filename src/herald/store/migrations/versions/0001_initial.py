"""Initial schema: notifications, broadcasts with per-user status, user settings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.String(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql")
SCOPED = sa.text("scope IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", Id, primary_key=True),
        sa.Column("user_ref", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger),
        sa.Column("read", sa.BigInteger),
        sa.Column("saved", sa.BigInteger),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("topic", sa.String(255)),
        sa.Column("scope", sa.String(255)),
        sa.Column("icon", sa.String(255)),
    )
    op.create_index("ix_notification_user_created", "notification", ["user_ref", sa.text("created DESC")])
    op.create_index("ix_notification_user_read", "notification", ["user_ref", "read"])
    op.create_index("ix_notification_created", "notification", ["created"])
    op.create_index("ux_notification_scope", "notification", ["user_ref", "origin", "scope"], unique=True,
                    postgresql_where=SCOPED, sqlite_where=SCOPED)

    op.create_table(
        "broadcast",
        sa.Column("id", Id, primary_key=True),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("topic", sa.String(255)),
        sa.Column("scope", sa.String(255)),
        sa.Column("icon", sa.String(255)),
    )
    op.create_index("ix_broadcast_created", "broadcast", [sa.text("created DESC")])
    op.create_index("ux_broadcast_scope", "broadcast", ["origin", "scope"], unique=True,
                    postgresql_where=SCOPED, sqlite_where=SCOPED)

    op.create_table(
        "broadcast_user_status",
        sa.Column("broadcast_id", Id, sa.ForeignKey("broadcast.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_ref", sa.String(255), nullable=False),
        sa.Column("read", sa.BigInteger),
        sa.Column("saved", sa.BigInteger),
        sa.PrimaryKeyConstraint("broadcast_id", "user_ref", name="pk_broadcast_user_status"),
    )
    op.create_index("ix_broadcast_user_status_user", "broadcast_user_status", ["user_ref"])

    op.create_table(
        "user_settings",
        sa.Column("user_ref", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255)),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("settings_key_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("settings_key_hash", name="ux_user_settings_key"),
    )
    op.create_index("ix_user_settings_user", "user_settings", ["user_ref"])


def downgrade() -> None:
    op.drop_table("user_settings")
    op.drop_table("broadcast_user_status")
    op.drop_table("broadcast")
    op.drop_table("notification")
