"""Callbacks on the real Asterisk: a caller asks to be called back and hangs up, keeping their
place; when their turn comes the agent's phone (digest-registered SIPp) rings first, then the
caller's own number through the outbound trunk (a SIPp "PSTN" behind a PJSIP endpoint); a busy
customer is tried again after the queue's retry time, and the second attempt connects them.

An Asterisk and a controller of their own: the controller needs an outbound trunk and its
allow-list, which the shared ones lack, and two controllers on one Asterisk would take the ARI app
from each other.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivrpowers.calls.media_facts import NOT_READ

from .acd_helpers import Phone, api, events, phone_scenario
from .conftest import (
    AsteriskUnderTest,
    ControllerUnderTest,
    poll,
    running_asterisk,
    start_controller,
    stop_controller,
)
from .sipp import Dtmf, ExpectHangup, Pause, SippCall, free_rtp_port, free_udp_port, run_call_async

NUMBER = "231"
FLOW = Path(__file__).parent / "callback" / "itest-callback.yaml"
TRUNK = "cbprovider"
ACD = """
queues:
  - {name: acd-callback, wrapup_seconds: 0, callback_attempts: 2, callback_retry: 10, announce: {every: 0}}
agents:
  - {id: cb-agent, name: Calls Back, endpoint: qcb-phone, queues: [acd-callback]}
"""


def trunk(asterisk: AsteriskUnderTest, port: int) -> None:
    """The operator's outbound trunk: a PJSIP endpoint whose AOR is the "PSTN" SIPp's address."""
    fields = {
        "aor": [("contact", f"sip:{asterisk.settings.bind_address}:{port}")],
        "endpoint": [("aors", TRUNK), ("context", "from-trunk"), ("transport", "transport-udp"),
                     ("disallow", "all"), ("allow", "ulaw,alaw"), ("direct_media", "no"),
                     ("rtp_symmetric", "yes"), ("dtmf_mode", "rfc4733")],
    }
    for kind, pairs in fields.items():
        asterisk.ari("PUT", f"/asterisk/config/dynamic/res_pjsip/{kind}/{TRUNK}",
                     {"fields": [{"attribute": k, "value": v} for k, v in pairs]})


@pytest.fixture(scope="module")
def cb_asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskUnderTest]:
    with running_asterisk(tmp_path_factory.mktemp("ast-callback"), 33000) as running:
        yield running


@pytest.fixture(scope="module")
def cb_controller(cb_asterisk: AsteriskUnderTest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerUnderTest]:
    asterisk = cb_asterisk
    workdir = tmp_path_factory.mktemp("controller-callback")
    ctl = start_controller("sqlite", f"sqlite+aiosqlite:///{workdir / 'ivrpowers.db'}", asterisk,
                            workdir / "controller.log", flows=[FLOW], routes={NUMBER: "itest-callback"},
                            settings={"IVRPOWERS_OUTBOUND_TRUNK": TRUNK,
                                      "IVRPOWERS_OUTBOUND_ALLOW": json.dumps([r"555\d{4}"])})
    try:
        yield ctl
    finally:
        stop_controller(ctl)
        ctl.proxy.stop()


class Customer:
    """The called-back customer's phone behind the trunk: one SIPp per call it takes."""

    def __init__(self, asterisk: AsteriskUnderTest, workdir: Path, port: int) -> None:
        self.asterisk, self.workdir, self.port = asterisk, workdir, port
        self.logs: list[Path] = []

    def take(self, name: str, scenario: str) -> subprocess.Popen[bytes]:
        path = self.workdir / f"customer-{name}.xml"
        path.write_text(scenario)
        log = path.with_suffix(".log")
        self.logs.append(log)
        host, sip_port = self.asterisk.sip_target
        return subprocess.Popen(
            ["sipp", f"{host}:{sip_port}", "-sf", str(path), "-m", "1", "-i", host, "-p", str(self.port),
             "-mp", str(free_rtp_port()), "-timeout", "90", "-nostdin", "-trace_msg", "-message_file", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


BUSY = """<?xml version="1.0" encoding="UTF-8"?>
<scenario name="busy customer">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]busy
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
  <recv request="ACK"/>
</scenario>
"""


async def test_a_callback_keeps_its_place_rings_the_agent_first_and_retries_a_busy_customer(
        cb_asterisk: AsteriskUnderTest, cb_controller: ControllerUnderTest, tmp_path: Path) -> None:
    ctl, asterisk = cb_controller, cb_asterisk
    password = json.loads(ctl.ivrpowers("endpoint", "create", "qcb-phone", "--json").stdout)["password"]
    definitions = tmp_path / "acd.yaml"
    definitions.write_text(ACD)
    ctl.ivrpowers("acd", "apply", str(definitions))
    customer_port = free_udp_port()
    trunk(asterisk, customer_port)
    customer = Customer(asterisk, tmp_path, customer_port)
    phone = Phone(asterisk, tmp_path, "qcb-phone", password, talk=8)
    await asyncio.to_thread(phone.start)
    try:
        assert api(ctl, "POST", "/api/agents/cb-agent/login")["state"] == "available"
        api(ctl, "POST", "/api/agents/cb-agent/pause", {"reason": "brief"})
        # A (from the trunk, number 5550001) asks for a callback; B joins after A and waits on the line.
        asked = asyncio.create_task(run_call_async(
            SippCall(NUMBER, "5550001", steps=[Pause(1.5), Dtmf("5"), ExpectHangup(30)]), asterisk.sip_target))
        requested = await ctl.wait_event("5550001", "queue_callback_requested")
        assert (await asked).ok
        waiting = asyncio.create_task(run_call_async(
            SippCall(NUMBER, "5550002", steps=[Pause(0.5), ExpectHangup(90)]), asterisk.sip_target, 120))
        await ctl.wait_event("5550002", "queue_joined")
        a_call = requested["id"]
        assert api(ctl, "GET", "/api/queues/acd-callback/now")["tasks"][0] == a_call  # A kept its place

        busy = customer.take("busy", BUSY)
        api(ctl, "POST", "/api/agents/cb-agent/unpause")
        # The agent rings first, with the callback's number; answers; the customer is busy.
        assert await poll(lambda: _done(busy), 30), "the customer got no call"
        first_invite = phone.log()
        assert "Callback" in first_invite and "5550001" in first_invite
        cb = await ctl.wait_record(lambda r: r.role == "callback", "the callback's CDR", 20)
        assert cb["caller"] == "5550001" and cb["dialed"] == "5550001"
        invite = customer.logs[0].read_text(errors="replace")
        assert "INVITE sip:5550001@" in invite  # the caller's own number, through the trunk

        # Meanwhile the agent serves B; the callback is tried again 10 s after the busy attempt.
        answers = customer.take("answers", phone_scenario("customer", talk=2))
        await ctl.wait_cdr("5550002", timeout=60)
        assert (await waiting).ok
        done = await ctl.wait_record(lambda r: r.role == "callback" and r.ended_at is not None,
                                     "the callback's end", 60)
        assert answers.wait(30) == 0
        kinds = [e["type"] for e in done["events"]]
        assert kinds.count("callback_agent_ringing") == 2 and "callback_customer_not_answered" in kinds
        assert "callback_retry_scheduled" in kinds and "callback_connected" in kinds
        assert done["disposition"] == "completed" and done["answered_at"] is not None
        started = events(done, "callback_started")[0]["detail"]
        assert started["callback_of"] == a_call and started["number"] == "5550001"
        ended = events(done, "callback_ended")[0]["detail"]
        assert ended["by"] == "customer" and ended["talk"] > 0
        legs = {e["detail"]["role"]: e["detail"] for e in events(done, "media")}
        assert set(legs) == {"agent", "customer"}, legs  # each leg's, as it ended (SIP phones: not read)
        assert legs["customer"]["missing"] == legs["agent"]["missing"] == [NOT_READ], legs
        assert phone.received("INVITE") == 3  # the callback, B, the callback again
    finally:
        await asyncio.to_thread(phone.stop)
        api(ctl, "POST", "/api/agents/cb-agent/logout")


async def _done(proc: subprocess.Popen[bytes]) -> bool | None:
    return True if proc.poll() is not None else None
