"""ACD runtime state (the router's, so a restarted controller goes on where it was) and the agents'
state changes, for reports

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acd_state",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "acd_agent_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=63), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old", sa.String(length=16), nullable=False),
        sa.Column("new", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("acd_agent_events") as batch_op:
        batch_op.create_index(batch_op.f("ix_acd_agent_events_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acd_agent_events_at"), ["at"], unique=False)


def downgrade() -> None:
    op.drop_table("acd_agent_events")
    op.drop_table("acd_state")
