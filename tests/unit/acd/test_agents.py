"""Agents: their states, pauses, wrap-up, ring-no-answer, capacity per channel and reachability."""

from __future__ import annotations

from ivrpowers.acd import AgentConfig, AgentStateChanged, Channel, QueueConfig, Router

from .helpers import agent, cancels, offers, ring, router, states, task

VOICE_CHAT: frozenset[Channel] = frozenset({"voice", "video", "chat"})
CHAT: frozenset[Channel] = frozenset({"chat"})


def test_each_state_change_is_reported_once_with_its_time() -> None:
    r = router([QueueConfig("q", wrapup_seconds=30)], [agent("ana", "q")], login=False)
    log = r.login("ana", 1) + r.arrive(task("c1"), 2) + r.answer("c1", "ana", 3) + r.end_task("c1", 4)
    log += r.tick(34) + r.pause("ana", "lunch", 40) + r.pause("ana", "lunch", 41) + r.pause("ana", "meeting", 42)
    log += r.unpause("ana", 50) + r.unpause("ana", 51) + r.logout("ana", 60) + r.logout("ana", 61)
    assert [d for d in log if isinstance(d, AgentStateChanged)] == [
        AgentStateChanged("ana", "logged_out", "available", None, 1),
        AgentStateChanged("ana", "available", "reserved", None, 2),
        AgentStateChanged("ana", "reserved", "busy", None, 3),
        AgentStateChanged("ana", "busy", "wrap_up", None, 4),
        AgentStateChanged("ana", "wrap_up", "available", None, 34),
        AgentStateChanged("ana", "available", "paused", "lunch", 40),
        AgentStateChanged("ana", "paused", "paused", "meeting", 42),
        AgentStateChanged("ana", "paused", "available", None, 50),
        AgentStateChanged("ana", "available", "logged_out", None, 60),
    ]


def test_wrap_up_holds_every_offer_until_it_ends() -> None:
    r = router([QueueConfig("q", wrapup_seconds=20, channels=VOICE_CHAT)], [agent("ana", "q")])
    r.arrive(task("c1"), 0)
    r.answer("c1", "ana", 1)
    r.end_task("c1", 10)
    assert r.agent("ana").wrap_until == 30
    assert offers(r.arrive(task("c2"), 11) + r.arrive(task("m1", channel="chat"), 11)) == []
    assert r.next_deadline() == 30
    assert offers(r.tick(29.9)) == []
    decisions = r.tick(30)
    assert states(decisions)[0] == ("ana", "wrap_up", "available")
    assert offers(decisions) == [("c2", "ana")]


def test_the_agent_may_end_its_wrap_up_early() -> None:
    r = router([QueueConfig("q", wrapup_seconds=60)], [agent("ana", "q")])
    r.arrive(task("c1"), 0)
    r.answer("c1", "ana", 1)
    r.end_task("c1", 10)
    r.arrive(task("c2"), 11)
    assert offers(r.end_wrap_up("ana", 15)) == [("c2", "ana")]
    assert r.next_deadline() == 15 + QueueConfig("q").ring_timeout  # the wrap-up's deadline is gone


def test_no_wrap_up_means_straight_back_to_available() -> None:
    r = router([QueueConfig("q", wrapup_seconds=0)], [agent("ana", "q")])
    r.arrive(task("c1"), 0)
    r.answer("c1", "ana", 1)
    r.arrive(task("c2"), 2)
    decisions = r.end_task("c1", 10)
    assert states(decisions) == [("ana", "busy", "available"), ("ana", "available", "reserved")]
    assert offers(decisions) == [("c2", "ana")]


def test_ring_no_answer_pauses_the_agent_and_the_task_keeps_its_place() -> None:
    r = router([QueueConfig("q", ring_timeout=15, strategy="linear")], [agent("ana", "q"), agent("bob", "q")])
    r.pause("bob", "brief", 0)
    r.arrive(task("c1", at=0), 0)
    r.arrive(task("c2", at=1), 1)
    assert r.next_deadline() == 15
    decisions = r.tick(15)
    assert cancels(decisions) == [("c1", "ana", "ring_no_answer")]
    assert ("ana", "reserved", "paused") in states(decisions)
    assert r.agent("ana").paused == "ring_no_answer"
    assert r.waiting("q") == ["c1", "c2"]  # c1 first still
    assert offers(r.unpause("bob", 16)) == [("c1", "bob")]


def test_without_rna_pause_the_agent_stays_available_and_is_rung_again() -> None:
    r = router([QueueConfig("q", ring_timeout=15, rna_pause=False)], [agent("ana", "q")])
    r.arrive(task("c1"), 0)
    decisions = r.tick(15)
    assert cancels(decisions) == [("c1", "ana", "ring_no_answer")]
    assert offers(decisions) == [("c1", "ana")]
    assert r.agent("ana").paused is None


def test_a_ring_out_the_runtime_reports_needs_no_cancel() -> None:
    r = router([QueueConfig("q")], [agent("ana", "q"), agent("bob", "q")])
    r.arrive(task("c1"), 0)
    first = ring(r, "c1")[0]
    decisions = r.offer_timed_out("c1", first, 5)
    assert cancels(decisions) == []
    assert r.agent(first).state == "paused" and r.agent(first).reason == "ring_no_answer"
    assert ring(r, "c1") == [a for a in ("ana", "bob") if a != first]


def test_a_declined_task_goes_to_the_next_agent_and_never_back() -> None:
    r = router([QueueConfig("q", strategy="linear")], [agent("ana", "q"), agent("bob", "q")])
    r.pause("bob", "brief", 0)
    r.arrive(task("c1"), 0)
    assert offers(r.decline("c1", "ana", 1)) == []  # nobody else free: it waits, ana is not paused
    assert r.agent("ana").state == "available" and r.waiting("q") == ["c1"]
    assert offers(r.arrive(task("c2"), 2)) == [("c2", "ana")]  # ana takes other tasks
    assert offers(r.unpause("bob", 3)) == [("c1", "bob")]
    r.decline("c1", "bob", 4)
    assert offers(r.end_task("c2", 5)) == []  # ana is free again, but declined it
    assert r.waiting("q") == ["c1"] and r.task("c1").declined == ("ana", "bob")


def test_pausing_keeps_what_rings_and_what_is_answered() -> None:
    r = router([QueueConfig("q", channels=VOICE_CHAT)], [agent("ana", "q")])
    r.arrive(task("m1", channel="chat"), 0)
    r.answer("m1", "ana", 1)
    r.arrive(task("m2", channel="chat"), 2)
    assert r.agent("ana").state == "busy"  # a chat in hand, another ringing: busy
    assert states(r.pause("ana", "lunch", 3)) == []  # still busy: work shows first
    assert offers(r.arrive(task("m3", channel="chat"), 4)) == []
    r.answer("m2", "ana", 5)
    r.end_task("m1", 6)
    assert states(r.end_task("m2", 7)) == [("ana", "busy", "paused")]
    assert offers(r.unpause("ana", 8)) == [("m3", "ana")]


def test_chats_stack_up_to_capacity_and_exclude_calls() -> None:
    r = router([QueueConfig("q", channels=VOICE_CHAT)], [agent("ana", "q", capacity={"chat": 2})])
    assert offers(r.arrive(task("m1", channel="chat"), 0)) == [("m1", "ana")]
    assert offers(r.arrive(task("m2", channel="chat"), 0)) == [("m2", "ana")]
    assert offers(r.arrive(task("m3", channel="chat"), 0)) == []
    r.answer("m1", "ana", 1)
    r.answer("m2", "ana", 1)
    r.end_task("m1", 2)
    assert offers(r.arrive(task("c1"), 3)) == []  # chatting: no call
    r.end_task("m2", 4)  # m3 waited first: ana takes it, still no call
    assert r.agent("ana").offers == ("m3",) and r.waiting("q") == ["c1"]
    r.end_task("m3", 5)
    assert ring(r, "c1") == ["ana"]


def test_a_call_excludes_everything_else() -> None:
    r = router([QueueConfig("q", channels=VOICE_CHAT)], [agent("ana", "q")])
    r.arrive(task("v1", channel="video"), 0)
    assert offers(r.arrive(task("m1", channel="chat"), 1) + r.arrive(task("c1"), 1)) == []
    r.answer("v1", "ana", 2)
    r.end_task("v1", 3)
    assert r.agent("ana").offers == ("m1",)  # m1 was first in line


def test_without_rna_pause_a_caller_rings_the_others_before_the_agent_who_let_it_ring_out() -> None:
    r = router([QueueConfig("q", strategy="linear", rna_pause=False, ring_timeout=10)],
               [agent("ana", "q"), agent("bob", "q"), agent("cy", "q")])
    assert offers(r.arrive(task("c1"), 0)) == [("c1", "ana")]
    assert offers(r.tick(10)) == [("c1", "bob")]  # not ana again, though linear puts her first
    assert r.agent("ana").state == "available"  # not paused
    assert offers(r.offer_timed_out("c1", "bob", 15)) == [("c1", "cy")]
    assert offers(r.tick(25)) == [("c1", "ana")]  # everyone has rung: a new round
    assert offers(r.arrive(task("c2"), 26)) == [("c2", "bob")]  # others' rounds are their own
    assert r.task("c1").passed == ()


def test_a_late_tick_decides_as_ticks_on_time_would_a_new_round_before_a_relaxation() -> None:
    # Only ana meets billing 1 when her offer rings out at 5: a new round rings her again. From 8 bob
    # could take the chat (one level less), but it is ringing ana by then: a tick at 10 does the same.
    def start() -> Router:
        r = router([QueueConfig("q", strategy="fewest-calls", channels=CHAT, ring_timeout=5, rna_pause=False,
                                relaxation=((8, 1),))],
                   [agent("ana", "q", skills={"billing": 1}), agent("bob", "q")])
        assert offers(r.arrive(task("m1", channel="chat", skills={"billing": 1}), 0)) == [("m1", "ana")]
        return r

    on_time = start()
    assert offers(on_time.tick(5) + on_time.tick(8)) == [("m1", "ana")]
    late = start()
    assert offers(late.tick(10)) == [("m1", "ana")]  # stamped 10: it rings until 15
    assert late.task("m1").stage == on_time.task("m1").stage == 1
    assert offers(late.tick(15)) == [("m1", "bob")]  # ana has rung again: bob, whom the relaxation lets in


def test_a_blended_agent_takes_chats_beside_a_call_and_a_call_beside_chats() -> None:
    r = router([QueueConfig("q", channels=VOICE_CHAT)], [agent("ana", "q", capacity={"chat": 1}, blended=True)])
    assert offers(r.arrive(task("c1"), 0)) == [("c1", "ana")]
    r.answer("c1", "ana", 1)
    assert offers(r.arrive(task("m1", channel="chat"), 2)) == [("m1", "ana")]  # beside the call
    assert offers(r.arrive(task("m2", channel="chat"), 2) + r.arrive(task("c2"), 2)) == []  # chat capacity 1; one call
    # No wrap-up here: a call beside the chat it still holds; m2 waits for chat room.
    assert offers(r.end_task("c1", 3)) == [("c2", "ana")]
    r.answer("m1", "ana", 15)
    assert offers(r.end_task("m1", 16)) == [("m2", "ana")]


def test_capacity_zero_means_never_that_channel() -> None:
    r = router([QueueConfig("q", channels=VOICE_CHAT)], [agent("ana", "q", capacity={"voice": 0, "chat": 0})])
    assert offers(r.arrive(task("c1"), 0) + r.arrive(task("m1", channel="chat"), 0)) == []
    assert offers(r.arrive(task("v1", channel="video"), 0)) == [("v1", "ana")]


def test_an_unreachable_agent_gets_chats_only() -> None:
    r = router([QueueConfig("q", channels=VOICE_CHAT, strategy="linear")], [agent("ana", "q"), agent("bob", "q")])
    r.pause("bob", "brief", 0)
    r.arrive(task("c1"), 0)
    decisions = r.set_reachable("ana", False, 1)
    assert cancels(decisions) == [("c1", "ana", "agent_unreachable")]
    assert offers(r.arrive(task("m1", channel="chat"), 2)) == [("m1", "ana")]
    assert offers(r.unpause("bob", 3)) == [("c1", "bob")]
    r.end_task("m1", 4)
    r.arrive(task("c2"), 5)
    assert offers(r.set_reachable("ana", True, 6)) == [("c2", "ana")]


def test_an_agent_that_can_be_offered_nothing_is_unreachable_not_available() -> None:
    r = router([QueueConfig("q", channels=VOICE_CHAT)],
               [agent("ana", "q", capacity={"chat": 0}), agent("bob", "q")])  # fmt: skip
    assert states(r.set_reachable("ana", False, 1)) == [("ana", "available", "unreachable")]
    assert states(r.set_reachable("bob", False, 1)) == []  # still takes chats: available for them
    r.pause("ana", "lunch", 2)
    assert r.agent("ana").state == "paused"  # what the agent chose says more than the phone
    r.unpause("ana", 3)
    assert states(r.set_reachable("ana", True, 4)) == [("ana", "unreachable", "available")]


def test_logging_out_withdraws_offers_and_keeps_answered_tasks_without_wrap_up() -> None:
    r = router([QueueConfig("q", channels=VOICE_CHAT, wrapup_seconds=30, strategy="linear")],
               [agent("ana", "q"), agent("bob", "q")])
    r.pause("bob", "brief", 0)
    r.arrive(task("m1", channel="chat"), 0)
    r.answer("m1", "ana", 1)
    r.arrive(task("m2", channel="chat"), 2)
    decisions = r.logout("ana", 3)
    assert cancels(decisions) == [("m2", "ana", "agent_logged_out")]
    assert states(decisions) == [("ana", "busy", "logged_out")]
    assert r.agent("ana").active == ("m1",) and r.waiting("q") == ["m2"]
    assert states(r.end_task("m1", 4)) == [] and r.agent("ana").wrap_until is None
    assert offers(r.unpause("bob", 5)) == [("m2", "bob")]


def test_changing_an_agent_reindexes_it_even_logged_in() -> None:
    r = router([QueueConfig("a"), QueueConfig("b", join_empty=True)], [agent("ana", "a")])
    r.arrive(task("c1", "b", skills={"billing": 5}), 0)
    assert offers(r.set_agent(AgentConfig("ana", queues={"a": 0, "b": 0}), 1)) == []  # no billing
    assert offers(r.set_agent(AgentConfig("ana", skills={"billing": 5}, queues={"b": 0}), 2)) == [("c1", "ana")]
    r.answer("c1", "ana", 3)
    assert offers(r.arrive(task("c2", "a"), 4)) == []  # ana left "a"


def test_idempotent_agent_events_change_nothing() -> None:
    r = router([QueueConfig("q", wrapup_seconds=5)], [agent("ana", "q")])
    assert r.login("ana", 1) == [] and r.unpause("ana", 1) == [] and r.end_wrap_up("ana", 1) == []
    assert r.set_reachable("ana", True, 1) == []
    r.logout("ana", 2)
    assert r.logout("ana", 3) == []


def test_a_task_nobody_logged_in_can_take_is_turned_away_like_one_in_an_empty_queue() -> None:
    r = router([QueueConfig("q", channels=VOICE_CHAT)],
               [agent("phones", "q", capacity={"chat": 0}), agent("typist", "q", capacity={"voice": 0, "video": 0})],
               login=False)
    r.login("phones", 0)
    assert [type(d).__name__ for d in r.arrive(task("m1", channel="chat"), 1)] == ["NoAgents"]
    assert offers(r.arrive(task("c1"), 1)) == [("c1", "phones")]
    r.login("typist", 2)
    r.pause("typist", "brief", 2)
    assert r.arrive(task("m2", channel="chat"), 3) == []  # waits: a member who takes chats is logged in
    # The only one who took chats stops taking them: the chat waiting leaves, the call stays.
    decisions = r.set_agent(AgentConfig("typist", queues={"q": 0}, capacity={"voice": 1, "chat": 0}), 4)
    assert [(type(d).__name__, getattr(d, "task", None)) for d in decisions if type(d).__name__ == "NoAgents"] == [
        ("NoAgents", "m2")]
    assert r.task("c1").status == "ringing"
