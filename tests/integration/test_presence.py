"""Presence on the real Asterisk: phone registrations reach the ACD over AMI (PeerStatus, ContactStatus),
never through an ARI `endpoint:` subscription, and Asterisk outlives a registration's expiry.

- Presence alone, on the product's AMI account (read class `system`, its two event filters): a phone
  that registers and answers Asterisk's qualify becomes reachable by an AMI event; unregistered, it is
  not; while AMI is cut, the reads of every state keep following; a registration that expires ends it.
- The controller: an agent whose phone is not registered gets no offer (a `ringall` queue rings only
  the registered one); the agent's `reachable` follows the phone's registration, its unregistration,
  and its expiry; Asterisk and the controller's ARI link are still there afterwards.

The phones are Python on one UDP port each (`Phone`): REGISTER with digest auth, answer the qualify
(OPTIONS), ring (180) on INVITE, answer CANCEL and BYE. Run-time endpoints get an AOR whose minimum
expiry is lowered (test only) so that a registration can expire within the test: res_pjsip removes it
at its next expiry check, at most 30 s later.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ivrpowers.ami import AmiClient
from ivrpowers.ari import AriClient
from ivrpowers.asterisk import process
from ivrpowers.endpoints.accounts import new_password, password_digest
from ivrpowers.endpoints.fields import REALM, Addresses, objects
from ivrpowers.endpoints.presence import Presence
from ivrpowers.endpoints.push import CONFIG_CLASS, remove

from .acd_helpers import api
from .conftest import AsteriskUnderTest, ControllerUnderTest, poll
from .sipp import Hangup, Pause, SippCall, run_call_async
from .tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

SHORT = 2  # seconds: the minimum expiry given to the test endpoints' AORs, and their short registrations
EXPIRY_WAIT = SHORT + 45.0  # res_pjsip's expiry check runs every 30 s


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Phone(asyncio.DatagramProtocol):
    """A SIP phone on one UDP port (see the module's docstring). `invites` counts the INVITEs it got."""

    def __init__(self, user: str, password: str, server: tuple[str, int]) -> None:
        self.user, self.password, self.server = user, password, server
        self.replies: asyncio.Queue[str] = asyncio.Queue()
        self.invites = 0
        self.options = 0
        self._pending: dict[str, str] = {}  # Call-ID -> the INVITE still ringing
        self.transport: Any = None  # asyncio's datagram transport
        self.port = 0
        self.call_id = f"{secrets.token_hex(8)}@presence-test"
        self.cseq = 0

    async def open(self) -> Phone:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.sendto(text.encode(), self.server)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        text = data.decode(errors="replace")
        if text.startswith("SIP/2.0 "):
            self.replies.put_nowait(text)
            return
        method = text.split(" ", 1)[0]
        call_id = _header(text, "Call-ID")
        if method == "OPTIONS":
            self.options += 1
            self._send(_response(text, "200 OK"))
        elif method == "INVITE":
            self.invites += 1
            self._pending[call_id] = text
            self._send(_response(text, "180 Ringing", tag=True))
        elif method == "CANCEL":
            self._send(_response(text, "200 OK"))
            if (invite := self._pending.pop(call_id, None)) is not None:
                self._send(_response(invite, "487 Request Terminated", tag=True))
        elif method == "BYE":
            self._send(_response(text, "200 OK"))

    def _register_request(self, expires: int, authorization: str = "") -> str:
        self.cseq += 1
        host, port = self.server
        return (f"REGISTER sip:{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
                f"From: <sip:{self.user}@{host}>;tag={secrets.token_hex(4)}\r\nTo: <sip:{self.user}@{host}>\r\n"
                f"Call-ID: {self.call_id}\r\nCSeq: {self.cseq} REGISTER\r\n"
                f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>\r\n{authorization}"
                f"Max-Forwards: 70\r\nExpires: {expires}\r\nUser-Agent: presence-test-phone\r\n"
                "Content-Length: 0\r\n\r\n")

    async def register(self, expires: int) -> int:
        """REGISTER (Expires 0: unregister); Asterisk's final status."""
        self._send(self._register_request(expires))
        reply = await asyncio.wait_for(self.replies.get(), 10)
        if _status(reply) != 401:
            return _status(reply)
        challenge = dict(re.findall(r'(\w+)="?([^",\r\n]*)"?', _header(reply, "WWW-Authenticate")))
        host, port = self.server
        uri = f"sip:{host}:{port}"
        ha1, ha2 = _md5(f"{self.user}:{challenge['realm']}:{self.password}"), _md5(f"REGISTER:{uri}")
        fields = f'username="{self.user}", realm="{challenge["realm"]}", nonce="{challenge["nonce"]}", uri="{uri}"'
        if "qop" in challenge:
            cnonce = secrets.token_hex(4)
            response = _md5(f"{ha1}:{challenge['nonce']}:00000001:{cnonce}:auth:{ha2}")
            fields += f', qop=auth, nc=00000001, cnonce="{cnonce}"'
        else:
            response = _md5(f"{ha1}:{challenge['nonce']}:{ha2}")
        if "opaque" in challenge:
            fields += f', opaque="{challenge["opaque"]}"'
        self._send(self._register_request(
            expires, f'Authorization: Digest {fields}, algorithm=MD5, response="{response}"\r\n'))
        return _status(await asyncio.wait_for(self.replies.get(), 10))


def _status(reply: str) -> int:
    return int(reply.split(" ", 2)[1])


def _header(message: str, name: str) -> str:
    found = re.search(rf"^{re.escape(name)}:\s*(.*?)\r?$", message, re.M | re.I)
    return found.group(1) if found else ""


def _response(request: str, status: str, tag: bool = False) -> str:
    lines = request.split("\r\n")
    keep = [line for line in lines if line.split(":", 1)[0].lower() in ("via", "from", "call-id", "cseq")]
    to = next(line for line in lines if line.lower().startswith("to:"))
    if tag and ";tag=" not in to:
        to += f";tag={random.getrandbits(32):x}"
    return f"SIP/2.0 {status}\r\n" + "\r\n".join([*keep, to]) + "\r\nContent-Length: 0\r\n\r\n"


async def short_lived_endpoint(ari: AriClient, name: str, password: str, addresses: Addresses) -> None:
    """Push `name` as `ivrpowers endpoint create` does, its AOR taking registrations of SHORT s."""
    for obj in objects(name, "phone", REALM, password_digest(name, REALM, password), addresses):
        fields = obj.fields + ([("minimum_expiration", str(SHORT))] if obj.type == "aor" else [])
        await ari.put_config_object(CONFIG_CLASS, obj.type, obj.id, fields)


async def lower_minimum_expiry(ari: AriClient, name: str) -> None:
    """An endpoint the controller made: its AOR (no contacts yet) takes registrations of SHORT s."""
    await ari.put_config_object(CONFIG_CLASS, "aor", name, [("minimum_expiration", str(SHORT))])


async def eventually(probe: Callable[[], Awaitable[bool]] | Callable[[], bool], what: str,
                     timeout: float = 20.0) -> None:
    async def check() -> bool | None:
        result = probe()
        value = await result if asyncio.iscoroutine(result) else result
        return True if value else None

    assert await poll(check, timeout), f"not within {timeout}s: {what}"


def applications(asterisk: AsteriskUnderTest) -> list[dict[str, Any]]:
    """Asterisk's ARI applications and what each is subscribed to (GET /applications)."""
    found: list[dict[str, Any]] = asterisk.ari("GET", "/applications")
    return found


def connected(ami: AmiClient) -> bool:
    return ami.connected


def asterisk_alive(asterisk: AsteriskUnderTest) -> bool:
    status = process.status(asterisk.settings)
    return status.running and status.ari_ready


async def test_presence_follows_phones_over_ami_and_reads_while_ami_is_away(
    asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    s = asterisk.settings
    ari = AriClient(s.ari_base_url, s.ari_user, s.ari_secret, "ivrpowers-test-presence", rest_lanes=0)
    proxy = TcpProxy(s.bind_address, s.ami_port).start()
    ami = AmiClient(s.bind_address, proxy.port, s.ami_user, s.ami_password)
    presence = Presence(ari, ami, poll_every=0.5)
    changes: asyncio.Queue[bool] = asyncio.Queue()
    name, password = f"presence-{secrets.token_hex(3)}", new_password()
    presence.watch(lambda endpoint, reachable: changes.put_nowait(reachable) if endpoint == name else None)
    phone = await Phone(name, password, asterisk.sip_target).open()
    launcher = process.status(s).pid
    try:
        await short_lived_endpoint(ari, name, password, Addresses.of(s))
        presence.install()
        await eventually(lambda: ami.logins == 1 and presence.reads >= 1 and not presence._stale, "AMI login, a read")
        # Not known before the first read (counted as able, as before presence existed): now it is.
        assert not presence.reachable(name) and changes.get_nowait() is False and changes.empty()
        reads, events = presence.reads, presence.events

        # Registered and answering the qualify: an AMI event says so, nothing was read again.
        assert await phone.register(300) == 200
        assert await asyncio.wait_for(changes.get(), 20) is True
        assert presence.reachable(name) and phone.options >= 1
        assert presence.events > events and presence.reads == reads and connected(ami)
        assert await phone.register(0) == 200  # unregistered
        assert await asyncio.wait_for(changes.get(), 10) is False

        # AMI cut (Asterisk would have sent its events to nobody): the reads of every state follow.
        proxy.cut(refuse_for=4.0)
        await eventually(lambda: not connected(ami), "AMI down")
        assert await phone.register(300) == 200
        assert await asyncio.wait_for(changes.get(), 20) is True
        assert presence.reads > reads and not connected(ami)
        await eventually(lambda: ami.logins == 2 and connected(ami) and not presence._stale, "AMI back", 30)

        # A registration that expires ends it (an AMI event), and Asterisk is still there.
        assert await phone.register(SHORT) == 200
        await eventually(lambda: presence._jobs.empty(), "the registration taken")
        reads = presence.reads
        assert await asyncio.wait_for(changes.get(), EXPIRY_WAIT) is False
        assert not presence.reachable(name) and presence.reads == reads
        assert asterisk_alive(asterisk) and process.status(s).pid == launcher
        assert connected(ami) and ami.logins == 2
        # Presence subscribed no ARI app to anything.
        assert not [a for a in applications(asterisk) if a["endpoint_ids"]]
    finally:
        phone.close()
        await presence.close()
        proxy.stop()
        await remove(ari, name)
        await ari.close()


# --- the controller: the ACD --------------------------------------------------------------------------

FLOW = """
name: itest-presence
start: answer
nodes:
  answer: {type: answer, next: wait}
  wait: {type: queue, queue: {queue}, announce: {every: 0}, next: done, on_no_agents: done, on_timeout: done}
  done: {type: hangup}
"""


def state(controller: ControllerUnderTest, agent: str) -> dict[str, Any]:
    found: dict[str, Any] = api(controller, "GET", f"/api/agents/{agent}/state")
    return found


async def reachable_is(controller: ControllerUnderTest, agent: str, expected: bool, timeout: float = 20.0) -> None:
    async def probe() -> bool:
        return bool((await asyncio.to_thread(state, controller, agent))["reachable"] is expected)

    await eventually(probe, f"{agent} reachable={expected}", timeout)


async def test_an_agent_whose_phone_is_not_registered_gets_no_offer_and_reachable_follows_the_phone(
    asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path
) -> None:
    kind = controller.kind
    queue, number, caller = f"presq-{kind}", "231" if kind == "sqlite" else "232", f"723{len(kind)}"
    registered, silent = f"pres-a-{kind}", f"pres-b-{kind}"
    passwords = {}
    for endpoint in (registered, silent):
        created = controller.ivrpowers("endpoint", "create", endpoint, "--json")
        passwords[endpoint] = json.loads(created.stdout)["password"]
    flow = tmp_path / "itest-presence.yaml"
    flow.write_text(FLOW.replace("{queue}", queue))
    controller.ivrpowers("flow", "import", str(flow), "--publish")
    controller.ivrpowers("route", "set", number, "itest-presence")
    controller.ivrpowers("queue", "create", queue, "--strategy", "ringall", "--ring-timeout", "30")
    agents = {registered: f"pa-{kind}", silent: f"pb-{kind}"}
    for endpoint, agent in agents.items():
        controller.ivrpowers("agent", "create", agent, "--name", agent, "--endpoint", endpoint, "--queue", queue)
        assert api(controller, "POST", f"/api/agents/{agent}/login")["state"] == "available"
    a, b = agents[registered], agents[silent]
    s = asterisk.settings
    ari = AriClient(s.ari_base_url, s.ari_user, s.ari_secret, f"ivrpowers-test-presence-{kind}", rest_lanes=0)
    phone = await Phone(registered, passwords[registered], asterisk.sip_target).open()
    connects = controller.health()["ari_connects"]
    try:
        await lower_minimum_expiry(ari, registered)
        await reachable_is(controller, a, False)
        await reachable_is(controller, b, False)
        assert await phone.register(300) == 200
        await reachable_is(controller, a, True)

        # A caller waits in a ringall queue: only the agent whose phone can ring is offered the call.
        call = asyncio.create_task(run_call_async(SippCall(number, caller, steps=[Pause(6), Hangup()]),
                                                  asterisk.sip_target))
        await controller.wait_event(caller, "queue_ringing")
        assert (await call).ok
        cdr = await controller.wait_cdr(caller)
        rung = {e["detail"]["agent"] for e in cdr["events"] if e["type"] == "queue_ringing"}
        assert rung == {a}, cdr["events"]
        assert phone.invites == 1
        assert state(controller, b)["reachable"] is False and state(controller, b)["state"] == "available"

        # Unregistered: unreachable; registered again for SHORT s: reachable until it expires.
        assert await phone.register(0) == 200
        await reachable_is(controller, a, False)
        assert await phone.register(SHORT) == 200
        await reachable_is(controller, a, True)
        await reachable_is(controller, a, False, EXPIRY_WAIT)

        # Asterisk outlived the expiry: the same process, the controller's ARI link never dropped,
        # and the controller's app subscribes to no endpoint.
        assert asterisk_alive(asterisk)
        assert controller.health()["ari_connects"] == connects and controller.health()["ari_connected"]
        app = next(x for x in applications(asterisk) if x["name"] == s.ari_app)
        assert app["endpoint_ids"] == []
    finally:
        phone.close()
        for agent in agents.values():
            api(controller, "POST", f"/api/agents/{agent}/logout")
        await ari.close()
