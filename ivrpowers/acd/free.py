"""A queue's free agents, indexed so that picking one for a task rarely looks at more than a few.

Per channel the queue takes, the agents free there, sorted by the queue strategy's `preference`
(entries `(*preference, agent id)`): linear, longest-idle and fewest-calls take the first one able
to take the task, round-robin the first after its position. Per skill, the agents free on any
channel, by level (`(level, rank, agent id)`), for tasks that require skills: the required skill
the fewest free agents have at the level required names the candidates, used when they are few,
and always for ringall, random and skills, which weigh every candidate (skills stops once the
levels are too high to beat the smallest surplus found). A skill is indexed from the first task
requiring it in the queue; an agent moves in the lists as it becomes free, busy, or stands
differently (a chat taken, a call answered).

`select` gives what `strategies.choose` gives over the same candidates (the tests hold it to that).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Collection, Mapping
from typing import Any

from .model import CHANNELS, Channel, Strategy, meets
from .records import AgentRecord, Standing
from .strategies import preference_of
from .waiting import Requirement

__all__ = ["FreeAgents"]

Entry = tuple[Any, ...]  # (*preference, agent id)


class FreeAgents:
    def __init__(self, queue: str, strategy: Strategy, channels: Collection[Channel]) -> None:
        self.queue = queue
        self.strategy = strategy
        self._ordered: dict[Channel, list[Entry]] = {c: [] for c in CHANNELS if c in channels}
        self._skilled: dict[str, list[tuple[int, int, str]]] = {}
        self._preference = preference_of(strategy)
        self._here: dict[tuple[Channel, ...], tuple[Channel, ...]] = {}  # an agent's free channels -> those here

    @property
    def channels(self) -> frozenset[Channel]:
        return frozenset(self._ordered)

    def move(self, agent: AgentRecord, new: tuple[Channel, ...], standing: Standing) -> None:
        """The agent is now free on `new` channels (none: it is not free), as it stands now."""
        ordered, here = self._ordered, self._here
        old = here.get(agent.free)
        if old is None:
            old = here[agent.free] = tuple(c for c in agent.free if c in ordered)
        if (within := here.get(new)) is None:
            within = here[new] = tuple(c for c in new if c in ordered)
        new = within
        old_entry = agent.entries.get(self.queue)
        new_entry: Entry | None = None
        if new:
            load, idle_since, answered = standing
            new_entry = (*self._preference(agent.rank, agent.config.queues[self.queue], idle_since, answered, load),
                         agent.id)
        if old == new and old_entry == new_entry:
            return
        if old_entry is not None:
            for channel in old:
                entries = ordered[channel]
                del entries[bisect.bisect_left(entries, old_entry)]
        if new_entry is None:
            del agent.entries[self.queue]
        else:
            agent.entries[self.queue] = new_entry
            for channel in new:
                bisect.insort(ordered[channel], new_entry)
        if bool(old) != bool(new) and self._skilled:
            skills = agent.config.skills
            for skill, by_level in self._skilled.items():
                level = skills.get(skill)
                if level is None:
                    continue
                if new:
                    bisect.insort(by_level, (level, agent.rank, agent.id))
                else:
                    del by_level[bisect.bisect_left(by_level, (level, agent.rank, agent.id))]

    def _track(self, skill: str, agents: Mapping[str, AgentRecord]) -> list[tuple[int, int, str]]:
        free = {e[-1] for entries in self._ordered.values() for e in entries}
        by_level = sorted((level, agents[a].rank, a) for a in free if (level := agents[a].config.skills.get(skill)))
        self._skilled[skill] = by_level
        return by_level

    def select(self, channel: Channel, requirement: Requirement, declined: set[str], last: int | None,
               rng: random.Random, agents: Mapping[str, AgentRecord]) -> list[str]:
        """The agents to offer a task on `channel` to: those the strategy picks among the free ones
        meeting `requirement` and not in `declined` (`last`: the round-robin position)."""
        ordered = self._ordered.get(channel)
        if not ordered:
            return []
        if requirement:
            fewest = None
            for skill, level in requirement:
                by_level = self._skilled.get(skill)
                if by_level is None:
                    by_level = self._track(skill, agents)
                start = bisect.bisect_left(by_level, (level,))
                if start == len(by_level):
                    return []  # nobody free has it
                if fewest is None or len(by_level) - start < fewest[0]:
                    fewest = (len(by_level) - start, by_level, start, level)
            assert fewest is not None
            count, by_level, start, level = fewest
            # Walking the channel's order finds the first able agent after about len/count steps.
            if self.strategy in ("ringall", "random", "skills") or count * count <= len(ordered):
                return self._select_among(by_level, start, level, channel, requirement, declined, last, rng, agents)

        def able(agent_id: str) -> bool:
            return agent_id not in declined and (not requirement or meets(agents[agent_id].config.skills, requirement))

        if self.strategy == "ringall":
            return [e[-1] for e in ordered if able(e[-1])]
        if self.strategy == "random":
            if not declined and not requirement:
                return [rng.choice(ordered)[-1]]
            everyone = [e[-1] for e in ordered if able(e[-1])]
            return [rng.choice(everyone)] if everyone else []
        start = 0 if last is None or self.strategy != "round-robin" else bisect.bisect_left(ordered, (last + 1,))
        for i in itertools.chain(range(start, len(ordered)), range(start)):
            if able(ordered[i][-1]):
                return [ordered[i][-1]]
        return []

    def _select_among(self, by_level: list[tuple[int, int, str]], start: int, need: int, channel: Channel,
                      requirement: Requirement, declined: set[str], last: int | None, rng: random.Random,
                      agents: Mapping[str, AgentRecord]) -> list[str]:
        """`select` over the agents with one of the required skills at the level (from `start`)."""
        strategy = self.strategy
        found: list[tuple[int, str]] = []
        best: tuple[tuple[Any, ...], str] | None = None
        for level, rank, agent_id in itertools.islice(by_level, start, None):
            if strategy == "skills" and best is not None and level - need > best[0][0]:
                break  # the surplus on this skill alone is more than the best total
            agent = agents[agent_id]
            skills = agent.config.skills
            if channel not in agent.free or agent_id in declined or not meets(skills, requirement):
                continue
            if strategy in ("ringall", "random"):
                found.append((rank, agent_id))
                continue
            if strategy == "skills":
                surplus = sum(skills.get(name, 0) - lvl for name, lvl in requirement)
                key: tuple[Any, ...] = (surplus, *agent.entries[self.queue])
            elif strategy == "round-robin":
                key = (last is not None and rank <= last, rank)
            else:
                key = agent.entries[self.queue]
            if best is None or key < best[0]:
                best = key, agent_id
        if strategy == "ringall":
            return [agent_id for _, agent_id in sorted(found)]
        if strategy == "random":
            return [rng.choice(sorted(found))[1]] if found else []
        return [best[1]] if best is not None else []
