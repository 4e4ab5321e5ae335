"""A queue's waiting tasks, indexed so a free agent finds its next task without looking at them all.

Tasks are kept per channel, then per requirement (the skills and levels a task requires now,
relaxation applied), each group a sorted list of keys `(-priority, arrived, seq, task id)`. An
agent looks at the head of each group whose requirement it meets, so the work is the number of
distinct requirements in the queue, not the number of tasks; it only reads past a head to skip
tasks it declined. Lists rather than heaps: an agent must read past declined tasks in order, and
arrivals mostly append.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Container, Iterator, Mapping

from .model import Channel, meets

__all__ = ["Key", "Requirement", "WaitingLine"]

Key = tuple[int, float, int, str]
Requirement = tuple[tuple[str, int], ...]


class WaitingLine:
    def __init__(self) -> None:
        self._groups: dict[Channel, dict[Requirement, list[Key]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, channel: Channel, requirement: Requirement, key: Key) -> None:
        group = self._groups.setdefault(channel, {}).setdefault(requirement, [])
        if not group or group[-1] < key:
            group.append(key)
        else:
            bisect.insort(group, key)
        self._count += 1

    def remove(self, channel: Channel, requirement: Requirement, key: Key) -> None:
        groups = self._groups[channel]
        group = groups[requirement]
        at = bisect.bisect_left(group, key)
        if at == len(group) or group[at] != key:
            raise KeyError(key)
        del group[at]
        if not group:
            # Requirements come and go with relaxation: empty groups would pile up.
            del groups[requirement]
        self._count -= 1

    def first_for(self, channel: Channel, skills: Mapping[str, int], declined: Container[str]) -> Key | None:
        """The best task on `channel` an agent with `skills` may take, skipping the `declined` ids."""
        best: Key | None = None
        for requirement, group in self._groups.get(channel, {}).items():
            if best is not None and group[0] > best:
                continue
            if requirement and not meets(skills, requirement):
                continue
            for key in group:
                if best is not None and key > best:
                    break
                if key[3] not in declined:
                    best = key
                    break
        return best

    def ordered(self, channel: Channel | None = None) -> Iterator[Key]:
        """Every waiting task's key (on `channel`, or on all), best first."""
        channels = [channel] if channel is not None else list(self._groups)
        groups = [group for c in channels for group in self._groups.get(c, {}).values()]
        return heapq.merge(*groups)
