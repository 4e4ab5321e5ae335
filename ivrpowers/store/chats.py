"""Web chats and their transcripts, stored (`chat_models`): what `chats.service` keeps of each chat."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, func, select, update

from ivrpowers.store.chat_models import ChatMessageRow, ChatRow
from ivrpowers.store.db import Database

ChatStatus = Literal["waiting", "active", "closed"]
Sender = Literal["customer", "agent", "system"]
OPEN: tuple[ChatStatus, ...] = ("waiting", "active")


def status_fields(status: ChatStatus, at: datetime, agent_id: str | None, outcome: str | None) -> dict[str, Any]:
    """What a change of status sets on a chat: answered (by whom, when), closed (how, when), or
    waiting again (nobody has it)."""
    values: dict[str, Any] = {"status": status}
    if status == "active":
        values.update(agent_id=agent_id, answered_at=at)
    elif status == "closed":
        values.update(outcome=outcome, closed_at=at)
    else:
        values.update(agent_id=None, answered_at=None)
    return values


@dataclass(frozen=True)
class Message:
    id: int
    chat_id: str
    at: datetime
    sender: Sender
    agent_id: str | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "sender": self.sender, "agent": self.agent_id,
                "text": self.text}


@dataclass(frozen=True)
class Chat:
    id: str
    queue: str
    customer_name: str
    token_digest: str
    created_at: datetime
    skills: Mapping[str, int] = field(default_factory=dict)
    priority: int = 0
    status: ChatStatus = "waiting"
    outcome: str | None = None
    agent_id: str | None = None
    answered_at: datetime | None = None
    closed_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as the API shows it (the token's digest stays here)."""
        return {"id": self.id, "queue": self.queue, "customer_name": self.customer_name, "skills": dict(self.skills),
                "priority": self.priority, "status": self.status, "outcome": self.outcome, "agent": self.agent_id,
                "created_at": self.created_at.isoformat(),
                "answered_at": self.answered_at.isoformat() if self.answered_at else None,
                "closed_at": self.closed_at.isoformat() if self.closed_at else None}


def _chat(row: ChatRow) -> Chat:
    return Chat(id=row.id, queue=row.queue, customer_name=row.customer_name, token_digest=row.token_digest,
                created_at=row.created_at, skills=dict(row.skills), priority=row.priority,
                status=row.status,  # type: ignore[arg-type]  # only ever written from ChatStatus
                outcome=row.outcome, agent_id=row.agent_id, answered_at=row.answered_at, closed_at=row.closed_at)


def _message(row: ChatMessageRow) -> Message:
    return Message(id=row.id, chat_id=row.chat_id, at=row.at,
                   sender=row.sender,  # type: ignore[arg-type]  # only ever written from Sender
                   agent_id=row.agent_id, text=row.text)


class ChatRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, chat: Chat, first: str) -> Message:
        """Store a new chat with the customer's first message."""
        async with self.db.session() as session, session.begin():
            session.add(ChatRow(id=chat.id, queue=chat.queue, customer_name=chat.customer_name,
                                skills=dict(chat.skills), priority=chat.priority, status=chat.status,
                                token_digest=chat.token_digest, created_at=chat.created_at))
            await session.flush()  # the chat before its message: the foreign key
            row = ChatMessageRow(chat_id=chat.id, at=chat.created_at, sender="customer", text=first)
            session.add(row)
            await session.flush()
            return _message(row)

    async def delete(self, chat_id: str) -> None:
        """A chat its queue refused before anyone was told of it."""
        async with self.db.session() as session, session.begin():
            await session.execute(delete(ChatMessageRow).where(ChatMessageRow.chat_id == chat_id))
            await session.execute(delete(ChatRow).where(ChatRow.id == chat_id))

    async def add_message(self, chat_id: str, sender: Sender, text: str, at: datetime,
                          agent_id: str | None = None) -> Message:
        async with self.db.session() as session, session.begin():
            row = ChatMessageRow(chat_id=chat_id, at=at, sender=sender, agent_id=agent_id, text=text)
            session.add(row)
            await session.flush()
            return _message(row)

    async def change(self, chat_id: str, at: datetime, note: str, *, status: ChatStatus,
                     agent_id: str | None = None, outcome: str | None = None) -> Message:
        """The chat's new status (answered by `agent_id`, closed with `outcome`, waiting again) and
        the system line that says so in its transcript, in one transaction."""
        values = status_fields(status, at, agent_id, outcome)
        async with self.db.session() as session, session.begin():
            await session.execute(update(ChatRow).where(ChatRow.id == chat_id).values(**values))
            row = ChatMessageRow(chat_id=chat_id, at=at, sender="system", agent_id=agent_id, text=note)
            session.add(row)
            await session.flush()
            return _message(row)

    async def get(self, chat_id: str) -> Chat | None:
        async with self.db.session() as session:
            row = await session.get(ChatRow, chat_id)
            return _chat(row) if row is not None else None

    async def messages(self, chat_id: str, after: int = 0) -> list[Message]:
        """The transcript, in order (from the message after `after`)."""
        query = (select(ChatMessageRow).where(ChatMessageRow.chat_id == chat_id, ChatMessageRow.id > after)
                 .order_by(ChatMessageRow.id))
        async with self.db.session() as session:
            return [_message(row) for row in await session.scalars(query)]

    async def message_counts(self, chat_ids: list[str]) -> dict[str, tuple[int, datetime]]:
        """Each chat's number of lines and the time of its last."""
        if not chat_ids:
            return {}
        query = (select(ChatMessageRow.chat_id, func.count(), func.max(ChatMessageRow.at))
                 .where(ChatMessageRow.chat_id.in_(chat_ids)).group_by(ChatMessageRow.chat_id))
        async with self.db.session() as session:
            return {chat_id: (count, last) for chat_id, count, last in (await session.execute(query)).all()}

    async def open_chats(self) -> list[Chat]:
        """Chats waiting or answered, oldest first."""
        return await self.find(OPEN, limit=None)

    async def find(self, statuses: tuple[ChatStatus, ...], queue: str | None = None,
                   limit: int | None = 100) -> list[Chat]:
        """Chats in `statuses` (of `queue`), oldest first when open, newest first when closed."""
        query = select(ChatRow).where(ChatRow.status.in_(statuses))
        if queue is not None:
            query = query.where(ChatRow.queue == queue)
        newest_first = statuses == ("closed",)
        query = query.order_by(ChatRow.created_at.desc() if newest_first else ChatRow.created_at, ChatRow.id)
        if limit is not None:
            query = query.limit(limit)
        async with self.db.session() as session:
            return [_chat(row) for row in await session.scalars(query)]
