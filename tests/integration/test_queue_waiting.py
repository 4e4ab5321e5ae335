"""Callers who never reach an agent, on the real Asterisk: one who hangs up while waiting is an
abandoned call and leaves the queue; one who waits past `max_wait` (the queue node's, or the
queue's own) goes on in the flow at `on_timeout`. The queues keep callers with nobody logged in
(`no_agents: wait`), so nobody answers."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .acd_helpers import Rig, events, nodes
from .conftest import AsteriskUnderTest, ControllerUnderTest, poll
from .sipp import ExpectHangup, Hangup, Pause
from .test_transfer import rtp_counts

# SQLite is enough here: test_queue.py runs the ACD on PostgreSQL too.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("controller", ["sqlite"], indirect=True)]


@pytest.fixture
async def rig(asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with Rig.open(asterisk, controller, tmp_path) as opened:
        yield opened


async def test_a_caller_who_hangs_up_while_waiting_is_abandoned_and_leaves_the_queue(rig: Rig) -> None:
    # The caller hangs up 4 s after the answer: the test sees it waiting in the queue first.
    call = rig.call("7341", Pause(4), Hangup())
    await rig.joined("7341")
    waiting = await rig.wait_waiting("acd-abandon", 1)
    assert waiting["longest_wait"] < 4, waiting
    await rig.finished(call)
    cdr = await rig.controller.wait_cdr("7341")
    abandoned = events(cdr, "queue_abandoned")
    assert len(abandoned) == 1 and abandoned[0]["node"] == "abandon", cdr["events"]
    assert 2.5 < abandoned[0]["detail"]["wait"] < 4.5, abandoned
    assert cdr["disposition"] == "caller_hangup"
    assert nodes(cdr) == ["answer", "pick", "abandon"]
    assert events(cdr, "hangup")[0]["detail"]["by"] == "caller"
    assert rig.now("acd-abandon")["waiting"] == 0


async def test_the_queue_nodes_max_wait_sends_the_caller_to_on_timeout(rig: Rig) -> None:
    # flow-max-wait: max_wait 2 on the node; its queue (acd-hold) has none.
    await rig.finished(rig.call("7351", ExpectHangup(20)))
    cdr = await rig.controller.wait_cdr("7351")
    assert nodes(cdr) == ["answer", "pick", "flow-max-wait", "timed-out"], cdr["events"]
    timeout = events(cdr, "queue_timeout")
    assert [e["detail"]["by"] for e in timeout] == ["flow"], timeout
    assert 1.9 <= timeout[0]["detail"]["wait"] < 3.0, timeout
    assert not events(cdr, "queue_abandoned")
    assert cdr["disposition"] == "completed" and events(cdr, "hangup")[0]["detail"]["by"] == "flow"
    assert rig.now("acd-hold")["waiting"] == 0


async def test_the_queues_own_max_wait_sends_the_caller_to_on_timeout(rig: Rig) -> None:
    # queue-max-wait: no max_wait on the node; its queue (acd-max-wait) has max_wait 2.
    await rig.finished(rig.call("7361", ExpectHangup(20)))
    cdr = await rig.controller.wait_cdr("7361")
    assert nodes(cdr) == ["answer", "pick", "queue-max-wait", "timed-out"], cdr["events"]
    timeout = events(cdr, "queue_timeout")
    assert [e["detail"]["by"] for e in timeout] == ["queue"], timeout
    assert 1.9 <= timeout[0]["detail"]["wait"] < 3.0, timeout
    assert cdr["disposition"] == "completed" and events(cdr, "hangup")[0]["detail"]["by"] == "flow"
    assert rig.now("acd-max-wait")["waiting"] == 0


async def test_a_caller_who_hangs_up_while_an_agent_rings_stops_the_ringing(rig: Rig) -> None:
    # acd-ring-abandon: ring_timeout 20 s; the phone never answers; the caller hangs up after 4 s.
    phone = await rig.phone("qphone-a", talk=None)
    rig.login("ring-abandon")
    call = rig.call("7391", Pause(4), Hangup())
    await rig.controller.wait_event("7391", "queue_ringing")
    await rig.wait_phone(phone, "INVITE")
    assert rig.state("ring-abandon")["state"] == "reserved"
    await rig.finished(call)
    cdr = await rig.controller.wait_cdr("7391")
    abandoned = events(cdr, "queue_abandoned")
    assert len(abandoned) == 1 and abandoned[0]["detail"]["wait"] < 4.5, cdr["events"]
    assert cdr["disposition"] == "caller_hangup"
    # The phone stops ringing then (a CANCEL), not at the offer's ring timeout 16 s later, and the
    # agent is free again: not paused, as when an agent lets an offer ring out.
    await rig.wait_phone(phone, "CANCEL", timeout=5)
    state = await rig.wait_state("ring-abandon", "available", timeout=5)
    assert state["reason"] is None and state["offers"] == [], state
    assert rig.now("acd-ring-abandon")["waiting"] == 0


async def test_a_queue_can_hold_callers_with_an_announcement_played_over_and_over(rig: Rig) -> None:
    call = rig.call("7411", Pause(6), Hangup())
    joined = await rig.joined("7411")
    channel = joined["channel_id"]
    # The hold is the queue's sound, looped in one playback of this channel; its audio reaches the caller.

    async def started() -> Any:
        try:
            return await asyncio.to_thread(rig.asterisk.ari, "GET", f"/playbacks/hold-{channel}-1")
        except urllib.error.HTTPError:
            return None  # joined a moment before the hold starts

    playback = await poll(started, timeout=5)
    assert playback is not None, "no hold playback on the caller's channel"
    assert playback["media_uri"] == "sound:queue-periodic-announce" and playback["target_uri"] == f"channel:{channel}"
    before = (await asyncio.to_thread(rtp_counts, rig.asterisk, channel))[1]

    async def flowing() -> bool | None:
        return True if (await asyncio.to_thread(rtp_counts, rig.asterisk, channel))[1] >= before + 50 else None

    assert await poll(flowing, timeout=5), "no hold audio to the caller"
    await rig.finished(call)
    cdr = await rig.controller.wait_cdr("7411")
    assert len(events(cdr, "queue_abandoned")) == 1

