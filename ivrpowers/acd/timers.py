"""The router's deadlines: a heap of what must happen when, in an order that never depends on history.

Entries are never removed when they stop applying (an offer answered, a wrap-up ended early):
the router checks each against its state when it comes due and drops the stale ones. Entries due
at the same time come out by kind, then by the task's sequence number or the agent's rank, so a
router rebuilt from a snapshot (whose heap holds only live entries) fires them in the same order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["MAX_WAIT", "RELAX", "RING", "WRAP", "Deadline", "Timers"]

# Kinds, in the order they fire when due together.
RING = 0  # an offer rings out: (task seq, agent rank, task, agent)
MAX_WAIT = 1  # a task waited too long: (task seq, 0, task, "")
RELAX = 2  # a task's next relaxation step: (task seq, step index, task, "")
WRAP = 3  # an agent's wrap-up ends: (agent rank, 0, agent, "")


class Deadline(NamedTuple):
    at: float
    kind: int
    order: int
    detail: int
    first: str
    second: str


class Timers:
    def __init__(self) -> None:
        self._heap: list[Deadline] = []

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, deadline: Deadline) -> None:
        heapq.heappush(self._heap, deadline)

    def next_time(self, live: Callable[[Deadline], bool]) -> float | None:
        """When the earliest live deadline is due, dropping the stale ones before it."""
        heap = self._heap
        while heap and not live(heap[0]):
            heapq.heappop(heap)
        return heap[0].at if heap else None

    def pop_due_at(self, at: float) -> list[Deadline]:
        """Every entry due exactly at `at`, in firing order (stale ones included: check each)."""
        heap = self._heap
        due = []
        while heap and heap[0].at == at:
            due.append(heapq.heappop(heap))
        return due
