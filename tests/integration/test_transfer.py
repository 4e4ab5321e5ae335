"""A flow's transfer on the real Asterisk: the agent1 phone (a SIPp UAS) answers and audio flows
both ways through the bridge; a phone that never answers sends the caller to on_no_answer."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from .conftest import AsteriskUnderTest, ControllerUnderTest, poll
from .sipp import ExpectHangup, SippCall, free_rtp_port, free_udp_port, run_call_async
from .test_phones import register
from .uas import SDP, reply

pytestmark = pytest.mark.integration

AUDIO = "/usr/share/sip-tester/g711a.pcap"  # 7 s of A-law speech, shipped with SIPp

FLOW = """
name: itest-transfer
start: answer
nodes:
  answer: {type: answer, next: to-agent}
  to-agent:
    type: transfer
    to: endpoint:agent1
    timeout: {timeout}
    on_no_answer: sorry
    on_failure: sorry
  sorry: {type: play, media: sound:vm-nobodyavail}
"""


# The agent's phone once registered (`test_phones.register`, same port): answers one call and talks
# (plays speech) until the other side hangs up; or, with RING_ONLY, lets it ring until cancelled.
AGENT = f"""<?xml version="1.0" encoding="UTF-8"?>
<scenario name="agent1 phone">
  <recv request="INVITE"/>
{reply("agent1", "180 Ringing")}
{{answer}}
</scenario>
"""

TALK = f"""{reply("agent1", "200 OK", body=SDP)}
  <recv request="ACK"/>
  <nop><action><exec play_pcap_audio="{{audio}}"/></action></nop>
  <recv request="BYE" timeout="40000"/>
{reply("agent1", "200 OK", tag=False)}
"""

RING_ONLY = f"""  <recv request="CANCEL" timeout="40000"/>
{reply("agent1", "200 OK")}
{reply("agent1", "487 Request Terminated", cseq="CSeq: [cseq] INVITE")}
  <recv request="ACK"/>
"""

# The caller: dials the number, talks (plays speech) for 7 s, stays 3 s more, hangs up.
CALLER = """<?xml version="1.0" encoding="UTF-8"?>
<scenario name="caller">
  <send retrans="500"><![CDATA[
INVITE sip:{dialed}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]caller
To: <sip:{dialed}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP4 [media_ip]
s=caller
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]caller
To: <sip:{dialed}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <pause milliseconds="{before}"/>
  <nop><action><exec play_pcap_audio="{audio}"/></action></nop>
  <pause milliseconds="{talk}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]caller
To: <sip:{dialed}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>
</scenario>
"""


def sipp(
    scenario: Path, asterisk: AsteriskUnderTest, port: int | None = None, calls: int = 1
) -> subprocess.Popen[bytes]:
    host, sip_port = asterisk.sip_target
    log = scenario.with_suffix(".log")
    return subprocess.Popen(
        # -aa: Asterisk's qualify (OPTIONS) to the registered phone is answered, not taken for a call.
        ["sipp", f"{host}:{sip_port}", "-sf", str(scenario), "-m", str(calls), "-i", host,
         "-p", str(port or free_udp_port()),
         "-mp", str(free_rtp_port()), "-timeout", "60", "-nostdin", "-aa", "-trace_msg", "-message_file", str(log)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def agent_phone(asterisk: AsteriskUnderTest, tmp_path: Path, answer: str) -> tuple[subprocess.Popen[bytes], Path]:
    """agent1 registered from a port, and a SIPp on that port answering as the phone."""
    ok, port, log = register(asterisk, tmp_path, "agent1", asterisk.settings.secrets()["agent_password"])
    assert ok, log
    scenario = tmp_path / "agent.xml"
    scenario.write_text(AGENT.replace("{answer}", answer))
    return sipp(scenario, asterisk, port), scenario


def finished(proc: subprocess.Popen[bytes], scenario: Path) -> None:
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log = scenario.with_suffix(".log")
    messages = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert proc.returncode == 0, f"{scenario.name}: SIPp exited {proc.returncode}\n{messages}"


def route(controller: ControllerUnderTest, tmp_path: Path, number: str, timeout: int) -> None:
    flow = tmp_path / "itest-transfer.yaml"
    flow.write_text(FLOW.replace("{timeout}", str(timeout)))
    controller.ivrpowers("flow", "import", str(flow), "--publish")
    controller.ivrpowers("route", "set", number, "itest-transfer")


def rtp_counts(asterisk: AsteriskUnderTest, channel_id: str) -> tuple[int, int]:
    """(received, sent) RTP packets of a channel, from ARI's rtp_statistics."""
    stats = asterisk.ari("GET", f"/channels/{channel_id}/rtp_statistics")
    return int(stats["rxcount"]), int(stats["txcount"])


async def test_an_answered_transfer_bridges_the_caller_and_the_agent(
    asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path
) -> None:
    number = "204" if controller.kind == "sqlite" else "205"
    route(controller, tmp_path, number, timeout=15)
    agent, agent_xml = agent_phone(asterisk, tmp_path, TALK.replace("{audio}", AUDIO))
    caller = "7001" if controller.kind == "sqlite" else "7002"
    caller_xml = tmp_path / "caller.xml"
    caller_xml.write_text(CALLER.format(dialed=number, caller=caller, before=500, talk=9000, audio=AUDIO))
    call = sipp(caller_xml, asterisk)
    answered = await controller.wait_event(caller, "transfer_answered")
    detail = next(e["detail"] for e in answered["events"] if e["type"] == "transfer_answered")
    assert detail["to"] == "endpoint:agent1" and detail["ring_ms"] >= 0 and detail["bridge"]
    # Media through the bridge, both ways: each side sends speech, each side's channel forwards it.
    leg = detail["channel"]
    counts: tuple[int, ...] = ()

    async def both_ways() -> tuple[int, ...] | None:  # the speech lasts 7 s
        nonlocal counts
        counts = (*await asyncio.to_thread(rtp_counts, asterisk, answered["channel_id"]),
                  *await asyncio.to_thread(rtp_counts, asterisk, leg))
        return counts if min(counts) > 20 else None

    assert await poll(both_ways, timeout=10, interval=0.1), f"RTP (caller rx, tx, agent rx, tx): {counts}"
    finished(call, caller_xml)
    finished(agent, agent_xml)
    cdr = await controller.wait_cdr(caller)
    assert cdr["disposition"] == "transferred" and cdr["bridge_id"] == detail["bridge"]
    ended = next(e["detail"] for e in cdr["events"] if e["type"] == "transfer_ended")
    assert ended["hung_up_by"] == "caller" and ended["talk_seconds"] > 5
    assert [c["role"] for c in cdr["channels"]] == ["inbound", "leg"]


async def test_a_phone_that_never_answers_takes_on_no_answer(
    asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path
) -> None:
    number = "206" if controller.kind == "sqlite" else "207"
    route(controller, tmp_path, number, timeout=2)
    agent, agent_xml = agent_phone(asterisk, tmp_path, RING_ONLY)
    caller = "7003" if controller.kind == "sqlite" else "7004"
    call = await run_call_async(SippCall(number, caller, steps=[ExpectHangup(30)]), asterisk.sip_target)
    assert call.ok, call.failure_reasons
    cdr = await controller.wait_cdr(caller)
    finished(agent, agent_xml)
    types = [e["type"] for e in cdr["events"]]
    assert "transfer_no_answer" in types and "transfer_answered" not in types, types
    entered = [e["node"] for e in cdr["events"] if e["type"] == "node_entered"]
    assert entered == ["answer", "to-agent", "sorry"]
    missed = next(e["detail"] for e in cdr["events"] if e["type"] == "transfer_no_answer")
    assert missed["ring_ms"] >= 1500 and missed["to"] == "endpoint:agent1"


async def test_a_bridged_call_survives_a_controller_crash(
    asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path
) -> None:
    number = "208" if controller.kind == "sqlite" else "209"
    route(controller, tmp_path, number, timeout=15)
    agent, agent_xml = agent_phone(asterisk, tmp_path, TALK.replace("{audio}", AUDIO))
    caller = "7005" if controller.kind == "sqlite" else "7006"
    caller_xml = tmp_path / "caller.xml"
    caller_xml.write_text(CALLER.format(dialed=number, caller=caller, before=500, talk=12000, audio=AUDIO))
    call = sipp(caller_xml, asterisk)
    await controller.wait_event(caller, "transfer_answered")
    await asyncio.to_thread(controller.crash_and_restart)
    await controller.wait_event(caller, "adopted")  # by the new controller, while the two talk
    # The caller talks on and hangs up; the new controller hangs up the agent, closes the CDR.
    finished(call, caller_xml)
    finished(agent, agent_xml)
    cdr = await controller.wait_cdr(caller)
    assert cdr["disposition"] == "transferred", cdr["disposition"]
    assert "adopted" in [e["type"] for e in cdr["events"]]
    ended = next(e["detail"] for e in cdr["events"] if e["type"] == "transfer_ended")
    assert ended["hung_up_by"] == "caller" and ended["talk_seconds"] > 8
