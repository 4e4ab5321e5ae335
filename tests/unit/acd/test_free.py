"""The free agents' index picks what the strategies' definitions pick, without looking at everyone."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivrpowers.acd import CHANNELS, STRATEGIES, AgentConfig, Candidate, QueueConfig, choose
from ivrpowers.acd.free import FreeAgents
from ivrpowers.acd.model import meets
from ivrpowers.acd.records import AgentRecord

from .helpers import agent, offers, router, task

SKILLS = ("billing", "spanish", "french")


def expected(strategy: str, agents: dict[str, AgentRecord], channel: str, requirement: tuple[tuple[str, int], ...],
             declined: set[str], last: int | None, seed: int) -> list[str]:
    candidates = [
        Candidate(a.id, a.rank, a.config.queues["q"], a.idle_since, a.answered, a.exclusive + a.chats,
                  sum(a.config.skills.get(s, 0) - level for s, level in requirement))
        for a in agents.values()
        if channel in a.free and a.id not in declined and meets(a.config.skills, requirement)]
    return [c.agent for c in choose(strategy, candidates, last=last, rng=random.Random(seed))]  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_select_picks_what_choose_picks(data: st.DataObject) -> None:
    strategy = data.draw(st.sampled_from(STRATEGIES))
    channels = data.draw(st.sets(st.sampled_from(CHANNELS), min_size=1))
    pool = FreeAgents("q", strategy, channels)
    agents: dict[str, AgentRecord] = {}
    for i in range(data.draw(st.integers(0, 30))):
        config = AgentConfig(f"a{i:02}", skills=data.draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10))),
                             queues={"q": data.draw(st.integers(0, 2))})
        agents[config.id] = AgentRecord(config, rank=i * 2)
    for _ in range(data.draw(st.integers(1, 4))):
        # Agents come and go, and their standing changes (a chat taken, a task answered...).
        for a in agents.values():
            if data.draw(st.integers(0, 2)):
                continue
            a.chats = data.draw(st.integers(0, 2))
            a.idle_since = float(data.draw(st.integers(0, 3)))
            a.answered = data.draw(st.integers(0, 3))
            free = tuple(c for c in CHANNELS if data.draw(st.booleans()))
            pool.move(a, free, a.standing)
            a.free, a.indexed = free, a.standing
        channel = data.draw(st.sampled_from(sorted(channels)))
        requirement = tuple(sorted(data.draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10))).items()))
        declined = data.draw(st.sets(st.sampled_from(sorted(agents)))) if agents else set()
        last = data.draw(st.none() | st.integers(-1, 70))
        seed = data.draw(st.integers(0, 1000))
        got = pool.select(channel, requirement, declined, last, random.Random(seed), agents)
        assert got == expected(strategy, agents, channel, requirement, declined, last, seed)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_rare_skill_is_looked_up_by_level_with_the_same_choice(strategy: str) -> None:
    """40 free agents, 4 of whom speak French: the index goes through those 4 only."""
    pool = FreeAgents("q", strategy, CHANNELS)  # type: ignore[arg-type]
    agents = {}
    for i in range(40):
        skills = {"french": 3 + i % 5} if i % 10 == 3 else {"billing": 1 + i % 10}
        a = AgentRecord(AgentConfig(f"a{i:02}", skills=skills, queues={"q": i % 3}), rank=i, idle_since=float(-i % 7),
                        answered=i % 4)
        pool.move(a, ("voice", "chat"), a.standing)
        a.free, a.indexed = ("voice", "chat"), a.standing
        agents[a.id] = a
    for last in (None, 0, 13, 23, 50):
        for requirement in ((("french", 4),), (("billing", 2), ("french", 3))):
            got = pool.select("voice", requirement, {"a33"}, last, random.Random(5), agents)
            assert got == expected(strategy, agents, "voice", requirement, {"a33"}, last, 5)


def test_a_new_strategy_reorders_the_free_agents() -> None:
    r = router([QueueConfig("q", strategy="linear")],
               [agent("ana", queues={"q": 2}), agent("bob", queues={"q": 1}), agent("cy", queues={"q": 0})])
    r.set_queue(QueueConfig("q", strategy="round-robin"), 1)
    assert offers(r.arrive(task("c1"), 2)) == [("c1", "ana")]
    r.set_queue(QueueConfig("q", strategy="linear"), 3)
    assert offers(r.arrive(task("c2"), 4)) == [("c2", "cy")]
