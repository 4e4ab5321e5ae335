"""The ACD on the real Asterisk: a SIPp caller's flow puts the call in a queue; the agent1 phone
(a SIPp UAS registered with digest auth) rings, answers, and audio flows both ways through the
bridge; when the agent hangs up, the caller's flow goes on at `next`; the agent wraps up, then is
available again. With nobody logged in, the flow takes `on_no_agents`."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import AsteriskUnderTest, ControllerUnderTest, poll
from .sipp import ExpectHangup, Pause, SippCall, Tone, run_call_async
from .test_phones import register
from .test_transfer import AUDIO, SDP, reply, rtp_counts, sipp

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

# The agent's phone (registered as agent1, `test_transfer.agent_phone`'s port): answers, talks
# (plays 7 s of speech), stays 10 s, then hangs up itself: a UAS's BYE goes to the INVITE's Contact,
# From and To swapped.
AGENT = f"""<?xml version="1.0" encoding="UTF-8"?>
<scenario name="agent1 phone that hangs up">
  <!-- Asterisk's qualify (OPTIONS, its own Call-ID: a call of its own here) makes the phone
       reachable: the ACD offers calls only to agents whose phone answers it. -->
  <recv request="OPTIONS" optional="true" next="options"/>
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee"/>
    </action>
  </recv>
{reply("180 Ringing")}
{reply("200 OK", body=SDP)}
  <recv request="ACK"/>
  <nop><action><exec play_pcap_audio="{AUDIO}"/></action></nop>
  <pause milliseconds="10000"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$callee];tag=[pid]agent
To: [$caller]
[last_Call-ID:]
CSeq: 2 BYE
Contact: <sip:agent1@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>
  <nop next="done"/>
  <label id="options"/>
{reply("200 OK")}
  <label id="done"/>
</scenario>
"""


def api(controller: ControllerUnderTest, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    token = json.loads((Path(controller.env["IVRPOWERS_STATE_DIR"]) / "secrets.json").read_text())["api_token"]
    request = urllib.request.Request(f"http://127.0.0.1:{controller.web_port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


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
    ok, port, log = register(asterisk, tmp_path, "agent1", asterisk.settings.secrets()["agent_password"])
    assert ok, log
    phone_xml = tmp_path / "agent.xml"
    phone_xml.write_text(AGENT)
    phone = sipp(phone_xml, asterisk, port, calls=2)  # the qualify, then the call
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
    api(controller, "POST", f"/api/agents/{agent_id}/logout")
    phone.terminate()  # it may still wait for a qualify (OPTIONS) that counts as a call of its own
    phone.wait(10)
