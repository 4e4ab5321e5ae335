"""The queues' figures per interval of the past (a day by hour, a week by day), from the ACD's stored
events, by the live statistics' own rules (`acd.stats`): the same definitions of answered, abandoned,
service level, ASA and AHT, so a report and the wallboard never disagree about what a figure means.

A task counts as `offered` in the interval it joined, and its outcome (answered, abandoned, ...) in
the interval its wait ended: a wait across a boundary is offered in one and answered in the next, as
interval reports usually count. Pure: the caller loads the events (`LOOKBACK` before `since` as
well, so that tasks already waiting are known) and the queues' SLAs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .events import AcdEvent
from .stats import Stats
from .stats_periods import Period, figures

__all__ = ["LOOKBACK", "MAX_INTERVALS", "interval_report", "parse_interval"]

LOOKBACK = 86400.0  # events read before `since`: a task waits no longer than that unnoticed
MAX_INTERVALS = 2000
_INTERVAL = re.compile(r"^(\d{1,4})([mhd])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}
# The figures of a row, after queue, start and end: those of `queue stats`, in their order.
FIGURES = tuple(figures(Period()))


def parse_interval(text: str) -> float:
    """`15m`, `1h`, `1d`: seconds, from a minute to a day; ValueError otherwise."""
    found = _INTERVAL.match(text)
    seconds = int(found.group(1)) * _UNITS[found.group(2)] if found else 0
    if not 60 <= seconds <= 86400:
        raise ValueError(f"interval: {text[:20]!r} is not a length from 1m to 1d (write 15m, 1h or 1d)")
    return float(seconds)


def interval_report(events: Iterable[AcdEvent], sla: Mapping[str, float], since: float, until: float,
                    interval: float, queues: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One row per interval from `since` (then `since` + `interval`, ...) to `until`, and per queue
    (those of `sla`, and any other the events name; only `queues` if given): `{queue, start, end,
    <FIGURES>}`, times in epoch seconds, durations in seconds, ratios from 0 to 1 (None when
    nothing was counted). `events` in the order they happened."""
    if until <= since:
        raise ValueError("since must come before until")
    if (until - since) / interval > MAX_INTERVALS:
        raise ValueError(f"at most {MAX_INTERVALS} intervals: a longer interval, or a shorter time")
    wanted = set(queues) if queues is not None else None
    stats = Stats(window=interval)
    stats.configure(sla=sla, members={})
    pending = iter(events)
    event = next(pending, None)
    while event is not None and event.at < since:  # what was under way when the report starts
        stats.feed(event)
        event = next(pending, None)
    rows: list[dict[str, Any]] = []
    start = since
    while start < until:
        end = min(start + interval, until)
        stats.new_day(start, carry_over=False)
        while event is not None and event.at < end:
            stats.feed(event)
            event = next(pending, None)
        for name, now in stats.queues(end).items():
            if wanted is None or name in wanted:
                day = now["day"]
                rows.append({"queue": name, "start": start, "end": end, **{k: day[k] for k in FIGURES}})
        start = end
    return rows
