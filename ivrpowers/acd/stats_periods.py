"""Sums over a stretch of time for `acd.stats`: the day (counters only) and a sliding window (what
happened in the last N seconds, pruned as time passes).

Durations are kept in integer milliseconds: a window subtracts what leaves it, and integers come
back to exactly zero where floats would drift.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["COUNTS", "DURATIONS", "Period", "Window", "figures"]

# Counted once per task: `offered` when it joins; exactly one of answered, abandoned, timeouts, left,
# no_agents, failed, callbacks (parked) when its wait ends (and `waits_ended` with it); `handled`
# when an agent's conversation with it is over.
COUNTS = ("offered", "waits_ended", "answered", "answered_in_sla", "abandoned", "timeouts", "left", "no_agents",
          "failed", "callbacks", "handled")
# Milliseconds: waits of answered tasks, waits of abandoned ones, talk and wrap-up of handled ones.
DURATIONS = ("answer_wait", "abandon_wait", "talk", "wrap_up")
FIELDS = COUNTS + DURATIONS

Entry = tuple[tuple[str, int], ...]


class Period:
    """Running sums, and the longest wait before an abandon."""

    __slots__ = ("abandon_max", "sums")

    def __init__(self) -> None:
        self.sums: dict[str, int] = dict.fromkeys(FIELDS, 0)
        self.abandon_max = 0

    def add(self, entry: Entry) -> None:
        for name, value in entry:
            self.sums[name] += value
        if wait := dict(entry).get("abandon_wait"):
            self.abandon_max = max(self.abandon_max, wait)


class Window(Period):
    """The sums of what happened in the last `seconds`: entries leave as time passes (`prune`).

    Memory is what happened within the window: one entry per event, plus the abandons that could
    still be the longest (a decreasing run: a shorter, older wait can never be the maximum again).
    """

    __slots__ = ("abandons", "entries", "latest", "seconds")

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.entries: deque[tuple[float, Entry]] = deque()
        self.abandons: deque[tuple[float, int]] = deque()
        self.latest = float("-inf")

    def add_at(self, at: float, entry: Entry) -> None:
        # The wall clock may step back: entries stay in time order, so pruning from the left is right.
        at = self.latest = max(at, self.latest)
        self.entries.append((at, entry))
        for name, value in entry:
            self.sums[name] += value
        if wait := dict(entry).get("abandon_wait"):
            while self.abandons and self.abandons[-1][1] <= wait:
                self.abandons.pop()
            self.abandons.append((at, wait))
        self.prune(at)

    def prune(self, now: float) -> None:
        cutoff = now - self.seconds
        while self.entries and self.entries[0][0] < cutoff:
            _, entry = self.entries.popleft()
            for name, value in entry:
                self.sums[name] -= value
        while self.abandons and self.abandons[0][0] < cutoff:
            self.abandons.popleft()
        self.abandon_max = self.abandons[0][1] if self.abandons else 0


def _seconds(ms: int) -> float:
    return round(ms / 1000, 3)


def _average(ms: int, count: int) -> float | None:
    return round(ms / count / 1000, 3) if count else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(period: Period) -> dict[str, Any]:
    """What a report shows of `period`: counts, seconds, and ratios (None where nothing was counted)."""
    s = period.sums
    return {
        **{name: s[name] for name in COUNTS},
        "service_level": _ratio(s["answered_in_sla"], s["waits_ended"]),
        "abandon_rate": _ratio(s["abandoned"], s["waits_ended"]),
        "asa": _average(s["answer_wait"], s["answered"]),
        "aht": _average(s["talk"] + s["wrap_up"], s["handled"]),
        "abandoned_wait_avg": _average(s["abandon_wait"], s["abandoned"]),
        "abandoned_wait_max": _seconds(period.abandon_max) if s["abandoned"] else None,
        "talk_time": _seconds(s["talk"]),
        "wrap_up_time": _seconds(s["wrap_up"]),
    }
