"""CDRs: one row per call plus its ordered timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ivrpowers.store.db import Database
from ivrpowers.store.models import CallEvent, CallRecord


class CdrRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(self, **fields: Any) -> None:
        """Create the call's row; a replay of the same start (after an outage) is a no-op."""
        async with self.db.session() as session, session.begin():
            if await session.get(CallRecord, fields["id"]) is None:
                session.add(CallRecord(**fields))

    async def update(self, call_id: str, **fields: Any) -> None:
        async with self.db.session() as session, session.begin():
            record = await session.get(CallRecord, call_id)
            if record is None:
                raise LookupError(f"no call {call_id}")
            for key, value in fields.items():
                setattr(record, key, value)

    async def add_event(
        self, call_id: str, type: str, at: datetime, node: str | None, detail: dict[str, Any], uid: str | None = None
    ) -> None:
        """Append to the timeline; an event whose `uid` is already stored is a replay: a no-op."""
        try:
            async with self.db.session() as session, session.begin():
                session.add(CallEvent(uid=uid, call_id=call_id, type=type, at=at, node=node, detail=dict(detail)))
        except IntegrityError:
            if uid is None:
                raise
            async with self.db.session() as session:
                if await session.scalar(select(CallEvent.id).where(CallEvent.uid == uid)) is None:
                    raise

    async def get(self, call_id: str) -> CallRecord | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(CallRecord).where(CallRecord.id == call_id).options(selectinload(CallRecord.events))
            )

    async def find(self, id_or_prefix: str) -> CallRecord | None:
        """A call by id, or by an unambiguous prefix of it (what operators copy from `cdr list`)."""
        if found := await self.get(id_or_prefix):
            return found
        if len(id_or_prefix) < 4:
            return None
        async with self.db.session() as session:
            rows = (await session.scalars(
                select(CallRecord).where(CallRecord.id.startswith(id_or_prefix, autoescape=True))
                .options(selectinload(CallRecord.events)).limit(2)
            )).all()
        return rows[0] if len(rows) == 1 else None

    async def latest(self, limit: int = 20) -> list[CallRecord]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(CallRecord)
                .order_by(CallRecord.started_at.desc(), CallRecord.id)
                .limit(limit)
                .options(selectinload(CallRecord.events))
            )
            return list(rows.all())

    async def unfinished(self) -> list[CallRecord]:
        """Calls with no end: candidates for adoption after a restart, or for closing as lost."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(CallRecord).where(CallRecord.ended_at.is_(None)).options(selectinload(CallRecord.events))
            )
            return list(rows.all())


def call_to_dict(call: CallRecord) -> dict[str, Any]:
    """The CDR as the CLI and the REST API expose it."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": call.id,
        "channel_id": call.channel_id,
        "caller": call.caller_number,
        "caller_name": call.caller_name,
        "dialed": call.dialed,
        "flow": call.flow_name,
        "flow_version": call.flow_version,
        "started_at": iso(call.started_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "duration": (call.ended_at - call.started_at).total_seconds() if call.ended_at else None,
        "disposition": call.disposition,
        "hangup_cause": call.hangup_cause,
        "hangup_cause_text": call.hangup_cause_text,
        "events": [
            {"type": e.type, "at": iso(e.at), "node": e.node, "detail": e.detail or {}} for e in call.events
        ],
    }
