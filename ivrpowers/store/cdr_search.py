"""Finding call records: by when they started, a number, how they ended, their flow; newest first,
a page at a time; and the CSV an operator's spreadsheet or billing takes.

The CLI (`ivrpowers cdr list`) and the REST API (`GET /api/calls`) take the same filters, read by
`parse_query` from text, so both accept the same values and refuse the same mistakes with the same
one-line message.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from ivrpowers.store.cdrs import CALL_ID, MAX_LIMIT
from ivrpowers.store.db import Database
from ivrpowers.store.models import CallRecord

_AGO = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_NUMBER = re.compile(r"^[0-9A-Za-z+*#_.@-]{1,64}$")
_E164 = re.compile(r"^\+[0-9]{1,20}$")
# Times a database and an epoch-seconds timestamp both hold, with a day to spare either way.
_EARLIEST, _LATEST = datetime(1970, 1, 2, tzinfo=UTC), datetime(9998, 12, 31, tzinfo=UTC)
# A row of the CSV: the record's own fields, then its queue's when it queued (`cdrs.call_to_dict`).
CSV_COLUMNS = ("id", "started_at", "answered_at", "ended_at", "duration", "caller", "caller_name", "dialed",
               "flow", "flow_version", "disposition", "hangup_cause", "hangup_cause_text", "role", "source",
               "queue", "queue_outcome", "queue_wait", "agent", "talk")


@dataclass(frozen=True)
class CallQuery:
    since: datetime | None = None  # started at or after
    until: datetime | None = None  # started before
    number: str | None = None  # in the caller's number or the number dialed
    disposition: str | None = None
    flow: str | None = None
    limit: int = 20
    before: str | None = None  # the last call of the previous page: the page after it


def parse_when(text: str, zone: str, now: datetime) -> datetime:
    """`2026-11-30` (that day's start), `2026-11-30T08:00` or with a space (in `zone` unless it
    has its own offset), or a time ago: `90m`, `24h`, `7d`."""
    if ago := _AGO.match(text):
        return now.replace(microsecond=0) - timedelta(seconds=int(ago.group(1)) * _UNITS[ago.group(2)])
    try:
        if len(text) == 10:
            when = datetime.combine(date.fromisoformat(text), time(), ZoneInfo(zone))
        else:
            when = datetime.fromisoformat(text)
            when = when if when.tzinfo is not None else when.replace(tzinfo=ZoneInfo(zone))
        in_range = _EARLIEST <= when.astimezone(UTC) <= _LATEST
    except (ValueError, OverflowError):
        raise ValueError(f"{text[:40]!r} is not a time: write 2026-11-30, 2026-11-30T08:00 or 24h (ago)") from None
    if not in_range:
        raise ValueError(f"{text[:40]!r} is out of range: from 1970 to 9998")
    return when


def parse_range(params: Mapping[str, str | None], zone: str, now: datetime, *, since: datetime | None = None,
                until: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """`since` and `until` as given (`parse_when`), else the defaults; ValueError names the bad one,
    or says they are the wrong way round."""
    found = {"since": since, "until": until}
    for key in found:
        if (value := params.get(key)) is not None:
            try:
                found[key] = parse_when(value, zone, now)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
    start, end = found["since"], found["until"]
    if start is not None and end is not None and start >= end:
        raise ValueError(f"since ({start.isoformat()}) must come before until ({end.isoformat()})")
    return start, end


def parse_query(params: Mapping[str, str | None], zone: str, now: datetime | None = None,
                default_limit: int = 20) -> CallQuery:
    """The filters given as text (CLI options, query parameters); ValueError names the bad one."""
    found: dict[str, Any] = {}
    found["since"], found["until"] = parse_range(params, zone, now or datetime.now(UTC))
    for key, pattern in (("number", _NUMBER), ("disposition", _NAME), ("flow", _NAME), ("before", CALL_ID)):
        if (value := params.get(key)) is not None:
            if not pattern.match(value):
                # A + left bare in a URL's query reaches us as a space.
                hint = " (in a URL, write + as %2B)" if key == "number" and value.startswith(" ") else ""
                raise ValueError(f"{key}: {value[:80]!r} is not a {key if key != 'before' else 'call id'}{hint}")
            found[key] = value
    raw = params.get("limit")
    raw = str(default_limit) if raw is None else raw
    # isascii: str.isdigit() is true of '²' too, which int() refuses.
    limit = int(raw) if raw.isascii() and raw.isdigit() else 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return CallQuery(limit=limit, **found)


async def search(db: Database, query: CallQuery) -> list[CallRecord]:
    """The calls that match, newest first (ties by id), at most `query.limit`, after `query.before`."""
    conditions = []
    if query.since is not None:
        conditions.append(CallRecord.started_at >= query.since)
    if query.until is not None:
        conditions.append(CallRecord.started_at < query.until)
    if query.number is not None:
        conditions.append(or_(CallRecord.caller_number.contains(query.number, autoescape=True),
                              CallRecord.dialed.contains(query.number, autoescape=True)))
    if query.disposition is not None:
        conditions.append(CallRecord.disposition == query.disposition)
    if query.flow is not None:
        conditions.append(CallRecord.flow_name == query.flow)
    async with db.session() as session:
        if query.before is not None:
            last = await session.get(CallRecord, query.before)
            if last is None:
                raise LookupError(f"before: no call {query.before!r}")
            conditions.append(or_(CallRecord.started_at < last.started_at,
                                  (CallRecord.started_at == last.started_at) & (CallRecord.id > last.id)))
        rows = await session.scalars(
            select(CallRecord).where(*conditions).order_by(CallRecord.started_at.desc(), CallRecord.id)
            .limit(query.limit).options(selectinload(CallRecord.events)))
        return list(rows.all())


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], header: bool = True) -> str:
    """`rows` as CSV lines (RFC 4180), their `columns` in that order, None as an empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    writer.writerows(["" if row.get(column) is None else row[column] for column in columns] for row in rows)
    return out.getvalue()


def to_csv(calls: Iterable[Mapping[str, Any]], header: bool = True) -> str:
    """`cdrs.call_to_dict` records as CSV lines, in `CSV_COLUMNS` order."""
    rows = []
    for call in calls:
        queued = call.get("queue") or {}
        row = {**call, "queue": queued.get("queue"), "queue_outcome": queued.get("outcome"),
               "queue_wait": queued.get("wait"), "agent": queued.get("agent"), "talk": queued.get("talk")}
        rows.append({column: _cell(row.get(column)) for column in CSV_COLUMNS})
    return csv_text(CSV_COLUMNS, rows, header)


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell that starts with one of these as a formula (CSV injection), and a
    # caller's name and number come from the caller. An international number stays as it is.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _E164.match(value):
        return "'" + value
    return value
