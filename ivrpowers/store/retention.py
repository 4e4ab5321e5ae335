"""Keeping records no longer than needed: calls that ended before a cutoff with their timelines, the
ACD's events and agents' state changes, closed chats with their transcripts.

Deleted in batches, each its own transaction, so that a running controller's CDR writes wait for
one short transaction at a time, never for the whole pruning. A call with recordings keeps them
linked: it is pruned only when `delete_recording` removed its files first (a recording whose file
could not be removed keeps its call, and so stays listed by `recording list`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ivrpowers.store.chat_models import ChatMessageRow, ChatRow
from ivrpowers.store.db import Database
from ivrpowers.store.models import AcdAgentEvent, AcdEventRow, CallEvent, CallRecord

RECORDING_EVENTS = ("recording_started", "recording_saved")
DeleteRecording = Callable[[str], Awaitable[bool]]  # a recording's name -> its file is gone


@dataclass
class Pruned:
    calls: int = 0
    call_events: int = 0
    acd_events: int = 0
    agent_events: int = 0
    chats: int = 0
    chat_messages: int = 0
    recordings: list[str] = field(default_factory=list)  # deleted (or, on a dry run, to delete)
    kept_for_recordings: int = 0  # calls kept: their recordings were not (or could not be) deleted

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "call_events": self.call_events, "acd_events": self.acd_events,
                "agent_events": self.agent_events, "chats": self.chats, "chat_messages": self.chat_messages,
                "recordings": self.recordings, "kept_for_recordings": self.kept_for_recordings}


async def prune(db: Database, before: datetime, *, dry_run: bool = False,
                delete_recording: DeleteRecording | None = None, batch: int = 500) -> Pruned:
    """Delete (or, `dry_run`, count) what ended before `before`. Calls with recordings are pruned
    only with `delete_recording`, once it removed their files (a dry run does not call it)."""
    out = Pruned()
    await _calls(db, before, out, dry_run, delete_recording, batch)
    for table, column, name in ((AcdEventRow, AcdEventRow.at, "acd_events"),
                                (AcdAgentEvent, AcdAgentEvent.at, "agent_events")):
        setattr(out, name, await _rows(db, table, column < before, dry_run, batch))
    await _chats(db, before, out, dry_run, batch)
    return out


async def _calls(db: Database, before: datetime, out: Pruned, dry_run: bool,
                 delete_recording: DeleteRecording | None, batch: int) -> None:
    rec = aliased(CallEvent)  # not the outer query's CallEvent (the dry run's count joins it)
    recorded = select(rec.id).where(rec.call_id == CallRecord.id, rec.type.in_(RECORDING_EVENTS)).exists()
    ended = CallRecord.ended_at.is_not(None) & (CallRecord.ended_at < before)
    with_recordings = await _ids(db, CallRecord.id, ended & recorded)
    out.kept_for_recordings = len(with_recordings)
    if delete_recording is not None:
        for start in range(0, len(with_recordings), batch):
            for call_id, names in (await _recording_names(db, with_recordings[start:start + batch])).items():
                # Files first: a call whose recordings could not all be removed keeps them listed.
                if dry_run or all([await delete_recording(name) for name in names]):
                    out.recordings += names
                    out.kept_for_recordings -= 1
                    if not dry_run:
                        await _delete_calls(db, [call_id], out)
    if dry_run:
        prunable = ended if delete_recording is not None else ended & ~recorded
        async with db.session() as session:
            out.calls = (await session.scalar(select(func.count()).select_from(CallRecord).where(prunable))) or 0
            out.call_events = (await session.scalar(select(func.count()).select_from(CallEvent).join(
                CallRecord, CallEvent.call_id == CallRecord.id).where(prunable))) or 0
        return
    while ids := await _ids(db, CallRecord.id, ended & ~recorded, batch):
        await _delete_calls(db, ids, out)


async def _delete_calls(db: Database, ids: Sequence[str], out: Pruned) -> None:
    async with db.session() as session, session.begin():
        out.call_events += await _delete(session, delete(CallEvent).where(CallEvent.call_id.in_(ids)))
        out.calls += await _delete(session, delete(CallRecord).where(CallRecord.id.in_(ids)))


async def _chats(db: Database, before: datetime, out: Pruned, dry_run: bool, batch: int) -> None:
    closed = (ChatRow.status == "closed") & ChatRow.closed_at.is_not(None) & (ChatRow.closed_at < before)
    if dry_run:
        async with db.session() as session:
            out.chats = (await session.scalar(select(func.count()).select_from(ChatRow).where(closed))) or 0
            out.chat_messages = (await session.scalar(select(func.count()).select_from(ChatMessageRow).join(
                ChatRow, ChatMessageRow.chat_id == ChatRow.id).where(closed))) or 0
        return
    while ids := await _ids(db, ChatRow.id, closed, batch):
        async with db.session() as session, session.begin():
            out.chat_messages += await _delete(session, delete(ChatMessageRow).where(ChatMessageRow.chat_id.in_(ids)))
            out.chats += await _delete(session, delete(ChatRow).where(ChatRow.id.in_(ids)))


async def _rows(db: Database, table: Any, condition: Any, dry_run: bool, batch: int) -> int:
    if dry_run:
        async with db.session() as session:
            return (await session.scalar(select(func.count()).select_from(table).where(condition))) or 0
    deleted = 0
    while ids := await _ids(db, table.id, condition, batch):
        async with db.session() as session, session.begin():
            deleted += await _delete(session, delete(table).where(table.id.in_(ids)))
    return deleted


async def _delete(session: AsyncSession, statement: Delete) -> int:
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount


async def _ids(db: Database, column: Any, condition: Any, limit: int | None = None) -> list[Any]:
    async with db.session() as session:
        return list((await session.scalars(select(column).where(condition).order_by(column).limit(limit))).all())


async def _recording_names(db: Database, call_ids: Sequence[str]) -> dict[str, list[str]]:
    """Each call's recordings, by name (a recording has a started and a saved event: once)."""
    found: dict[str, list[str]] = {call_id: [] for call_id in call_ids}
    async with db.session() as session:
        rows = await session.execute(select(CallEvent.call_id, CallEvent.detail).where(
            CallEvent.call_id.in_(call_ids), CallEvent.type.in_(RECORDING_EVENTS)).order_by(CallEvent.id))
        for call_id, detail in rows.all():
            name = (detail or {}).get("name")
            if isinstance(name, str) and name not in found[call_id]:
                found[call_id].append(name)
    return found
