"""calls keyed by (asterisk id, channel id), with their owner controller; the controllers table

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# 0001 left the channel_id unique constraint unnamed: SQLite's batch mode needs a name to drop it.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique_name() -> str:
    return "calls_channel_id_key" if op.get_bind().dialect.name == "postgresql" else "uq_calls_channel_id"


def upgrade() -> None:
    with op.batch_alter_table("calls", naming_convention=_NAMING) as batch_op:
        batch_op.add_column(sa.Column("asterisk_id", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("recovered", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("role", sa.String(length=32), nullable=False, server_default="inbound"))
        batch_op.add_column(sa.Column("source", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("channels", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("bridge_id", sa.String(length=128), nullable=True))
        batch_op.drop_constraint(_old_unique_name(), type_="unique")
        batch_op.create_unique_constraint("uq_calls_asterisk_channel", ["asterisk_id", "channel_id"])
        batch_op.create_index("ix_calls_open", ["asterisk_id", "ended_at"], unique=False)
    # Server defaults only filled the existing rows; the models set these values.
    with op.batch_alter_table("calls") as batch_op:
        for column in ("asterisk_id", "recovered", "role", "channels"):
            batch_op.alter_column(column, server_default=None)
    op.create_table(
        "controllers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("asterisk_id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("controllers")
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_index("ix_calls_open")
        batch_op.drop_constraint("uq_calls_asterisk_channel", type_="unique")
        batch_op.create_unique_constraint("uq_calls_channel_id", ["channel_id"])
        for column in ("bridge_id", "channels", "source", "role", "recovered", "owner", "asterisk_id"):
            batch_op.drop_column(column)
