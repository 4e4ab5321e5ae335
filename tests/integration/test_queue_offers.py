"""The ACD's offers on the real Asterisk: an offer that rings out moves on to the next agent (the
caller keeps their place, the first agent is paused), an agent gets no offer while wrapping up
(unless they end it early), and a caller of higher priority overtakes one who came first.

Agents' phones are SIPp UASes registered with digest auth (`acd_helpers.Phone`); callers are SIPp
calls to the `itest-acd` flow, whose caller number picks the queue (`flows/itest-acd.yaml`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from .acd_helpers import Rig, events, nodes, seconds, when
from .conftest import AsteriskUnderTest, ControllerUnderTest
from .sipp import ExpectHangup

# SQLite is enough here: test_queue.py runs the ACD on PostgreSQL too.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("controller", ["sqlite"], indirect=True)]


@pytest.fixture
async def rig(asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with Rig.open(asterisk, controller, tmp_path) as opened:
        yield opened


async def test_an_offer_that_rings_out_goes_to_the_next_agent_and_pauses_the_first(rig: Rig) -> None:
    # acd-rna: linear, so rna-a (penalty 0) is offered first; ring_timeout 5 s.
    first = await rig.phone("qphone-a", talk=None)  # rings until cancelled
    second = await rig.phone("qphone-b", talk=1.0)  # answers, hangs up a second later
    rig.login("rna-a", "rna-b")
    await rig.finished(rig.call("7311", ExpectHangup(40)))
    cdr = await rig.controller.wait_cdr("7311")
    ringing = events(cdr, "queue_ringing")
    assert [e["detail"]["agent"] for e in ringing] == ["rna-a", "rna-b"], cdr["events"]
    # The second offer comes when the first rang out, not before; the caller joined once (kept
    # their place) and the second agent answered.
    assert 4.8 <= seconds(ringing[1], ringing[0]) < 8.0, (ringing[0]["at"], ringing[1]["at"])
    assert len(events(cdr, "queue_joined")) == 1
    assert [e["detail"]["agent"] for e in events(cdr, "queue_answered")] == ["rna-b"]
    assert nodes(cdr) == ["answer", "pick", "rna", "served"]
    state = rig.state("rna-a")
    assert (state["state"], state["reason"]) == ("paused", "ring_no_answer"), state
    assert rig.state("rna-b")["state"] == "available"
    # On the wire: the first phone rang and was cancelled; the second rang and hung up.
    assert (first.received("INVITE"), first.received("CANCEL")) == (1, 1), first.log()[-3000:]
    assert (second.received("INVITE"), second.sent("BYE")) == (1, 1), second.log()[-3000:]


async def test_an_agent_wrapping_up_gets_no_offer_until_the_wrap_up_ends(rig: Rig) -> None:
    # acd-wrap: wrapup_seconds 3. Two callers, one agent who talks a second each time.
    phone = await rig.phone("qphone-a", talk=1.0)
    rig.login("wrap")
    first = rig.call("7321", ExpectHangup(40))
    await rig.joined("7321")
    second = rig.call("7322", ExpectHangup(40))
    await rig.joined("7322")
    done = events(await rig.controller.wait_event("7321", "queue_agent_done"), "queue_agent_done")[0]
    wrapping = await rig.wait_state("wrap", "wrap_up")
    until = datetime.fromisoformat(wrapping["wrap_up_until"])
    assert 2.5 <= (until - when(done)).total_seconds() <= 3.0, (done["at"], until)
    # The second caller waits meanwhile, and is offered only once the wrap-up is over.
    assert rig.now("acd-wrap")["waiting"] == 1
    await rig.finished(first)
    await rig.finished(second)
    cdr = await rig.controller.wait_cdr("7322")
    ringing = events(cdr, "queue_ringing")
    assert len(ringing) == 1 and when(ringing[0]) >= until, (ringing, until)
    assert [e["detail"]["agent"] for e in events(cdr, "queue_answered")] == ["wrap"]
    assert nodes(cdr) == ["answer", "pick", "wrap", "served"]
    assert (phone.received("INVITE"), phone.sent("BYE")) == (2, 2), phone.log()[-3000:]


async def test_ending_the_wrap_up_early_offers_the_next_caller_at_once(rig: Rig) -> None:
    # acd-wrap-end: wrapup_seconds 60, ended by the agent over REST.
    phone = await rig.phone("qphone-a", talk=1.0)
    rig.login("wrap-end")
    first = rig.call("7331", ExpectHangup(40))
    await rig.joined("7331")
    second = rig.call("7332", ExpectHangup(40))
    await rig.joined("7332")
    await rig.controller.wait_event("7331", "queue_agent_done")
    wrapping = await rig.wait_state("wrap-end", "wrap_up")
    assert rig.now("acd-wrap-end")["waiting"] == 1
    ended = rig.api("POST", "/api/agents/wrap-end/end-wrap-up")
    # Free again, the agent is offered the waiting caller in the same step.
    assert ended["state"] == "reserved" and ended["wrap_up_until"] is None, ended
    ringing = events(await rig.controller.wait_event("7332", "queue_ringing"), "queue_ringing")[0]
    until = datetime.fromisoformat(wrapping["wrap_up_until"])
    assert (until - when(ringing)).total_seconds() > 50, (ringing["at"], until)
    await rig.finished(first)
    await rig.finished(second)
    cdr = await rig.controller.wait_cdr("7332")
    assert [e["detail"]["agent"] for e in events(cdr, "queue_answered")] == ["wrap-end"]
    assert (phone.received("INVITE"), phone.sent("BYE")) == (2, 2), phone.log()[-3000:]


async def test_a_caller_of_higher_priority_is_offered_first(rig: Rig) -> None:
    # acd-priority: caller 7371 joins at priority 0, then 7375 at priority 5, while the only agent
    # is paused; when it unpauses, 7375 is offered first, then 7371.
    phone = await rig.phone("qphone-a", talk=1.0)
    rig.login("priority")
    assert rig.api("POST", "/api/agents/priority/pause", {"reason": "briefing"})["state"] == "paused"
    low = rig.call("7371", ExpectHangup(40))
    assert events(await rig.joined("7371"), "queue_joined")[0]["detail"]["priority"] == 0
    high = rig.call("7375", ExpectHangup(40))
    assert events(await rig.joined("7375"), "queue_joined")[0]["detail"]["priority"] == 5
    await rig.wait_waiting("acd-priority", 2)
    rig.api("POST", "/api/agents/priority/unpause")
    await rig.finished(high)
    await rig.finished(low)
    first, second = await rig.controller.wait_cdr("7375"), await rig.controller.wait_cdr("7371")
    # The later, higher caller was offered and answered before the earlier one was even offered.
    assert when(events(first, "queue_joined")[0]) > when(events(second, "queue_joined")[0])
    assert [e["detail"]["agent"] for e in events(first, "queue_answered")] == ["priority"]
    assert [e["detail"]["agent"] for e in events(second, "queue_answered")] == ["priority"]
    assert len(events(second, "queue_ringing")) == 1, second["events"]
    assert when(events(second, "queue_ringing")[0]) > when(events(first, "queue_answered")[0])
    assert (phone.received("INVITE"), phone.sent("BYE")) == (2, 2), phone.log()[-3000:]
