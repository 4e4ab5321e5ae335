"""Which task goes to which agent: order in line, priorities, queues, strategies and skills."""

from __future__ import annotations

import random

import pytest

from ivrpowers.acd import AgentStateChanged, Offer, QueueConfig, Strategy

from .helpers import agent, cancels, offers, ring, router, states, task


def test_a_call_rings_a_free_agent_who_answers_then_is_free_again() -> None:
    r = router([QueueConfig("q", ring_timeout=15)], [agent("ana", "q")])
    decisions = r.arrive(task("c1", at=10), now=10)
    assert decisions == [Offer("c1", "ana", expires=25.0), AgentStateChanged("ana", "available", "reserved", None, 10)]
    assert states(r.answer("c1", "ana", now=12)) == [("ana", "reserved", "busy")]
    assert r.task("c1").status == "active" and r.agent("ana").active == ("c1",)
    assert states(r.end_task("c1", now=70)) == [("ana", "busy", "available")]
    assert r.task_ids() == []


def test_within_a_priority_first_come_first_served() -> None:
    r = router([QueueConfig("q")], [agent("ana", "q")])
    r.arrive(task("c0"), now=0)
    for i, at in enumerate([3.0, 1.0, 2.0], start=1):  # arrival times, heard in another order
        r.arrive(task(f"c{i}", at=at), now=5)
    assert r.waiting("q") == ["c2", "c3", "c1"]
    r.answer("c0", "ana", now=6)
    served = []
    for now in (10, 20, 30):
        decisions = r.end_task(r.agent("ana").active[0], now=now)
        (offered, _), = offers(decisions)
        served.append(offered)
        r.answer(offered, "ana", now=now)
    assert served == ["c2", "c3", "c1"]


def test_same_arrival_time_goes_by_the_order_the_router_heard_of_them() -> None:
    r = router([QueueConfig("q")], [agent("ana", "q")])
    r.pause("ana", "brief", 1)
    for name in ("b", "a", "c"):
        r.arrive(task(name, at=7), now=7)
    assert r.waiting("q") == ["b", "a", "c"]


def test_higher_priority_overtakes_earlier_arrivals() -> None:
    r = router([QueueConfig("q")], [agent("ana", "q")])
    r.pause("ana", "brief", 0)
    r.arrive(task("low", at=1), now=1)
    r.arrive(task("high", at=2, priority=5), now=2)
    r.arrive(task("mid", at=3, priority=1), now=3)
    assert r.waiting("q") == ["high", "mid", "low"]
    assert offers(r.unpause("ana", 4)) == [("high", "ana")]


def test_an_agent_in_several_queues_takes_the_best_task_across_them() -> None:
    queues = [QueueConfig("sales"), QueueConfig("support"), QueueConfig("vip")]
    r = router(queues, [agent("ana", queues={"sales": 0, "support": 0, "vip": 3})])
    r.pause("ana", "brief", 0)
    r.arrive(task("s1", "sales", at=5), now=5)
    r.arrive(task("t1", "support", at=2), now=5)  # waited longest
    r.arrive(task("v1", "vip", at=8, priority=1), now=8)  # but priority comes first
    assert offers(r.unpause("ana", 9)) == [("v1", "ana")]
    r.answer("v1", "ana", 9)
    assert offers(r.end_task("v1", 10)) == [("t1", "ana")]


def test_across_queues_the_penalty_breaks_a_tie() -> None:
    r = router([QueueConfig("a"), QueueConfig("b")], [agent("ana", queues={"a": 2, "b": 1})])
    r.pause("ana", "brief", 0)
    r.arrive(task("in-a", "a", at=5), now=5)
    r.arrive(task("in-b", "b", at=5), now=5)
    assert offers(r.unpause("ana", 6)) == [("in-b", "ana")]


def test_a_new_task_goes_to_a_free_agent_at_once_and_waits_when_none_is() -> None:
    r = router([QueueConfig("q", strategy="linear")], [agent("ana", "q"), agent("bob", "q")])
    assert offers(r.arrive(task("c1"), 0)) == [("c1", "ana")]
    assert offers(r.arrive(task("c2"), 0)) == [("c2", "bob")]
    assert offers(r.arrive(task("c3"), 0)) == []
    assert r.waiting("q") == ["c3"]


def test_ringall_rings_every_free_agent_and_the_first_answer_wins() -> None:
    r = router([QueueConfig("q", strategy="ringall", rna_pause=False), QueueConfig("other")],
               [agent("ana", "q"), agent("bob", "q"), agent("cy", "q"), agent("dee", "other")])
    r.pause("cy", "lunch", 0)
    assert offers(r.arrive(task("c1"), 1)) == [("c1", "ana"), ("c1", "bob")]
    decisions = r.answer("c1", "bob", 3)
    assert cancels(decisions) == [("c1", "ana", "answered_elsewhere")]
    assert r.agent("ana").state == "available" and r.agent("bob").state == "busy"


def test_ringall_rings_everyone_again_when_nobody_answers() -> None:
    r = router([QueueConfig("q", strategy="ringall", ring_timeout=10, rna_pause=False)],
               [agent("ana", "q"), agent("bob", "q")])
    r.arrive(task("c1"), 0)
    decisions = r.tick(10)
    assert cancels(decisions) == [("c1", "ana", "ring_no_answer"), ("c1", "bob", "ring_no_answer")]
    assert offers(decisions) == [("c1", "ana"), ("c1", "bob")]


def test_round_robin_goes_around_the_agents() -> None:
    r = router([QueueConfig("q", strategy="round-robin")], [agent(a, "q") for a in ("ana", "bob", "cy")])
    served = []
    for i in range(5):
        (_, who), = offers(r.arrive(task(f"c{i}"), i))
        served.append(who)
        r.answer(f"c{i}", who, i)
        r.end_task(f"c{i}", i + 0.5)
    assert served == ["ana", "bob", "cy", "ana", "bob"]


def test_longest_idle_picks_who_finished_first_and_spreads_chats() -> None:
    q = QueueConfig("q", strategy="longest-idle", channels=frozenset({"voice", "chat"}))
    r = router([q], [agent("ana", "q"), agent("bob", "q"), agent("cy", "q")])
    for i, who in enumerate(("ana", "bob", "cy")):  # each takes a call; they finish cy, ana, bob
        r.arrive(task(f"c{i}"), 1)
        r.answer(f"c{i}", who, 1)
    for i, now in ((2, 5), (0, 6), (1, 7)):
        r.end_task(f"c{i}", now)
    assert offers(r.arrive(task("n1"), 8)) == [("n1", "cy")]
    # Chats: one already chatting, idle for longer, loses to one holding nothing.
    assert offers(r.arrive(task("m1", channel="chat"), 9)) == [("m1", "ana")]
    assert offers(r.arrive(task("m2", channel="chat"), 9)) == [("m2", "bob")]
    assert offers(r.arrive(task("m3", channel="chat"), 9)) == [("m3", "ana")]


def test_fewest_calls_counts_answers_since_login() -> None:
    r = router([QueueConfig("q", strategy="fewest-calls")], [agent("ana", "q"), agent("bob", "q")])
    for i in range(2):  # ana answers two
        r.pause("bob", "brief", 0)
        r.arrive(task(f"c{i}"), 1)
        r.answer(f"c{i}", "ana", 1)
        r.end_task(f"c{i}", 2)
        r.unpause("bob", 2)
    r.pause("ana", "brief", 3)  # bob answers one
    r.arrive(task("c2"), 3)
    r.answer("c2", "bob", 3)
    r.end_task("c2", 4)
    r.unpause("ana", 4)
    assert offers(r.arrive(task("c3"), 5)) == [("c3", "bob")]
    r.logout("ana", 6)
    r.login("ana", 7)  # the count starts again
    r.end_task("c3", 8)  # it was still ringing bob
    assert offers(r.arrive(task("c4"), 9)) == [("c4", "ana")]


def test_random_is_the_injected_generators() -> None:
    def picks(seed: int) -> list[str]:
        r = router([QueueConfig("q", strategy="random")], [agent(f"a{i}", "q") for i in range(8)],
                   rng=random.Random(seed))
        return [who for i in range(6) for _, who in offers(r.arrive(task(f"c{i}"), i))]

    assert picks(1) == picks(1)
    assert len({tuple(picks(s)) for s in range(5)}) > 1


def test_linear_goes_by_penalty_then_configuration_order() -> None:
    r = router([QueueConfig("q", strategy="linear")],
               [agent("ana", queues={"q": 1}), agent("bob", queues={"q": 0}), agent("cy", queues={"q": 0})])
    assert offers(r.arrive(task("c1"), 0)) == [("c1", "bob")]
    assert offers(r.arrive(task("c2"), 0)) == [("c2", "cy")]
    assert offers(r.arrive(task("c3"), 0)) == [("c3", "ana")]


def test_skills_strategy_offers_the_closest_match() -> None:
    r = router([QueueConfig("q", strategy="skills")],
               [agent("expert", "q", skills={"billing": 10}), agent("junior", "q", skills={"billing": 5}),
                agent("none", "q")])
    assert offers(r.arrive(task("c1", skills={"billing": 4}), 0)) == [("c1", "junior")]
    assert offers(r.arrive(task("c2", skills={"billing": 4}), 0)) == [("c2", "expert")]
    assert offers(r.arrive(task("c3", skills={"billing": 4}), 0)) == []  # "none" lacks billing


def test_required_skills_are_honoured_by_every_strategy() -> None:
    r = router([QueueConfig("q", strategy="round-robin")],
               [agent("ana", "q", skills={"spanish": 3}), agent("bob", "q", skills={"spanish": 8})])
    assert offers(r.arrive(task("c1", skills={"spanish": 5}), 0)) == [("c1", "bob")]
    assert offers(r.arrive(task("c2", skills={"spanish": 5}), 0)) == []
    # A task it can take, behind one it cannot: ana skips to it.
    assert offers(r.arrive(task("c3"), 1)) == [("c3", "ana")]


def test_skill_requirements_relax_with_the_wait() -> None:
    q = QueueConfig("q", strategy="skills", relaxation=((10, 2), (30, 3)))
    r = router([q], [agent("ana", "q", skills={"billing": 4}), agent("bob", "q")])
    assert offers(r.arrive(task("c1", at=0, skills={"billing": 6, "spanish": 3}), 0)) == []
    assert r.next_deadline() == 10
    assert offers(r.tick(10)) == []  # billing 4 and spanish 1 now: ana has no spanish
    assert r.next_deadline() == 30
    assert offers(r.tick(30)) == [("c1", "ana")]  # billing 1, spanish gone: ana (bob has no billing)
    assert r.next_deadline() == 30 + q.ring_timeout


def test_a_task_arriving_with_an_old_arrival_time_is_relaxed_already() -> None:
    q = QueueConfig("q", relaxation=((10, 5),))
    r = router([q], [agent("ana", "q")])
    assert offers(r.arrive(task("c1", at=-20, skills={"billing": 5}), 0)) == [("c1", "ana")]


@pytest.mark.parametrize("strategy", ["ringall", "round-robin", "longest-idle", "fewest-calls", "random", "linear",
                                      "skills"])
def test_every_strategy_routes_to_a_lone_agent(strategy: Strategy) -> None:
    r = router([QueueConfig("q", strategy=strategy)], [agent("ana", "q")])
    assert offers(r.arrive(task("c1"), 0)) == [("c1", "ana")]
    assert ring(r, "c1") == ["ana"]
