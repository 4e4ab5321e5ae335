"""Queues and agents as defined (`acd.definitions`), stored; an ACD file's changes applied in
one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivrpowers.acd.changes import Change
from ivrpowers.acd.definitions import AgentDef, QueueDef
from ivrpowers.store.db import Database
from ivrpowers.store.models import AcdAgent, AcdQueue, utcnow


class NoSuchQueue(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"there is no queue named {name!r}")


class NoSuchAgent(LookupError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"there is no agent {agent_id!r}")


class QueueInUse(ValueError):
    def __init__(self, name: str, agents: Sequence[str]) -> None:
        self.agents = list(agents)
        super().__init__(f"queue {name!r} has agents: {', '.join(self.agents)}")


def _queue(row: AcdQueue) -> QueueDef:
    return QueueDef.model_validate({**row.spec, "name": row.name})


def _agent(row: AcdAgent) -> AgentDef:
    return AgentDef.model_validate({**row.spec, "id": row.id})


def _spec(definition: QueueDef | AgentDef, key: str) -> dict[str, Any]:
    # JSON mode: what a strict model reads back (lists, not tuples).
    data = definition.model_dump(mode="json")
    data.pop(key)
    return data


class AcdRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- queues ---------------------------------------------------------------------------------

    async def queues(self) -> dict[str, QueueDef]:
        async with self.db.session() as session:
            rows = await session.scalars(select(AcdQueue).order_by(AcdQueue.name))
            return {row.name: _queue(row) for row in rows}

    async def queue(self, name: str) -> QueueDef:
        async with self.db.session() as session:
            row = await session.get(AcdQueue, name)
        if row is None:
            raise NoSuchQueue(name)
        return _queue(row)

    async def put_queue(self, queue: QueueDef) -> None:
        async with self.db.session() as session, session.begin():
            await _put_queue(session, queue)

    async def delete_queue(self, name: str, *, force: bool = False) -> list[str]:
        """Delete the queue; its agents leave it first with `force` (their ids are returned),
        else QueueInUse."""
        async with self.db.session() as session, session.begin():
            if await session.get(AcdQueue, name) is None:
                raise NoSuchQueue(name)
            members = [row for row in await session.scalars(select(AcdAgent)) if name in row.spec.get("queues", {})]
            if members and not force:
                raise QueueInUse(name, [row.id for row in members])
            for row in members:
                row.spec = {**row.spec, "queues": {q: p for q, p in row.spec["queues"].items() if q != name}}
                row.updated_at = utcnow()
            await session.execute(delete(AcdQueue).where(AcdQueue.name == name))
            return [row.id for row in members]

    # -- agents ---------------------------------------------------------------------------------

    async def agents(self) -> dict[str, AgentDef]:
        async with self.db.session() as session:
            rows = await session.scalars(select(AcdAgent).order_by(AcdAgent.id))
            return {row.id: _agent(row) for row in rows}

    async def agent(self, agent_id: str) -> AgentDef:
        async with self.db.session() as session:
            row = await session.get(AcdAgent, agent_id)
        if row is None:
            raise NoSuchAgent(agent_id)
        return _agent(row)

    async def put_agent(self, agent: AgentDef) -> None:
        """Create or replace the agent; every queue it names must exist (NoSuchQueue)."""
        async with self.db.session() as session, session.begin():
            await _put_agent(session, agent)

    async def delete_agent(self, agent_id: str) -> None:
        async with self.db.session() as session, session.begin():
            row = await session.get(AcdAgent, agent_id)
            if row is None:
                raise NoSuchAgent(agent_id)
            await session.delete(row)

    # -- files ----------------------------------------------------------------------------------

    async def apply(self, changes: Sequence[Change]) -> None:
        """Carry out `acd.changes.plan`'s changes, all or none."""
        async with self.db.session() as session, session.begin():
            for change in changes:
                if change.action in ("create", "update") and isinstance(change.spec, QueueDef):
                    await _put_queue(session, change.spec)
                elif change.action in ("create", "update") and isinstance(change.spec, AgentDef):
                    await _put_agent(session, change.spec)
                elif change.action == "delete" and change.kind == "agent":
                    await session.execute(delete(AcdAgent).where(AcdAgent.id == change.name))
                elif change.action == "delete":
                    await session.execute(delete(AcdQueue).where(AcdQueue.name == change.name))


async def _put_queue(session: AsyncSession, queue: QueueDef) -> None:
    row = await session.get(AcdQueue, queue.name)
    if row is None:
        session.add(AcdQueue(name=queue.name, spec=_spec(queue, "name")))
    else:
        row.spec, row.updated_at = _spec(queue, "name"), utcnow()


async def _put_agent(session: AsyncSession, agent: AgentDef) -> None:
    await session.flush()  # queues created earlier in the same transaction count
    for name in agent.queues:
        if await session.get(AcdQueue, name) is None:
            raise NoSuchQueue(name)
    row = await session.get(AcdAgent, agent.id)
    if row is None:
        session.add(AcdAgent(id=agent.id, spec=_spec(agent, "id")))
    else:
        row.spec, row.updated_at = _spec(agent, "id"), utcnow()
