"""Endpoints created at run time, on a real Asterisk: `ivrpowers endpoint create` makes a phone (or a
browser user) that registers with digest auth at once, without a reload, and calls the ARI app; the
controller gives Asterisk every endpoint back after a restart; `endpoint delete` shuts it out.

The story runs on an Asterisk and a controller of its own, since it restarts them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivrpowers.ami import AmiClient
from ivrpowers.ari import AriClient
from ivrpowers.asterisk import process
from ivrpowers.endpoints.accounts import new_password, password_digest
from ivrpowers.endpoints.fields import REALM, Addresses
from ivrpowers.endpoints.presence import Presence, reachable_now
from ivrpowers.endpoints.push import push, remove
from ivrpowers.store.endpoints import EndpointRecord

from .conftest import AsteriskUnderTest, ControllerUnderTest, poll, running_asterisk, start_controller, stop_controller
from .sipp import free_udp_port
from .test_phones import register
from .test_security import sipp

pytestmark = pytest.mark.integration

FLOW = """name: itest-endpoint
start: answer
nodes:
  answer: {type: answer, next: beep}
  beep: {type: play, media: [sound:beep], next: bye}
  bye: {type: hangup}
"""
NUMBER = "310"

_SDP = """
v=0
o=- 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000"""


def _invite(cseq: int, auth: bool = False) -> str:
    credentials = "[authentication]\n" if auth else ""
    return f"""  <send retrans="500"><![CDATA[
INVITE sip:{{dialed}}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{{user}}@[remote_ip]>;tag=[pid]ep[call_number]
To: <sip:{{dialed}}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:{{user}}@[local_ip]:[local_port]>
{credentials}Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]
{_SDP}
]]></send>
  <recv response="100" optional="true"/>"""


# A phone's call: challenged, sent again with digest credentials, answered by the flow, which hangs up.
CALL = f"""<?xml version="1.0" encoding="UTF-8"?>
<scenario name="a call from an endpoint">
{_invite(1)}
  <recv response="401" auth="true"/>
  <send><![CDATA[
ACK sip:{{dialed}}@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: <sip:{{user}}@[remote_ip]>;tag=[pid]ep[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
{_invite(2, auth=True)}
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{{user}}@[remote_ip]>;tag=[pid]ep[call_number]
To: <sip:{{dialed}}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv request="BYE" timeout="20000"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
</scenario>
"""


def cli(ctl: ControllerUnderTest, *args: str, ari_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """`ivrpowers ARGS` as the operator runs it beside the controller (or reaching ARI at `ari_url`)."""
    env = {**ctl.env, "IVRPOWERS_ARI_URL": ari_url} if ari_url else ctl.env
    return subprocess.run([sys.executable, "-m", "ivrpowers", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def data(ran: subprocess.CompletedProcess[str]) -> Any:
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def listed(ctl: ControllerUnderTest) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in data(cli(ctl, "endpoint", "list", "--json"))}


def registers(asterisk: AsteriskUnderTest, tmp_path: Path, user: str, password: str, **kw: Any) -> int:
    """REGISTER as `user`: the port it registered from; fails the test unless Asterisk says 200."""
    ok, port, log = register(asterisk, tmp_path, user, password, **kw)
    assert ok, f"{user} could not register\n{log[-3000:]}"
    return port


def refused(asterisk: AsteriskUnderTest, tmp_path: Path, user: str) -> None:
    """Asterisk has no endpoint `user`: its REGISTER from 127.0.0.1 is refused outright, 403."""
    ok, _, log = register(asterisk, tmp_path, user, "any", first=403, final=None)
    assert ok, f"{user} was not refused\n{log[-3000:]}"


async def synced(ctl: ControllerUnderTest, passes: int) -> None:
    """The controller has pushed the database's endpoints `passes` times (once per ARI connect)."""
    await ctl.wait_health(lambda h: h.get("endpoint_syncs", 0) >= passes and h.get("ari_connected"))


@pytest.fixture
def own(tmp_path: Path) -> Any:
    flow = tmp_path / "itest-endpoint.yaml"
    flow.write_text(FLOW)
    with running_asterisk(tmp_path / "state", 32000) as asterisk:
        ctl = start_controller("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ivrpowers.db'}", asterisk,
                                tmp_path / "controller.log", flows=[flow], routes={NUMBER: "itest-endpoint"})
        try:
            yield asterisk, ctl
        finally:
            stop_controller(ctl)
            ctl.proxy.stop()


async def test_an_endpoint_created_at_run_time_registers_calls_survives_restarts_and_is_deleted(
    own: tuple[AsteriskUnderTest, ControllerUnderTest], tmp_path: Path
) -> None:
    asterisk, ctl = own
    await synced(ctl, 1)

    # Created: the password is printed once; Asterisk has it at once, with no reload.
    ana = data(cli(ctl, "endpoint", "create", "ana", "--json"))
    assert (ana["kind"], ana["pushed"], ana["realm"]) == ("phone", True, REALM)
    assert ana["server"] == f"sip:127.0.0.1:{asterisk.settings.sip_port}"
    port = registers(asterisk, tmp_path, "ana", ana["password"])
    ok, _, log = register(asterisk, tmp_path, "ana", "not-" + ana["password"], final=401)
    assert ok, log  # challenged again, never let in
    shown = listed(ctl)["ana"]
    assert shown["registered"] is True and shown["in_asterisk"] is True, shown
    assert shown["contacts"] == [f"sip:ana@127.0.0.1:{port}"], shown
    assert ana["password"] not in (tmp_path / "ivrpowers.db").read_bytes().decode(errors="replace")
    assert ana["password"] not in asterisk.cli("pjsip show auth ana")
    assert password_digest("ana", REALM, ana["password"]).removeprefix("MD5:") in asterisk.cli("pjsip show auth ana")

    # Its calls reach the ARI app, as the phone's: the controller runs the flow routed to the number.
    sipp(asterisk, tmp_path, CALL.replace("{user}", "ana").replace("{dialed}", NUMBER),
         password=("ana", ana["password"]))
    cdr = await ctl.wait_cdr("ana")
    assert (cdr["source"], cdr["dialed"], cdr["flow"]) == ("phone", NUMBER, "itest-endpoint"), cdr
    assert cdr["caller_name"] == "ana" and cdr["answered_at"] is not None, cdr

    # A browser user registers over SIP/websocket; its contact lasts as long as its socket.
    bob = data(cli(ctl, "endpoint", "create", "bob", "--webrtc", "--json"))
    assert bob["server"] == f"ws://127.0.0.1:{asterisk.settings.http_port}/ws"
    async with ws_registered(asterisk, "bob", bob["password"]) as statuses:
        assert statuses == [401, 200]
        assert re.search(r"^\s*Contact:\s+bob/sip:bob@", asterisk.cli("pjsip show contacts"), re.M)
    async with ws_registered(asterisk, "bob", "not-" + bob["password"]) as statuses:
        assert statuses == [401, 401]

    # Deleted while the CLI cannot reach Asterisk: the controller removes it at its next connect.
    ran = cli(ctl, "endpoint", "delete", "bob", "--json", ari_url=f"http://127.0.0.1:{free_udp_port()}/ari")
    assert data(ran) == {"name": "bob", "kind": "webrtc", "removed_from_asterisk": None}
    assert ran.stderr.startswith("warning: Asterisk does not answer") and "next connects" in ran.stderr
    assert "bob" in asterisk.cli("pjsip show endpoints")
    ctl.proxy.cut()
    await synced(ctl, 2)
    refused(asterisk, tmp_path, "bob")

    # Asterisk restarts under the controller: a fresh Asterisk, and the controller pushes ana back.
    process.stop(asterisk.settings)
    process.start(asterisk.settings, attached=True)
    await synced(ctl, 3)
    registers(asterisk, tmp_path, "ana", ana["password"])

    # Without a controller, a fresh Asterisk has none of them: proof they were only in its memory.
    stop_controller(ctl)
    process.stop(asterisk.settings)
    cara = cli(ctl, "endpoint", "create", "cara", "--json")  # Asterisk down: stored, pushed later
    assert data(cara)["pushed"] is False and "controller gives it to Asterisk" in cara.stderr
    process.start(asterisk.settings, attached=True)
    refused(asterisk, tmp_path, "ana")
    shown = listed(ctl)
    assert (shown["ana"]["in_asterisk"], shown["cara"]["in_asterisk"], shown["ana"]["state"]) == (False, False, None)
    ctl.launch()
    await synced(ctl, 1)
    registers(asterisk, tmp_path, "ana", ana["password"])
    registers(asterisk, tmp_path, "cara", data(cara)["password"])

    # Deleted: out of Asterisk at once, registrations included.
    assert data(cli(ctl, "endpoint", "delete", "ana", "--json"))["removed_from_asterisk"] is True
    refused(asterisk, tmp_path, "ana")
    assert "ana" not in asterisk.cli("pjsip show contacts")
    again = cli(ctl, "endpoint", "delete", "ana")
    assert again.returncode == 3 and again.stderr.count("\n") == 1 and "no endpoint named 'ana'" in again.stderr


@asynccontextmanager
async def ws_registered(asterisk: AsteriskUnderTest, user: str, password: str) -> AsyncIterator[list[int]]:
    """REGISTER over SIP/websocket, as a browser's SIP stack does, and stay connected: the status of
    each answer (401, then 200 if the digest is right). A browser's contact goes with its socket."""
    host, port = asterisk.settings.bind_address, asterisk.settings.http_port
    call_id, tag, uri = uuid.uuid4().hex, secrets.token_hex(4), f"sip:{host}"
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(f"ws://{host}:{port}/ws", protocols=("sip",)) as ws:
        credentials = ""
        for cseq in (1, 2):
            await ws.send_str(
                f"REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/WS {tag}.invalid;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
                f"Max-Forwards: 70\r\nTo: <sip:{user}@{host}>\r\nFrom: <sip:{user}@{host}>;tag={tag}\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{tag}.invalid;transport=ws>\r\n"
                f"Expires: 60\r\n{credentials}User-Agent: ivrpowers-test-browser\r\nContent-Length: 0\r\n\r\n")
            reply = await _final_response(ws)
            statuses.append(int(reply.split(" ", 2)[1]))
            if statuses[-1] != 401:
                break
            found = re.search(r"^WWW-Authenticate: *Digest (.*)$", reply, re.M | re.I)
            assert found, reply
            credentials = _digest(user, password, uri, dict(re.findall(r'(\w+)="?([^",]*)"?', found.group(1))))
        yield statuses


async def _final_response(ws: aiohttp.ClientWebSocketResponse) -> str:
    """The next final response; a request meanwhile (Asterisk's qualify, OPTIONS) is answered 200."""
    while True:
        message = await asyncio.wait_for(ws.receive_str(), 10)
        if not message.startswith("SIP/2.0 "):
            head = message.split("\r\n\r\n", 1)[0].split("\r\n")
            keep = [h for h in head[1:] if h.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
            await ws.send_str("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n")
        elif int(message.split(" ", 2)[1]) >= 200:
            return message


def _digest(user: str, password: str, uri: str, challenge: dict[str, str]) -> str:
    """The Authorization header answering a digest challenge (RFC 2617, MD5, qop=auth when offered)."""
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5(f"{user}:{challenge['realm']}:{password}"), md5(f"REGISTER:{uri}")
    nonce, cnonce = challenge["nonce"], secrets.token_hex(8)
    if "qop" in challenge:
        response = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
        extra = f', qop=auth, nc=00000001, cnonce="{cnonce}"'
    else:
        response, extra = md5(f"{ha1}:{nonce}:{ha2}"), ""
    opaque = f', opaque="{challenge["opaque"]}"' if "opaque" in challenge else ""
    return (f'Authorization: Digest username="{user}", realm="{challenge["realm"]}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5{opaque}{extra}\r\n')


# The phone's side once registered: Asterisk's qualify (OPTIONS) is answered (-aa) until it is stopped.
IDLE_PHONE = """<?xml version="1.0" encoding="UTF-8"?>
<scenario name="an idle phone"><recv request="INVITE" timeout="60000" ontimeout="done"/><label id="done"/></scenario>
"""


async def test_presence_follows_a_phone_online_and_offline(asterisk: AsteriskUnderTest, tmp_path: Path) -> None:
    s = asterisk.settings
    client = AriClient(s.ari_base_url, s.ari_user, s.ari_secret, "ivrpowers-test-presence", rest_lanes=0)
    presence = Presence(client, AmiClient(s.bind_address, s.ami_port, s.ami_user, s.ami_password))
    name, password = f"presence-{secrets.token_hex(3)}", new_password()
    changes: asyncio.Queue[bool] = asyncio.Queue()
    presence.watch(lambda endpoint, reachable: changes.put_nowait(reachable) if endpoint == name else None)
    record = EndpointRecord(name=name, kind="phone", realm=REALM,
                            password_digest=password_digest(name, REALM, password))
    client.start()
    phone: subprocess.Popen[bytes] | None = None
    try:
        await client.wait_connected(10)
        presence.install()

        async def read() -> bool | None:  # Asterisk's endpoints read once: what follows are changes
            return True if presence.reads else None

        assert await poll(read, 10)
        await push(client, record, Addresses.of(s))
        port = registers(asterisk, tmp_path, name, password)
        assert not presence.reachable(name)  # registered, but nobody answers Asterisk's OPTIONS there yet
        scenario = tmp_path / "idle.xml"
        scenario.write_text(IDLE_PHONE)
        phone = subprocess.Popen(
            ["sipp", f"{s.bind_address}:{s.sip_port}", "-sf", str(scenario), "-m", "1", "-i", s.bind_address,
             "-p", str(port), "-aa", "-nostdin", "-timeout", "90"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        # The phone answers Asterisk's qualify (sent on registration, again over UDP, then every 30 s).
        assert await asyncio.wait_for(changes.get(), 40) is True
        assert presence.reachable(name) and await reachable_now(client, name)
        phone.terminate()
        phone.wait()
        registers(asterisk, tmp_path, name, password, expires=0, port=port)  # unregisters
        assert await asyncio.wait_for(changes.get(), 10) is False
        assert not presence.reachable(name) and not await reachable_now(client, name)
        assert await remove(client, name)

        async def gone() -> bool | None:
            return True if name not in {e.resource for e in await client.list_endpoints("PJSIP")} else None

        assert await poll(gone, 5)
    finally:
        if phone is not None and phone.poll() is None:
            phone.kill()
            phone.wait()
        await presence.close()
        await remove(client, name)
        await client.close()
