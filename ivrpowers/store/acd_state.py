"""The ACD router's state, the agents' state changes and the ACD's events, in SQL (`models.AcdState`,
`AcdAgentEvent`, `AcdEventRow`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ivrpowers.acd.events import AcdEvent
from ivrpowers.store.db import Database
from ivrpowers.store.models import AcdAgentEvent, AcdEventRow, AcdState, utcnow

ROUTER = "router"  # the one router of this installation (several would each have a row)


class AcdStateRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, router_id: str = ROUTER) -> dict[str, Any] | None:
        async with self.db.session() as session:
            row = await session.get(AcdState, router_id)
            return dict(row.snapshot) if row is not None else None

    async def save(self, snapshot: dict[str, Any], owner: str, events: Sequence[tuple[str, datetime, str, str,
                                                                                         str | None]] = (),
                   router_id: str = ROUTER, acd_events: Sequence[AcdEvent] = ()) -> None:
        """The router's state after a change, the agent state changes it made (agent, at, old,
        new, reason) and the run time's events since the last save, in one transaction."""
        async with self.db.session() as session, session.begin():
            row = await session.get(AcdState, router_id)
            if row is None:
                session.add(AcdState(id=router_id, snapshot=snapshot, owner=owner))
            else:
                row.snapshot, row.owner, row.updated_at = snapshot, owner, utcnow()
            session.add_all(AcdAgentEvent(agent_id=agent, at=at, old=old, new=new, reason=reason)
                            for agent, at, old, new, reason in events)
            session.add_all(AcdEventRow(at=datetime.fromtimestamp(e.at, UTC), kind=e.kind, queue=e.queue, task=e.task,
                                        agent=e.agent, channel=e.channel, detail=dict(e.detail), owner=owner)
                            for e in acd_events)

    async def events_since(self, since: float, until: float | None = None) -> list[AcdEvent]:
        """The stored events from `since` (epoch seconds) on, before `until` if given, in the order
        they happened."""
        query = select(AcdEventRow).where(AcdEventRow.at >= datetime.fromtimestamp(since, UTC))
        if until is not None:
            query = query.where(AcdEventRow.at < datetime.fromtimestamp(until, UTC))
        query = query.order_by(AcdEventRow.id)
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
        return [AcdEvent(row.kind, row.at.timestamp(), queue=row.queue, task=row.task, agent=row.agent,  # type: ignore[arg-type]
                         channel=row.channel, detail=dict(row.detail)) for row in rows]  # type: ignore[arg-type]

    async def agent_events(self, agent_id: str | None = None, limit: int = 100) -> list[AcdAgentEvent]:
        query = select(AcdAgentEvent).order_by(AcdAgentEvent.at.desc(), AcdAgentEvent.id.desc()).limit(limit)
        if agent_id is not None:
            query = query.where(AcdAgentEvent.agent_id == agent_id)
        async with self.db.session() as session:
            return list((await session.scalars(query)).all())
