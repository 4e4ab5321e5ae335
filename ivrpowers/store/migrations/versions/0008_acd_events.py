"""ACD events (tasks joined, offered, answered, ended; agents' state changes), kept for statistics
after a restart and for reports

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acd_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("queue", sa.String(length=63), nullable=True),
        sa.Column("task", sa.String(length=64), nullable=True),
        sa.Column("agent", sa.String(length=63), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("acd_events") as batch_op:
        for column in ("at", "queue", "task", "agent"):
            batch_op.create_index(batch_op.f(f"ix_acd_events_{column}"), [column], unique=False)


def downgrade() -> None:
    op.drop_table("acd_events")
