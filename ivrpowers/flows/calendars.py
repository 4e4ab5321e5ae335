"""Business hours: a flow's `calendars`, and what `open("NAME")` answers for a moment in time.

    timezone: Europe/Madrid
    calendars:
      support:
        hours: {mon-fri: "09:00-18:00", sat: "10:00-14:00"}
        closed: ["2026-12-25", "01-01"]      # a date, or MM-DD for every year

Days are `mon`..`sun`, a range (`mon-fri`, `fri-mon` wraps), or a list (`mon,wed,fri`); a day
not listed is closed. Hours are `HH:MM-HH:MM` ranges, several separated by commas or as a YAML
list; `24:00` ends a day, and a range past midnight is two ranges on two days. The time zone is
the flow's `timezone` (IANA name) or the controller's default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DAYS", "OpeningHours", "now_fields", "parse_calendar", "time_zone"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})$")
_YEARLY = re.compile(r"^([0-9]{2})-([0-9]{2})$")


@dataclass(frozen=True)
class OpeningHours:
    """Minutes since midnight, [start, end), per weekday (0 = Monday); closed dates."""

    hours: tuple[tuple[tuple[int, int], ...], ...]
    closed: frozenset[date]
    closed_yearly: frozenset[tuple[int, int]]

    def is_open(self, when: datetime) -> bool:
        day = when.date()
        if day in self.closed or (day.month, day.day) in self.closed_yearly:
            return False
        minute = when.hour * 60 + when.minute
        return any(start <= minute < end for start, end in self.hours[when.weekday()])


def time_zone(name: str) -> tzinfo:
    """An IANA time zone by name; ValueError naming the problem otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name, e.g. Europe/Madrid)") from None


def _days(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip().lower()
        first, dash, last = part.partition("-")
        if first not in DAYS or (dash and last not in DAYS):
            raise ValueError(f"{spec!r} is not a day or days (mon..sun, a range like mon-fri, or mon,wed,fri)")
        a, b = DAYS.index(first), DAYS.index(last if dash else first)
        out.extend(DAYS.index(DAYS[(a + i) % 7]) for i in range((b - a) % 7 + 1))
    return out


def _minutes(hour: str, minute: str, text: str) -> int:
    h, m = int(hour), int(minute)
    if m > 59 or h > 24 or (h == 24 and m):
        raise ValueError(f"{text!r}: no such time of day")
    return h * 60 + m


def _ranges(value: str | Sequence[str]) -> list[tuple[int, int]]:
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[tuple[int, int]] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a range of hours like \"09:00-18:00\"")
        text = item.strip().replace(" ", "")
        match = _RANGE.match(text)
        if not match:
            raise ValueError(f"{item.strip()!r} is not a range of hours like \"09:00-18:00\"")
        start = _minutes(match.group(1), match.group(2), text)
        end = _minutes(match.group(3), match.group(4), text)
        if end <= start:
            raise ValueError(f"{text!r} ends before it starts (past midnight? write it as two ranges on two days)")
        out.append((start, end))
    return sorted(out)


def _closed(items: Sequence[str]) -> tuple[frozenset[date], frozenset[tuple[int, int]]]:
    dates: set[date] = set()
    yearly: set[tuple[int, int]] = set()
    for item in items:
        text = str(item).strip()
        if match := _YEARLY.match(text):
            month, day = int(match.group(1)), int(match.group(2))
            try:
                date(2000, month, day)  # a leap year: 02-29 is a date some years have
            except ValueError:
                raise ValueError(f"closed: {text!r} is not a month and day") from None
            yearly.add((month, day))
            continue
        try:
            dates.add(date.fromisoformat(text))
        except ValueError:
            raise ValueError(f"closed: {text!r} is not a date (YYYY-MM-DD, or MM-DD for every year)") from None
    return frozenset(dates), frozenset(yearly)


def parse_calendar(hours: Mapping[str, str | Sequence[str]], closed: Sequence[str]) -> OpeningHours:
    """Raises ValueError saying what is wrong."""
    per_day: list[list[tuple[int, int]] | None] = [None] * 7
    for spec, value in hours.items():
        ranges = _ranges(value)
        for day in _days(str(spec)):
            if per_day[day] is not None:
                raise ValueError(f"{DAYS[day]} is given hours twice (in {spec!r} and before)")
            per_day[day] = ranges
    dates, yearly = _closed(closed)
    return OpeningHours(tuple(tuple(r or ()) for r in per_day), dates, yearly)


def now_fields(when: datetime) -> dict[str, str | int]:
    """The `now.*` names of the expression language for a moment, already in the flow's zone."""
    return {"time": f"{when.hour:02d}:{when.minute:02d}", "weekday": DAYS[when.weekday()],
            "date": when.date().isoformat(), "hour": when.hour, "minute": when.minute}
