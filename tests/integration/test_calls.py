"""Real calls: SIPp callers with RFC 2833 DTMF -> Asterisk 22 -> the controller -> CDRs in SQL.

Every test runs twice, once with the controller on SQLite and once on PostgreSQL. Each call has a
caller number of its own, which is how its CDR is found.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import ControllerUnderTest
from .sipp import Dtmf, ExpectHangup, ExpectRejected, Hangup, Pause, SippCall, run_call_async

pytestmark = pytest.mark.integration

_numbers = itertools.count(5550100)


def caller() -> str:
    return str(next(_numbers))


def types(cdr: dict[str, Any]) -> list[str]:
    return [e["type"] for e in cdr["events"]]


def events(cdr: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in cdr["events"] if e["type"] == type_]


def assert_ordered(cdr: dict[str, Any]) -> None:
    stamps = [e["at"] for e in cdr["events"]]
    assert stamps == sorted(stamps), "timeline out of order"
    assert cdr["started_at"] <= (cdr["answered_at"] or cdr["started_at"]) <= cdr["ended_at"]


async def test_demo_press_1_reads_back_the_caller_number(controller: ControllerUnderTest, asterisk) -> None:
    number = caller()
    call = SippCall(dialed="100", caller_number=number, caller_name="Demo Caller",
                    steps=[Pause(1.0), Dtmf("1"), Pause(8.0), Hangup()])
    result = await run_call_async(call, target=asterisk.sip_target, timeout=40)
    assert result.ok, result.describe()

    cdr = await controller.wait_cdr(number)
    assert cdr["dialed"] == "100" and cdr["flow"] == "demo" and cdr["flow_version"] >= 1
    assert cdr["caller"] == number and cdr["caller_name"] == "Demo Caller"
    assert cdr["answered_at"] is not None
    assert cdr["disposition"] == "caller_hangup"
    assert [e["detail"]["digit"] for e in events(cdr, "dtmf_received")] == ["1"]
    assert events(cdr, "dtmf_received")[0]["node"] == "main"
    selected = events(cdr, "menu_selected")
    assert selected and selected[0]["detail"]["digit"] == "1"
    readback = [e for e in events(cdr, "prompt_played") if f"digits:{number}" in e["detail"]["media"]]
    assert readback, f"no readback of {number} in {events(cdr, 'prompt_played')}"
    entered = [e["node"] for e in events(cdr, "node_entered")]
    assert entered.index("main") < entered.index(readback[0]["node"])
    assert types(cdr)[-1] == "hangup" and cdr["events"][-1]["detail"]["by"] == "caller"
    assert_ordered(cdr)

    # The same record through the operator's command, as JSON.
    listed = json.loads(controller.ivrpowers("cdr", "list", "--json", "--limit", "50").stdout)
    mine = next(c for c in listed if c["id"] == cdr["id"])
    assert {"id", "caller", "dialed", "flow", "flow_version", "started_at", "answered_at", "ended_at",
            "disposition", "events"} <= mine.keys()
    assert any(e["type"] == "dtmf_received" and e["detail"]["digit"] == "1" for e in mine["events"])
    shown = json.loads(controller.ivrpowers("cdr", "show", cdr["id"], "--json").stdout)
    assert shown["events"] == mine["events"]


async def test_menu_digit_2_says_goodbye_and_the_flow_hangs_up(controller: ControllerUnderTest, asterisk) -> None:
    # Asterisk 22.4+ takes REST requests on the events websocket: this call's answer, prompts and
    # hangup go that way.
    await controller.wait_health(lambda h: h["ari_rest"] == "websocket", timeout=10)
    number = caller()
    call = SippCall(dialed="200", caller_number=number, steps=[Pause(0.5), Dtmf("2"), ExpectHangup(15)])
    result = await run_call_async(call, target=asterisk.sip_target, timeout=40)
    assert result.ok, result.describe()  # the caller received the flow's BYE

    cdr = await controller.wait_cdr(number)
    assert cdr["disposition"] == "completed"
    assert [e["node"] for e in events(cdr, "node_entered")] == ["answer", "menu", "bye", "hangup"]
    assert events(cdr, "menu_selected")[0]["detail"] == {"digit": "2", "next": "bye"}
    assert "sound:goodbye" in events(cdr, "prompt_played")[-1]["detail"]["media"]
    assert events(cdr, "hangup")[0]["detail"]["by"] == "flow"
    assert cdr["hangup_cause"] == 16  # normal clearing
    assert_ordered(cdr)

    # Found again by the operator's filters, through the CLI and the API, on this database.
    found = controller.ivrpowers("cdr", "list", "--since", "1h", "--number", number, "--disposition", "completed",
                                 "--flow", cdr["flow"], "--csv").stdout
    assert [(row["id"], row["caller"], row["dialed"]) for row in csv.DictReader(io.StringIO(found))] == [
        (cdr["id"], number, "200")]
    assert controller.ivrpowers("cdr", "list", "--until", "1h", "--number", number, "--json").stdout.strip() == "[]"
    secrets = json.loads((Path(controller.env["IVRPOWERS_STATE_DIR"]) / "secrets.json").read_text())
    request = urllib.request.Request(
        f"http://127.0.0.1:{controller.web_port}/api/calls?since=1h&number={number}&format=csv",
        headers={"Authorization": f"Bearer {secrets['api_token']}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert [row["id"] for row in csv.DictReader(io.StringIO(resp.read().decode()))] == [cdr["id"]]


async def test_invalid_digit_then_retry(controller: ControllerUnderTest, asterisk) -> None:
    number = caller()
    call = SippCall(dialed="200", caller_number=number,
                    steps=[Pause(0.5), Dtmf("7"), Pause(3.0), Dtmf("1"), ExpectHangup(15)])
    result = await run_call_async(call, target=asterisk.sip_target, timeout=40)
    assert result.ok, result.describe()

    cdr = await controller.wait_cdr(number)
    assert [e["detail"]["digit"] for e in events(cdr, "dtmf_received")] == ["7", "1"]
    invalid = events(cdr, "menu_invalid")
    assert len(invalid) == 1 and invalid[0]["detail"]["digit"] == "7"
    assert any("sound:invalid" in e["detail"]["media"] for e in events(cdr, "prompt_played"))
    assert events(cdr, "menu_selected")[0]["detail"] == {"digit": "1", "next": "thanks"}
    assert [e["node"] for e in events(cdr, "node_entered")][-3:] == ["thanks", "bye", "hangup"]
    assert cdr["disposition"] == "completed"


async def test_no_input_takes_the_timeout_branch(controller: ControllerUnderTest, asterisk) -> None:
    number = caller()
    call = SippCall(dialed="200", caller_number=number, steps=[ExpectHangup(25)])
    result = await run_call_async(call, target=asterisk.sip_target, timeout=40)
    assert result.ok, result.describe()

    cdr = await controller.wait_cdr(number)
    assert len(events(cdr, "menu_timeout")) == 2  # first try + one retry
    assert not events(cdr, "dtmf_received")
    assert [e["node"] for e in events(cdr, "node_entered")][-3:] == ["timed_out", "bye", "hangup"]
    assert cdr["disposition"] == "completed"


async def test_caller_hangs_up_mid_prompt(controller: ControllerUnderTest, asterisk) -> None:
    number = caller()
    call = SippCall(dialed="201", caller_number=number, steps=[Pause(2.0), Hangup()])
    result = await run_call_async(call, target=asterisk.sip_target, timeout=30)
    assert result.ok, result.describe()

    cdr = await controller.wait_cdr(number)
    assert cdr["disposition"] == "caller_hangup"
    assert events(cdr, "caller_hangup")[0]["node"] == "long"
    assert events(cdr, "hangup")[0]["detail"]["by"] == "caller"
    assert cdr["hangup_cause"] == 16
    assert not events(cdr, "flow_hangup")
    duration = cdr["duration"]
    assert 1.5 < duration < 6, duration  # ended with the BYE, not at the end of the prompt


async def test_unknown_number_hears_an_announcement_and_is_rejected(controller: ControllerUnderTest, asterisk) -> None:
    number = caller()
    call = SippCall(dialed="999", caller_number=number, steps=[ExpectRejected(404, early_media=True, timeout=15)])
    result = await run_call_async(call, target=asterisk.sip_target, timeout=30)
    assert result.ok, result.describe()

    cdr = await controller.wait_cdr(number)
    assert cdr["disposition"] == "unrouted"
    assert cdr["flow"] is None and cdr["answered_at"] is None
    unrouted = events(cdr, "unrouted")
    assert unrouted and "999" in unrouted[0]["detail"]["reason"]
    assert events(cdr, "hangup")[0]["detail"]["by"] == "router"
    assert cdr["hangup_cause"] == 1  # unallocated number


async def test_call_survives_the_ari_websocket_dropping_mid_call(controller: ControllerUnderTest, asterisk) -> None:
    number = caller()
    call = SippCall(dialed="200", caller_number=number, steps=[Pause(4.5), Dtmf("1"), ExpectHangup(20)])
    placing = asyncio.create_task(run_call_async(call, target=asterisk.sip_target, timeout=40))
    # Cut while the menu prompt plays, and stay down past its end: its PlaybackFinished is lost
    # and only the resync after reconnecting can tell the controller the prompt is over.
    await controller.wait_event(number, "node_entered", "menu")
    connects = controller.health()["ari_connects"]
    controller.proxy.cut(refuse_for=1.5)
    result = await placing
    assert result.ok, result.describe()

    cdr = await controller.wait_cdr(number)
    assert cdr["disposition"] == "completed"
    assert events(cdr, "menu_selected")[0]["detail"]["digit"] == "1"
    assert [e["node"] for e in events(cdr, "node_entered")][-3:] == ["thanks", "bye", "hangup"]
    assert "adopted" not in types(cdr)  # the same session went on: no second run of the flow
    health = controller.health()
    assert health["ari_connected"] and health["ari_connects"] > connects  # it did reconnect


async def test_call_survives_a_controller_crash(controller: ControllerUnderTest, asterisk) -> None:
    number = caller()
    # A digit pressed while no controller listens is gone (Asterisk drops the event), so this caller,
    # like a person hearing the menu again, presses 1 once more: the restart has 6 s, or 11 s if slow.
    steps = [Pause(6.0), Dtmf("1"), Pause(5.0), Dtmf("1"), ExpectHangup(20)]
    call = SippCall(dialed="200", caller_number=number, steps=steps)
    placing = asyncio.create_task(run_call_async(call, target=asterisk.sip_target, timeout=50))
    await controller.wait_event(number, "node_entered", "menu")  # in the menu, its prompt playing
    await asyncio.to_thread(controller.crash_and_restart)
    result = await placing
    assert result.ok, result.describe()

    cdr = await controller.wait_cdr(number)
    assert cdr["disposition"] == "completed"
    adopted = events(cdr, "adopted")
    assert len(adopted) == 1 and adopted[0]["node"] == "menu"  # resumed where it was
    assert events(cdr, "menu_selected")[0]["detail"] == {"digit": "1", "next": "thanks"}
    assert [e["node"] for e in events(cdr, "node_entered")][-3:] == ["thanks", "bye", "hangup"]
    assert cdr["hangup_cause"] == 16
    assert_ordered(cdr)


async def test_media_and_signalling_listen_on_loopback_only(controller: ControllerUnderTest, asterisk) -> None:
    number = caller()
    placing = asyncio.create_task(run_call_async(
        SippCall(dialed="201", caller_number=number, steps=[Pause(2.5), Hangup()]),
        target=asterisk.sip_target, timeout=30,
    ))
    await controller.wait_event(number, "node_entered", "long")  # mid-call: its RTP socket exists
    sockets = subprocess.run(["ss", "-Hlntup"], capture_output=True, text=True, check=True).stdout
    result = await placing
    assert result.ok, result.describe()
    ours = [line.split() for line in sockets.splitlines() if '"asterisk"' in line]
    local = {fields[4] for fields in ours}
    low, high = asterisk.settings.rtp_start, asterisk.settings.rtp_end
    rtp = {a for a in local if a.startswith("127.0.0.1:") and low <= int(a.rsplit(":", 1)[1]) <= high}
    assert rtp, f"no RTP socket in the configured range during the call: {sorted(local)}"
    for fields in ours:
        address, port = fields[4].rsplit(":", 1)
        if fields[0] == "tcp" or low <= int(port) <= high or int(port) == asterisk.settings.sip_port:
            assert address == "127.0.0.1", f"listener not on loopback: {' '.join(fields)}"
