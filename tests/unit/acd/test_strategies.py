"""Each strategy on its own: who it picks among the free agents able to take a task."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ivrpowers.acd import STRATEGIES, Candidate, Strategy, choose
from ivrpowers.acd.strategies import fewest_calls, linear, longest_idle, random_pick, ringall, round_robin, skills


def c(agent: str, rank: int, **kw: Any) -> Candidate:
    return Candidate(agent, rank, **kw)


def test_ringall_rings_everyone_by_rank() -> None:
    assert [x.agent for x in ringall([c("b", 2), c("a", 1), c("c", 3)])] == ["a", "b", "c"]


def test_round_robin_goes_on_after_the_last_served_and_wraps_around() -> None:
    pool = [c("c", 3), c("a", 1), c("b", 2)]
    assert round_robin(pool, None).agent == "a"
    assert round_robin(pool, 1).agent == "b"
    assert round_robin(pool, 2).agent == "c"
    assert round_robin(pool, 3).agent == "a"
    # The one after the last served may be busy (not a candidate): the next free one gets it.
    assert round_robin([c("a", 1), c("c", 3)], 1).agent == "c"
    assert round_robin([c("a", 1)], 5).agent == "a"


def test_longest_idle_prefers_fewer_tasks_held_then_the_earliest_idle() -> None:
    assert longest_idle([c("a", 1, idle_since=50), c("b", 2, idle_since=10), c("c", 3, idle_since=30)]).agent == "b"
    # An agent already on a chat loses to one holding nothing, however long it has been idle.
    assert longest_idle([c("a", 1, idle_since=0, load=1), c("b", 2, idle_since=90)]).agent == "b"
    assert longest_idle([c("b", 2, idle_since=5), c("a", 1, idle_since=5)]).agent == "a"  # a tie: rank


def test_fewest_calls_counts_answered_tasks_then_idle_time() -> None:
    assert fewest_calls([c("a", 1, answered=3), c("b", 2, answered=1), c("c", 3, answered=2)]).agent == "b"
    assert fewest_calls([c("a", 1, answered=1, idle_since=20), c("b", 2, answered=1, idle_since=10)]).agent == "b"


def test_linear_is_lowest_penalty_then_configuration_order() -> None:
    assert linear([c("a", 1, penalty=2), c("b", 2, penalty=0), c("c", 3, penalty=0)]).agent == "b"
    assert linear([c("c", 3), c("a", 1, idle_since=-99), c("b", 2)]).agent == "a"


def test_skills_picks_the_closest_match_then_penalty_then_idle_time() -> None:
    # Required billing 5: "a" has 9 (surplus 4), "b" has 6 (surplus 1): b, keeping a for harder calls.
    assert skills([c("a", 1, surplus=4), c("b", 2, surplus=1)]).agent == "b"
    assert skills([c("a", 1, surplus=1, penalty=1), c("b", 2, surplus=1, penalty=0)]).agent == "b"
    assert skills([c("a", 1, surplus=1, idle_since=9), c("b", 2, surplus=1, idle_since=3)]).agent == "b"


def test_random_uses_the_injected_generator_whatever_the_candidates_order() -> None:
    pool = [c(f"a{i}", i) for i in range(10)]
    picks = [random_pick(pool, random.Random(7)).agent for _ in range(3)]
    assert len(set(picks)) == 1  # the same seed, the same pick
    assert random_pick(list(reversed(pool)), random.Random(7)).agent == picks[0]
    spread = {random_pick(pool, rng).agent for rng in [random.Random(s) for s in range(200)]}
    assert spread == {x.agent for x in pool}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_choose_gives_one_agent_but_for_ringall_and_none_from_nobody(strategy: Strategy) -> None:
    pool = [c("a", 1), c("b", 2), c("c", 3)]
    chosen = choose(strategy, pool, last=None, rng=random.Random(1))
    assert len(chosen) == (3 if strategy == "ringall" else 1)
    assert set(chosen) <= set(pool)
    assert choose(strategy, [], last=None, rng=random.Random(1)) == []
