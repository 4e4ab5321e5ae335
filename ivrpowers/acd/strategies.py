"""How a queue picks among the free agents able to take a task: one small pure function per strategy.

Each gets the candidates (never empty, in no particular order) and returns the agents to offer
the task to: all of them for `ringall`, one otherwise. Every ordering ends on the agent's `rank`
(its order in the router's configuration), so the choice never depends on the order the
candidates came in: the same state gives the same choice, after a restore too.

These functions are the definition; the router gets the same answers without looking at every
free agent (`free.FreeAgents` keeps them sorted by `preference`), and its tests hold it to them.

- `ringall`: everyone, by rank.
- `round-robin`: the next agent by rank after the one the queue served last, wrapping around.
- `longest-idle`: fewest tasks held first (chats: spread the load), then idle the longest, i.e.
  the earliest end of its last task or wrap-up, or login.
- `fewest-calls`: fewest tasks answered since the agent logged in, then longest idle.
- `random`: uniformly, with the router's injected `random.Random`.
- `linear`: lowest penalty in the queue, then rank.
- `skills`: the closest match: the smallest surplus (the sum, over the required skills, of the
  agent's level above the level required), so the most skilled stay free for the hardest tasks;
  then lowest penalty, then longest idle.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import NamedTuple

from .model import Strategy

__all__ = ["Candidate", "Preference", "choose", "fewest_calls", "linear", "longest_idle", "preference", "preference_of",
           "random_pick", "ringall", "round_robin", "skills"]


class Candidate(NamedTuple):
    """A free agent able to take the task, with what the strategies weigh."""

    agent: str
    rank: int  # the agent's order in the router's configuration: the last tie-break
    penalty: int = 0  # in the task's queue
    idle_since: float = 0.0
    answered: int = 0  # tasks answered since login
    load: int = 0  # tasks held now, ringing or answered
    surplus: int = 0  # levels above what the task requires, summed over its required skills


Preference = Callable[[int, int, float, int, int], tuple[float, ...]]  # (rank, penalty, idle_since, answered, load)
_PREFERENCES: dict[str, Preference] = {
    "linear": lambda rank, penalty, idle_since, answered, load: (penalty, rank),
    "longest-idle": lambda rank, penalty, idle_since, answered, load: (load, idle_since, rank),
    "fewest-calls": lambda rank, penalty, idle_since, answered, load: (answered, idle_since, rank),
    "skills": lambda rank, penalty, idle_since, answered, load: (penalty, idle_since, rank),
}


def preference_of(strategy: Strategy) -> Preference:
    """`preference` for one strategy, as a function of (rank, penalty, idle_since, answered, load)."""
    return _PREFERENCES.get(strategy, lambda rank, penalty, idle_since, answered, load: (rank,))


def preference(strategy: Strategy, rank: int, penalty: int, idle_since: float, answered: int,
               load: int) -> tuple[float, ...]:
    """Where an agent stands in the queue's order, best first, whatever the task: the strategies
    that pick one agent take the first of this order (`skills` after the smallest surplus)."""
    return preference_of(strategy)(rank, penalty, idle_since, answered, load)


def _preference(strategy: Strategy, c: Candidate) -> tuple[float, ...]:
    return preference(strategy, rank=c.rank, penalty=c.penalty, idle_since=c.idle_since, answered=c.answered,
                      load=c.load)


def ringall(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: c.rank)


def round_robin(candidates: Sequence[Candidate], last: int | None) -> Candidate:
    """The first by rank after `last` (the rank served last time), else the first of all."""
    after = [c for c in candidates if last is None or c.rank > last]
    return min(after or candidates, key=lambda c: c.rank)


def longest_idle(candidates: Sequence[Candidate]) -> Candidate:
    return min(candidates, key=lambda c: _preference("longest-idle", c))


def fewest_calls(candidates: Sequence[Candidate]) -> Candidate:
    return min(candidates, key=lambda c: _preference("fewest-calls", c))


def random_pick(candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
    return rng.choice(sorted(candidates, key=lambda c: c.rank))


def linear(candidates: Sequence[Candidate]) -> Candidate:
    return min(candidates, key=lambda c: _preference("linear", c))


def skills(candidates: Sequence[Candidate]) -> Candidate:
    return min(candidates, key=lambda c: (c.surplus, *_preference("skills", c)))


_SINGLE: dict[str, Callable[[Sequence[Candidate]], Candidate]] = {
    "longest-idle": longest_idle, "fewest-calls": fewest_calls, "linear": linear, "skills": skills,
}


def choose(strategy: Strategy, candidates: Sequence[Candidate], *, last: int | None,
           rng: random.Random) -> list[Candidate]:
    """The agents `strategy` offers the task to. `last` is the queue's round-robin position."""
    if not candidates:
        return []
    if strategy == "ringall":
        return ringall(candidates)
    if strategy == "round-robin":
        return [round_robin(candidates, last)]
    if strategy == "random":
        return [random_pick(candidates, rng)]
    return [_SINGLE[strategy](candidates)]
