"""A queued call's ACD record, read from its timeline."""

from __future__ import annotations

from typing import Any

from ivrpowers.store.cdr_queue import queue_record


def ev(type: str, at: str, **detail: Any) -> dict[str, Any]:
    return {"type": type, "at": f"2026-11-30T10:00:{at}+00:00", "node": "q", "detail": detail}


def test_a_call_offered_twice_then_answered_and_handled() -> None:
    record = queue_record([
        ev("answered", "00"), ev("queue_joined", "01", queue="sales", priority=5),
        ev("queue_ringing", "01", queue="sales", agent="ana"),
        ev("queue_offer_ended", "11", queue="sales", agent="ana", outcome="no_answer", ring=10.0),
        ev("queue_offer_ended", "14", queue="sales", agent="bo", outcome="answered", ring=3.0),
        ev("queue_answered", "14", queue="sales", agent="bo", wait=13.0),
        ev("queue_agent_done", "44", queue="sales", agent="bo", talk=30.0, caller_hung_up=False),
    ])
    assert record is not None
    assert (record["queue"], record["priority"], record["agent"]) == ("sales", 5, "bo")
    assert (record["wait"], record["talk"], record["outcome"]) == (
        13.0, 30.0, "handled")
    assert [(o["agent"], o["ring"], o["outcome"]) for o in record["offers"]] == [
        ("ana", 10.0, "no_answer"), ("bo", 3.0, "answered")]
    assert record["joined_at"].endswith("00:01+00:00") and record["ended_at"].endswith("00:44+00:00")


def test_abandoned_timeout_callback_refused_and_waiting() -> None:
    abandoned = queue_record([ev("queue_joined", "01", queue="s"), ev("queue_abandoned", "20", queue="s", wait=19.0)])
    assert abandoned is not None and (abandoned["outcome"], abandoned["wait"], abandoned["agent"]) == (
        "abandoned", 19.0, None)
    timeout = queue_record([ev("queue_joined", "01", queue="s"), ev("queue_timeout", "31", queue="s", wait=30.0)])
    assert timeout is not None and timeout["outcome"] == "timeout"
    callback = queue_record([ev("queue_joined", "01", queue="s"),
                             ev("queue_callback_requested", "09", queue="s", wait=8.0, number="600")])
    assert callback is not None and (callback["outcome"], callback["callback_number"]) == ("callback", "600")
    refused = queue_record([ev("queue_refused", "01", queue="s", reason="no_agents")])
    assert refused is not None and (refused["outcome"], refused["reason"]) == ("refused", "no_agents")
    waiting = queue_record([ev("queue_joined", "01", queue="s")])
    assert waiting is not None and waiting["outcome"] == "waiting"
    assert queue_record([ev("answered", "00"), ev("hangup", "09")]) is None


def test_a_second_queue_after_the_first_ended_is_the_one_recorded() -> None:
    record = queue_record([ev("queue_joined", "01", queue="first"), ev("queue_timeout", "31", queue="first", wait=30.0),
                           ev("queue_joined", "32", queue="second"), ev("queue_answered", "40", agent="ana", wait=8.0)])
    assert record is not None and (record["queue"], record["outcome"], record["agent"]) == ("second", "talking", "ana")
