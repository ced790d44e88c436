"""Signal event log: every signal for a user and every broadcast, with a monotonic id.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_event",
        # INTEGER on SQLite so that it is the rowid; AUTOINCREMENT so that ids are never reused
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("user_ref", sa.String(255)),
        sa.Column("channel", sa.String(255), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_signal_event_created", "signal_event", ["created"])


def downgrade() -> None:
    op.drop_index("ix_signal_event_created", table_name="signal_event")
    op.drop_table("signal_event")
