"""The ACD on the real Asterisk: a SIPp caller's flow puts the call in a queue; the agent1 phone
(a SIPp UAS registered with digest auth) rings, answers, and audio flows both ways through the
bridge; when the agent hangs up, the caller's flow goes on at `next`; the agent wraps up, then is
available again. With nobody logged in, the flow takes `on_no_agents`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from .acd_helpers import Phone, api
from .conftest import AsteriskUnderTest, ControllerUnderTest, poll
from .sipp import ExpectHangup, Pause, SippCall, Tone, run_call_async
from .test_transfer import AUDIO, rtp_counts

pytestmark = pytest.mark.integration

FLOW = """
name: itest-queue
start: answer
nodes:
  answer: {type: answer, next: wait}
  wait: {type: queue, queue: itq, announce: {every: 0}, next: after, on_no_agents: nobody, on_timeout: nobody}
  after: {type: play, media: sound:beep}
  nobody: {type: play, media: sound:vm-nobodyavail}
"""

def setup_queue(controller: ControllerUnderTest, tmp_path: Path, number: str, agent: str) -> None:
    flow = tmp_path / "itest-queue.yaml"
    flow.write_text(FLOW)
    controller.ivrpowers("flow", "import", str(flow), "--publish")
    controller.ivrpowers("route", "set", number, "itest-queue")
    controller.ivrpowers("queue", "create", "itq", "--ring-timeout", "15", "--wrapup", "3")
    controller.ivrpowers("agent", "create", agent, "--name", "Test Agent", "--endpoint", "agent1", "--queue", "itq")


async def test_a_queued_caller_talks_to_the_agent_then_the_flow_goes_on(
    asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path
) -> None:
    number, agent_id = ("221", "qa1") if controller.kind == "sqlite" else ("222", "qa2")
    setup_queue(controller, tmp_path, number, agent_id)
    # Nobody logged in: the queue refuses the call, the flow takes on_no_agents.
    caller = "7201" if controller.kind == "sqlite" else "7202"
    refused = await run_call_async(SippCall(number, caller, steps=[ExpectHangup(30)]), asterisk.sip_target)
    assert refused.ok, refused.failure_reasons
    cdr = await controller.wait_cdr(caller)
    assert [e["node"] for e in cdr["events"] if e["type"] == "node_entered"] == ["answer", "wait", "nobody"]

    assert api(controller, "POST", f"/api/agents/{agent_id}/login")["state"] == "available"
    # agent1's phone answers, talks (7 s of speech), and hangs up itself after 10 s.
    phone = Phone(asterisk, tmp_path, "agent1", asterisk.settings.secrets()["agent_password"], talk=10, audio=AUDIO)
    phone.start()
    caller = "7203" if controller.kind == "sqlite" else "7204"
    call = asyncio.create_task(run_call_async(
        SippCall(number, caller, steps=[Pause(0.5), Tone(1000, 6), ExpectHangup(40)]), asterisk.sip_target))
    answered = await controller.wait_event(caller, "queue_answered")
    detail = next(e["detail"] for e in answered["events"] if e["type"] == "queue_answered")
    assert detail["agent"] == agent_id and detail["queue"] == "itq"
    # Journaled before the answer (the leg joins, then the bridge is made): the agent's channel.
    leg = next(e["detail"]["channel"] for e in answered["events"] if e["type"] == "leg_joined")
    # Audio both ways through the bridge: the agent's phone sends speech and receives the caller's.
    async def both_ways() -> tuple[int, int] | None:
        received, sent = await asyncio.to_thread(rtp_counts, asterisk, leg)
        return (received, sent) if received > 50 and sent > 50 else None

    assert await poll(both_ways, timeout=10), "no RTP both ways on the agent's leg"
    assert api(controller, "GET", f"/api/agents/{agent_id}/state")["state"] == "busy"
    # The agent hangs up: the caller's flow goes on at `next`, the agent wraps up, then is free.
    result = await call
    assert result.ok, result.failure_reasons
    cdr = await controller.wait_cdr(caller)
    entered = [e["node"] for e in cdr["events"] if e["type"] == "node_entered"]
    assert entered == ["answer", "wait", "after"], entered
    done = next(e["detail"] for e in cdr["events"] if e["type"] == "queue_agent_done")
    assert done["caller_hung_up"] is False and done["talk"] >= 9
    types = [e["type"] for e in cdr["events"]]
    assert types.index("queue_joined") < types.index("queue_ringing") < types.index("queue_answered")
    async def available() -> bool | None:
        state = await asyncio.to_thread(api, controller, "GET", f"/api/agents/{agent_id}/state")
        return True if state["state"] == "available" else None

    assert await poll(available, timeout=15), "the agent is not available again after wrap-up"

    # The hour's report, from the events the controller stored (saved within a second): one call
    # answered and handled, talked for as long as the CDR says.
    async def reported() -> list[dict[str, Any]] | None:
        out = await asyncio.to_thread(controller.ivrpowers, "queue", "report", "--since", "1h", "--interval", "1h",
                                      "--queue", "itq", "--json")
        rows = json.loads(out.stdout)
        return rows if sum(r["handled"] for r in rows) == 1 else None

    rows = await poll(reported, timeout=10)
    assert rows is not None, "the report never showed the handled call"
    assert sum(r["answered"] for r in rows) == 1 and sum(r["offered"] for r in rows) >= 1
    assert sum(r["talk_time"] for r in rows) == pytest.approx(done["talk"], abs=1.0)
    api(controller, "POST", f"/api/agents/{agent_id}/logout")
    assert (phone.received("INVITE"), phone.sent("BYE")) == (1, 1), phone.log()[-3000:]
    phone.stop()
