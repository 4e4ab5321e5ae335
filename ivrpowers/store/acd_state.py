"""The ACD router's state and the agents' state changes, in SQL (`models.AcdState`, `AcdAgentEvent`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ivrpowers.store.db import Database
from ivrpowers.store.models import AcdAgentEvent, AcdState, utcnow

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
                   router_id: str = ROUTER) -> None:
        """The router's state after a change, and the agent state changes it made (agent, at, old,
        new, reason), in one transaction."""
        async with self.db.session() as session, session.begin():
            row = await session.get(AcdState, router_id)
            if row is None:
                session.add(AcdState(id=router_id, snapshot=snapshot, owner=owner))
            else:
                row.snapshot, row.owner, row.updated_at = snapshot, owner, utcnow()
            session.add_all(AcdAgentEvent(agent_id=agent, at=at, old=old, new=new, reason=reason)
                            for agent, at, old, new, reason in events)

    async def agent_events(self, agent_id: str | None = None, limit: int = 100) -> list[AcdAgentEvent]:
        query = select(AcdAgentEvent).order_by(AcdAgentEvent.at.desc(), AcdAgentEvent.id.desc()).limit(limit)
        if agent_id is not None:
            query = query.where(AcdAgentEvent.agent_id == agent_id)
        async with self.db.session() as session:
            return list((await session.scalars(query)).all())
