"""call events carry the writer's id, so a replayed write is not stored twice

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
    with op.batch_alter_table("call_events") as batch_op:
        batch_op.add_column(sa.Column("uid", sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint("uq_call_events_uid", ["uid"])


def downgrade() -> None:
    with op.batch_alter_table("call_events") as batch_op:
        batch_op.drop_constraint("uq_call_events_uid", type_="unique")
        batch_op.drop_column("uid")
