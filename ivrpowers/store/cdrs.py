"""CDRs: one row per call plus its ordered timeline."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Insert, Table, Update, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.orm import selectinload

from ivrpowers.store import sqlite_rows
from ivrpowers.store.cdr_queue import queue_record
from ivrpowers.store.db import Database
from ivrpowers.store.models import CallEvent, CallRecord

OPS = frozenset({"start", "update", "event"})  # what `apply_batch` knows
_CALLS = cast(Table, CallRecord.__table__)
_EVENTS = cast(Table, CallEvent.__table__)
_COLUMNS = frozenset(_CALLS.columns.keys())
# What a dead owner's replayed start fills in on a row an adopting controller created without it.
_MERGED = ("caller_number", "caller_name", "dialed", "flow_name", "flow_version")


# Call ids are UUIDs; a control character or a long string cannot be one, and is not worth a query
# (a NUL byte would make PostgreSQL raise instead of answering "no such call").
CALL_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
MIN_PREFIX = 4  # shortest start of an id that `find` looks up
MAX_LIMIT = 1000  # most calls one listing returns (CLI and API alike)


class CallLookupError(LookupError):
    pass


class NoSuchCall(CallLookupError):
    pass


class PrefixTooShort(CallLookupError):
    pass


class AmbiguousCall(CallLookupError):
    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(f"{message}: did you mean {', '.join(candidates)}?")
        self.candidates = candidates


class CdrRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(self, **fields: Any) -> None:
        """Create the call's row; a replay of the same start (after an outage) is a no-op."""
        await self.apply_batch([{"op": "start", **fields}])

    async def update(self, call_id: str, **fields: Any) -> None:
        await self.apply_batch([{"op": "update", "call_id": call_id, **fields}])

    async def add_event(
        self, call_id: str, type: str, at: datetime, node: str | None, detail: dict[str, Any], uid: str | None = None
    ) -> None:
        """Append to the timeline; an event whose `uid` is already stored is a replay: a no-op."""
        await self.apply_batch([{"op": "event", "uid": uid, "call_id": call_id, "type": type, "at": at,
                                 "node": node, "detail": detail}])

    async def ping(self) -> None:
        """Raises if the database cannot be reached."""
        async with self.db.session() as session:
            await session.execute(text("SELECT 1"))

    async def apply_batch(self, ops: Sequence[Mapping[str, Any]]) -> None:
        """Apply the CDR writer's operations in order, in one transaction: all of them or none.

        Idempotent, so a replay after a crash is harmless: an event whose `uid` is stored is skipped,
        and a `start` of an existing call changes nothing, except that a row created by an adopting
        controller (`recovered`) takes what it lacks from the dead owner's own start. A few statements
        per batch whatever its size (the ORM's unit of work costs more than SQLite itself here): Core
        on PostgreSQL; on SQLite, driver SQL (`store/sqlite_rows.py`) in one worker thread
        (`Database.run_sync`).
        """
        await self.db.run_sync(lambda conn: _apply(conn, ops))

    async def get(self, call_id: str) -> CallRecord | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(CallRecord).where(CallRecord.id == call_id).options(selectinload(CallRecord.events))
            )

    async def find(self, id_or_prefix: str) -> CallRecord:
        """A call by id, or by an unambiguous prefix of at least MIN_PREFIX characters of it (what
        operators copy from `cdr list`). Raises a `CallLookupError` saying why none is returned."""
        if not CALL_ID.match(id_or_prefix):
            raise NoSuchCall(f"no call {id_or_prefix[:80]!r}")
        if found := await self.get(id_or_prefix):
            return found
        if len(id_or_prefix) < MIN_PREFIX:
            raise PrefixTooShort(f"no call {id_or_prefix!r}; to find one by the start of its id, give at least "
                                 f"{MIN_PREFIX} characters")
        async with self.db.session() as session:
            rows = (await session.scalars(
                select(CallRecord).where(CallRecord.id.startswith(id_or_prefix, autoescape=True))
                .order_by(CallRecord.started_at.desc()).options(selectinload(CallRecord.events)).limit(6)
            )).all()
        if not rows:
            raise NoSuchCall(f"no call {id_or_prefix!r}")
        if len(rows) > 1:
            raise AmbiguousCall(f"{id_or_prefix!r} is the start of several calls", [r.id for r in rows[:5]])
        return rows[0]

    async def latest(self, limit: int = 20) -> list[CallRecord]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(CallRecord)
                .order_by(CallRecord.started_at.desc(), CallRecord.id)
                .limit(limit)
                .options(selectinload(CallRecord.events))
            )
            return list(rows.all())

    async def recordings(self, call_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Recordings made by calls, newest first: each `recording_saved` event, and each
        `recording_started` with no saved one (a controller stopped while it recorded; Asterisk
        finished the file: duration and size unknown, reason `unobserved`)."""
        query = (select(CallEvent, CallRecord.caller_number).join(CallRecord, CallEvent.call_id == CallRecord.id)
                 .where(CallEvent.type.in_(("recording_started", "recording_saved"))))
        if call_id is not None:
            query = query.where(CallEvent.call_id == call_id)
        async with self.db.session() as session:
            # Twice the limit: most recordings have both events.
            rows = (await session.execute(
                query.order_by(CallEvent.at.desc(), CallEvent.id.desc()).limit(2 * limit))).all()
        saved = {event.detail.get("name") for event, _ in rows if event.type == "recording_saved"}
        found = []
        for event, caller in rows:
            if event.type == "recording_started" and event.detail.get("name") in saved:
                continue
            unobserved = event.type == "recording_started"
            found.append({"name": event.detail.get("name"), "call": event.call_id, "caller": caller,
                          "node": event.node, "at": event.at.isoformat(), "duration": event.detail.get("duration"),
                          "size": event.detail.get("size"),
                          "reason": "unobserved" if unobserved else event.detail.get("reason")})
        return found[:limit]

    async def unfinished(self, asterisk_id: str | None = None) -> list[CallRecord]:
        """Calls with no end (on one Asterisk, if given): to adopt after a restart, or to close as lost."""
        query = select(CallRecord).where(CallRecord.ended_at.is_(None))
        if asterisk_id is not None:
            query = query.where(CallRecord.asterisk_id == asterisk_id)
        async with self.db.session() as session:
            rows = await session.scalars(query.options(selectinload(CallRecord.events)))
            return list(rows.all())


def _apply(conn: Connection, ops: Sequence[Mapping[str, Any]]) -> None:
    on_sqlite = conn.dialect.name == "sqlite"
    ids = list({op["id"] if op["op"] == "start" else op["call_id"] for op in ops if op["op"] != "event"})
    recovered: dict[str, bool] = {}  # the calls already stored, and whether made up by an adopter
    if ids and on_sqlite:
        recovered = sqlite_rows.known_calls(conn, ids)
    elif ids:
        recovered = {row.id: row.recovered for row in conn.execute(_KNOWN_CALLS, {"ids": ids})}
    new: dict[str, dict[str, Any]] = {}  # call id -> its row, with later updates folded in
    changed: dict[str, dict[str, Any]] = {}  # stored call id -> its updates, the last one winning
    merges: list[dict[str, Any]] = []
    events: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for op in ops:
        if op["op"] == "event":
            uid = op.get("uid")
            if uid is not None:
                if uid in seen:
                    continue
                seen.add(uid)
            events.append(op)
            continue
        fields = {k: v for k, v in op.items() if k != "op"}
        match op["op"]:
            case "start":
                _check_fields(fields)
                call_id = fields["id"]
                if call_id in new:
                    continue
                if call_id in recovered:
                    if recovered[call_id] and not fields.get("recovered"):
                        merges.append(fields)
                    continue
                new[call_id] = fields
            case "update":
                call_id = fields.pop("call_id")
                _check_fields(fields)
                if call_id in new:
                    new[call_id].update(fields)
                elif call_id in recovered:
                    changed.setdefault(call_id, {}).update(fields)
                else:
                    raise LookupError(f"no call {call_id}")
            case other:
                raise ValueError(f"unknown CDR operation {other!r}")
    if on_sqlite:
        sqlite_rows.insert_calls(conn, list(new.values()))
        _merge_recovered(conn, merges)
        sqlite_rows.update_calls(conn, changed)
        sqlite_rows.insert_events(conn, events)
        return
    for rows_ in _by_keys(list(new.values())):
        conn.execute(_INSERT_CALL, rows_)
    _merge_recovered(conn, merges)
    for rows_ in _by_keys([{"call_key": key, **values} for key, values in changed.items()]):
        conn.execute(_update_calls(frozenset(rows_[0]) - {"call_key"}), rows_)
    if events:
        # A replayed event (its uid already stored) is skipped by the database itself.
        conn.execute(_insert_new_events(), [
            {"uid": e.get("uid"), "call_id": e["call_id"], "type": e["type"], "at": e["at"], "node": e.get("node"),
             "detail": dict(e.get("detail") or {})} for e in events
        ])


# Built once: constructing a statement costs SQLAlchemy more than executing it (coercions, cache key).
_KNOWN_CALLS = select(_CALLS.c.id, _CALLS.c.recovered).where(_CALLS.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_CALL = insert(_CALLS)


@functools.cache
def _update_calls(columns: frozenset[str]) -> Update:
    """UPDATE of these columns WHERE id = :call_key; one per set of columns a batch updates."""
    values: dict[str, Any] = {k: bindparam(k) for k in sorted(columns)}
    return update(_CALLS).where(_CALLS.c.id == bindparam("call_key")).values(values)


@functools.cache
def _insert_new_events() -> Insert:
    return postgresql_insert(_EVENTS).on_conflict_do_nothing(index_elements=["uid"])


def _check_fields(fields: Mapping[str, Any]) -> None:
    # The ORM would silently keep an unknown attribute on the object and store nothing.
    if unknown := set(fields) - _COLUMNS:
        raise ValueError(f"unknown CDR fields {sorted(unknown)}")


def _by_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by their set of keys: one executemany per group."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return list(groups.values())


def _merge_recovered(conn: Connection, starts: list[dict[str, Any]]) -> None:
    """The owner's start, replayed late, completes a row an adopting controller had to make up.

    It stays `recovered`: operators must see that the call was not observed from its start.
    """
    for fields in starts:
        row = conn.execute(select(_CALLS).where(_CALLS.c.id == fields["id"])).mappings().first()
        if row is None:
            continue
        values: dict[str, Any] = {}
        started = fields.get("started_at")
        if started is not None and started < row["started_at"]:
            values["started_at"] = started
        for key in _MERGED:
            if row[key] in (None, "") and fields.get(key) not in (None, ""):
                values[key] = fields[key]
        if values:
            conn.execute(update(_CALLS).where(_CALLS.c.id == fields["id"]).values(values))


def call_to_dict(call: CallRecord) -> dict[str, Any]:
    """The CDR as the CLI and the REST API expose it."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    events = [{"type": e.type, "at": iso(e.at), "node": e.node, "detail": e.detail or {}} for e in call.events]
    return {
        "id": call.id,
        "asterisk_id": call.asterisk_id,
        "channel_id": call.channel_id,
        "owner": call.owner,
        "recovered": call.recovered,
        "role": call.role,
        "source": call.source,
        "channels": call.channels,
        "bridge_id": call.bridge_id,
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
        "queue": queue_record(events),
        "events": events,
    }
