"""The queues' interval report (`acd.report`) over the stored events, with the filters as text the
CLI (`ivrpowers queue report`) and the REST API (`GET /api/reports/queues`) both take, and its CSV."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from ivrpowers.acd.report import FIGURES, LOOKBACK, interval_report, parse_interval
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.cdr_search import csv_text, parse_range
from ivrpowers.store.db import Database

MAX_DAYS = 31  # the longest report: its events are read at once


async def queue_report(db: Database, params: Mapping[str, str | None], zone: str,
                       now: datetime | None = None) -> list[dict[str, Any]]:
    """`since` (default: today's start in `zone`), `until` (default: now), `interval` (default 1h),
    `queue` (default: every queue): the report's rows, times as ISO 8601 in `zone`. ValueError
    names a bad parameter; LookupError, a queue neither defined nor in the events."""
    now = now or datetime.now(UTC)
    today = datetime.combine(now.astimezone(ZoneInfo(zone)).date(), time(), ZoneInfo(zone))
    since, until = parse_range(params, zone, now, since=today, until=now)
    assert since is not None and until is not None  # the defaults
    interval = parse_interval(params.get("interval") or "1h")
    if (until - since).total_seconds() > MAX_DAYS * 86400:
        raise ValueError(f"at most {MAX_DAYS} days at once")
    start, end = since.timestamp(), until.timestamp()
    events = await AcdStateRepository(db).events_since(start - LOOKBACK, end)
    sla = {name: float(q.sla_seconds) for name, q in (await AcdRepository(db).queues()).items()}
    queue = params.get("queue")
    if queue and queue not in sla and not any(event.queue == queue for event in events):
        raise LookupError(f"there is no queue named {queue!r}, now or in those events")
    rows = interval_report(events, sla, start, end, interval, queues=[queue] if queue else None)
    tz = ZoneInfo(zone)
    return [{**row, "start": _iso(row["start"], tz), "end": _iso(row["end"], tz)} for row in rows]


def report_csv(rows: list[dict[str, Any]]) -> str:
    return csv_text(("queue", "start", "end", *FIGURES), rows)


def _iso(epoch: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz).isoformat()
