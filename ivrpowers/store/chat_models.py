"""Web chats in SQL: the chat (`ChatRow`) and its transcript (`ChatMessageRow`, in order).

A chat's place in its queue and its offers are the ACD router's (saved with its state); what is
here is the record: who, where, what was said, who answered, how it ended. The customer's token is
kept as its SHA-256 digest only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ivrpowers.store.models import Base, utcnow


class ChatRow(Base):
    """One chat. `status`: `waiting` (in its queue, maybe offered), `active` (an agent answered),
    `closed` (`outcome` says how: handled, left, timeout, no_agents)."""

    __tablename__ = "chats"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    queue: Mapped[str] = mapped_column(String(63))
    customer_name: Mapped[str] = mapped_column(String(80))
    skills: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(63))  # who answered
    token_digest: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the customer's token
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_chats_status_created", "status", "created_at"),
        Index("ix_chats_agent", "agent_id"),
    )


class ChatMessageRow(Base):
    """One line of a transcript. `sender` is `customer`, `agent` (with `agent_id`) or `system`
    (joined, closed...). The id orders them: a client asks for what came after the last it has."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    sender: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(63))
    text: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_chat_messages_chat_id", "chat_id", "id"),)
