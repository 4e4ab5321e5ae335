"""Callers waiting in a queue outlive the controller, on the real Asterisk: SIGKILLed with three
callers waiting for a paused agent and started again, it adopts the calls (still up, the hold
music still playing), keeps their order, and when the agent unpauses, serves them in that order.
A caller talking to an agent at the crash goes on talking, and on at `next` when the agent is done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.db import Database

from .acd_helpers import Rig, events, nodes, saved_waiting, when
from .conftest import AsteriskUnderTest, ControllerUnderTest, poll
from .sipp import ExpectHangup
from .test_transfer import rtp_counts

# SQLite is enough here: test_queue.py runs the ACD on PostgreSQL too.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("controller", ["sqlite"], indirect=True)]

CALLERS = ("7381", "7382", "7383")  # in the order they join


@pytest.fixture
async def rig(asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with Rig.open(asterisk, controller, tmp_path) as opened:
        yield opened


async def test_callers_waiting_through_a_controller_crash_keep_their_order(rig: Rig) -> None:
    phone = await rig.phone("qphone-a", talk=1.0)
    rig.login("restart")
    rig.api("POST", "/api/agents/restart/pause", {"reason": "meeting"})
    calls, ids, channels = [], [], []
    for caller in CALLERS:  # one after the other: each joins before the next calls
        calls.append(rig.call(caller, ExpectHangup(80), timeout=100))
        joined = await rig.joined(caller)
        ids.append(joined["id"])
        channels.append(joined["channel_id"])
    await rig.wait_waiting("acd-restart", 3)

    # Killed once the router's state with all three is saved (at most a second after a change).
    async def saved() -> bool | None:
        return True if await saved_waiting(rig.controller, "acd-restart") == ids else None

    assert await poll(saved, timeout=10), await saved_waiting(rig.controller, "acd-restart")
    before = [(await asyncio.to_thread(rtp_counts, rig.asterisk, channel))[1] for channel in channels]
    await asyncio.to_thread(rig.controller.crash_and_restart)

    # The new controller adopts each call; its flow rejoins the queue, where it was.
    for caller in CALLERS:
        await rig.controller.wait_event(caller, "adopted")

    async def rejoined() -> bool | None:
        cdrs = [await rig.controller.wait_event(caller, "queue_joined") for caller in CALLERS]
        resumed = [[e["detail"]["resumed"] for e in events(cdr, "queue_joined")] for cdr in cdrs]
        return True if resumed == [[False, True]] * 3 else None

    assert await poll(rejoined, timeout=15), "the adopted calls did not rejoin the queue"
    assert not [call for call in calls if call.done()], "a caller's call ended"
    now = rig.now("acd-restart")
    assert now["waiting"] == 3 and now["agents"] == {"paused": 1}, now
    assert await saved_waiting(rig.controller, "acd-restart") == ids

    # The hold music still reaches every caller: Asterisk's packets to them count on from before the kill.
    async def music() -> bool | None:
        after = [(await asyncio.to_thread(rtp_counts, rig.asterisk, channel))[1] for channel in channels]
        return True if all(a >= b + 50 for a, b in zip(after, before, strict=True)) else None

    assert await poll(music, timeout=10), "no hold music to the callers after the restart"

    # Unpaused, the agent is offered them in the order they first joined, each once.
    rig.api("POST", "/api/agents/restart/unpause")
    for call in calls:
        await rig.finished(call)
    cdrs = [await rig.controller.wait_cdr(caller) for caller in CALLERS]
    for cdr in cdrs:
        assert [e["detail"]["agent"] for e in events(cdr, "queue_ringing")] == ["restart"], cdr["events"]
        assert nodes(cdr)[-2:] == ["restart", "served"], nodes(cdr)
        assert not events(cdr, "queue_abandoned")
    answered = [when(events(cdr, "queue_answered")[0]) for cdr in cdrs]
    assert answered == sorted(answered), answered
    assert (phone.received("INVITE"), phone.sent("BYE")) == (3, 3), phone.log()[-3000:]


async def test_a_conversation_with_an_agent_outlives_a_controller_crash(rig: Rig) -> None:
    phone = await rig.phone("qphone-a", talk=15.0)  # hangs up 15 s after answering
    rig.login("restart")
    call = rig.call("7384", ExpectHangup(60), timeout=80)
    answered = await rig.controller.wait_event("7384", "queue_answered")

    async def saved_talking() -> bool | None:  # the router's saved state has the conversation
        return True if await saved_active(rig.controller, "acd-restart") == [answered["id"]] else None

    assert await poll(saved_talking, timeout=10)
    await asyncio.to_thread(rig.controller.crash_and_restart)
    await rig.controller.wait_event("7384", "adopted")
    assert not call.done(), "the caller's call ended with the controller"
    assert rig.state("restart")["state"] == "busy"

    # The agent hangs up when they are done: the caller's flow goes on at `next`, the agent is free.
    await rig.finished(call)
    cdr = await rig.controller.wait_cdr("7384")
    assert nodes(cdr)[-2:] == ["restart", "served"], nodes(cdr)
    done = events(cdr, "queue_agent_done")
    assert len(done) == 1 and done[0]["detail"]["caller_hung_up"] is False, cdr["events"]
    assert not events(cdr, "queue_abandoned") and len(events(cdr, "queue_ringing")) == 1
    await rig.wait_state("restart", "available")
    assert (phone.received("INVITE"), phone.sent("BYE")) == (1, 1), phone.log()[-3000:]


async def saved_active(controller: ControllerUnderTest, queue: str) -> list[str]:
    """The calls talking to an agent in `queue`, in the router state the controller last saved."""
    db = Database(controller.db_url)
    try:
        saved = await AcdStateRepository(db).load()
    finally:
        await db.close()
    return [t["task"]["id"] for t in (saved or {}).get("tasks", [])
            if t["task"]["queue"] == queue and t["status"] == "active"]
