"""Web chats and their transcripts

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chats",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("queue", sa.String(length=63), nullable=False),
        sa.Column("customer_name", sa.String(length=80), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("agent_id", sa.String(length=63), nullable=True),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("chats") as batch_op:
        batch_op.create_index("ix_chats_status_created", ["status", "created_at"], unique=False)
        batch_op.create_index("ix_chats_agent", ["agent_id"], unique=False)
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.String(length=63), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("chat_messages") as batch_op:
        batch_op.create_index("ix_chat_messages_chat_id", ["chat_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("chat_messages")
    op.drop_table("chats")
