"""What the ACD's integration tests share: the REST API, agents' phones (a SIPp UAS registered with
digest auth), callers, and one installation of the queues, agents, phones and route the
`test_queue_*` files use (number 230 to `flows/itest-acd.yaml`, whose caller numbers pick the queue).

Tests wait for what the controller and Asterisk say (CDR events, the agents' and queues' state over
REST, SIPp's message log), never for time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.db import Database

from .conftest import AsteriskUnderTest, ControllerUnderTest, poll
from .sipp import SippCall, SippResult, Step, free_rtp_port, run_call_async
from .test_phones import register
from .uas import SDP, reply

NUMBER = "230"
FLOW = "itest-acd"  # tests/integration/flows/itest-acd.yaml, imported by the controller fixture
PHONES = ("qphone-a", "qphone-b")

# Every queue and agent of the test_queue_* files, each test with queues of its own. Announcements
# off: what a waiting caller hears is the hold music only.
ACD = """
queues:
  - {name: acd-rna, strategy: linear, ring_timeout: 5, wrapup_seconds: 0, announce: {every: 0}}
  - {name: acd-wrap, wrapup_seconds: 3, announce: {every: 0}}
  - {name: acd-wrap-end, wrapup_seconds: 60, announce: {every: 0}}
  - {name: acd-abandon, no_agents: wait, announce: {every: 0}}
  - {name: acd-ring-abandon, wrapup_seconds: 0, announce: {every: 0}}
  - {name: acd-hold, no_agents: wait, announce: {every: 0}}
  - {name: acd-max-wait, no_agents: wait, max_wait: 2, announce: {every: 0}}
  - {name: acd-priority, wrapup_seconds: 0, announce: {every: 0}}
  - {name: acd-restart, wrapup_seconds: 0, announce: {every: 0}}
  - {name: acd-blend, channels: [voice, chat], wrapup_seconds: 0, announce: {every: 0}}
  - {name: acd-sound, no_agents: wait, hold: "sound:queue-periodic-announce", announce: {every: 0}}
agents:
  - {id: rna-a, name: First In Line, endpoint: qphone-a, queues: {acd-rna: 0}}
  - {id: rna-b, name: Second In Line, endpoint: qphone-b, queues: {acd-rna: 1}}
  - {id: wrap, name: Wraps Up, endpoint: qphone-a, queues: [acd-wrap]}
  - {id: wrap-end, name: Ends Wrap-up, endpoint: qphone-a, queues: [acd-wrap-end]}
  - {id: ring-abandon, name: Rings For Nobody, endpoint: qphone-a, queues: [acd-ring-abandon]}
  - {id: priority, name: Serves Priorities, endpoint: qphone-a, queues: [acd-priority]}
  - {id: restart, name: Outlives A Restart, endpoint: qphone-a, queues: [acd-restart]}
  - {id: blend, name: Chats On Calls, endpoint: qphone-a, queues: [acd-blend], blended: true,
     capacity: {chat: 1}}
"""

_installed: dict[str, dict[str, str]] = {}  # controller's database -> phone -> password


def install(controller: ControllerUnderTest) -> dict[str, str]:
    """The phones (`endpoint create`), queues and agents (`acd apply`) and route, once per
    controller database; the phones' passwords (shown once, at creation)."""
    if controller.db_url not in _installed:
        passwords = {}
        for name in PHONES:
            made = json.loads(controller.ivrpowers("endpoint", "create", name, "--json").stdout)
            passwords[name] = made["password"]
        definitions = controller.log.parent / "acd-tests.yaml"
        definitions.write_text(ACD)
        controller.ivrpowers("acd", "apply", str(definitions))
        controller.ivrpowers("route", "set", NUMBER, FLOW)
        _installed[controller.db_url] = passwords
    return _installed[controller.db_url]


def api(controller: ControllerUnderTest, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The controller's REST API with its bearer token; the JSON answer (None when empty)."""
    token = json.loads((Path(controller.env["IVRPOWERS_STATE_DIR"]) / "secrets.json").read_text())["api_token"]
    request = urllib.request.Request(f"http://127.0.0.1:{controller.web_port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


# -- CDR timelines ----------------------------------------------------------------------------

def events(cdr: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in cdr["events"] if e["type"] == type_]


def nodes(cdr: dict[str, Any]) -> list[str]:
    return [e["node"] for e in events(cdr, "node_entered")]


def when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"])


def seconds(later: dict[str, Any], earlier: dict[str, Any]) -> float:
    return (when(later) - when(earlier)).total_seconds()


# -- agents' phones ---------------------------------------------------------------------------

# A UAS's BYE goes to the INVITE's Contact (rrs), From and To swapped.
_BYE = """  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$callee];tag=[pid]p[call_number]
To: [$caller]
[last_Call-ID:]
CSeq: 2 BYE
Contact: <sip:{user}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>"""


def phone_scenario(user: str, talk: float | None, audio: str | None = None) -> str:
    """Every call to the phone rings; with `talk` None it is never answered (each ringing offer
    waits for its CANCEL), else it is answered, plays `audio` (a pcap) if given, and hung up after
    `talk` seconds unless the other side hangs up first. Asterisk's qualify (an OPTIONS with a
    Call-ID of its own, so a call of its own here) is answered: only a phone that answers it rings."""
    if talk is None:
        grab = '<ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>'
        call = "\n".join([
            '  <recv request="CANCEL" timeout="300000"/>',
            reply(user, "200 OK"),
            reply(user, "487 Request Terminated", cseq="CSeq: [$invite_cseq] INVITE"),
            '  <recv request="ACK"/>'])
    else:
        grab = ('<ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>'
                '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee"/>')
        play = f'  <nop><action><exec play_pcap_audio="{audio}"/></action></nop>' if audio else ""
        call = "\n".join([
            reply(user, "200 OK", body=SDP),
            '  <recv request="ACK"/>',
            play,
            f'  <recv request="BYE" timeout="{round(talk * 1000)}" ontimeout="hang_up"/>',
            reply(user, "200 OK", tag=False),
            '  <nop next="done"/>',
            '  <label id="hang_up"/>',
            _BYE.replace("{user}", user)])
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<scenario name="{user} phone">',
        '  <recv request="OPTIONS" optional="true" next="options"/>',
        f'  <recv request="INVITE" rrs="true"><action>{grab}</action></recv>',
        reply(user, "180 Ringing"),
        call,
        '  <nop next="done"/>',
        '  <label id="options"/>',
        reply(user, "200 OK"),
        '  <label id="done"/>',
        "</scenario>", ""])


_MESSAGE = re.compile(r"^UDP message (sent|received)[^\n]*\n\n([^\n]*)", re.M)


class Phone:
    """An agent's phone: `endpoint` registered with its password from a port of its own, and a
    SIPp there acting as `phone_scenario` says, for as many calls as come until `stop`."""

    def __init__(self, asterisk: AsteriskUnderTest, workdir: Path, endpoint: str, password: str,
                 talk: float | None, audio: str | None = None) -> None:
        self.asterisk, self.workdir, self.endpoint, self.password = asterisk, workdir, endpoint, password
        self.scenario = workdir / f"phone-{endpoint}.xml"
        self.scenario.write_text(phone_scenario(endpoint, talk, audio))
        self.messages = self.scenario.with_suffix(".log")
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Phone:
        ok, self.port, log = register(self.asterisk, self.workdir, self.endpoint, self.password)
        assert ok, log
        host, sip_port = self.asterisk.sip_target
        with (self.workdir / f"phone-{self.endpoint}.err").open("wb") as err:
            self.proc = subprocess.Popen(
                ["sipp", f"{host}:{sip_port}", "-sf", str(self.scenario), "-m", "1000", "-i", host,
                 "-p", str(self.port), "-mp", str(free_rtp_port()), "-timeout", "180", "-nostdin",
                 # -aa: what Asterisk sends within a call (UPDATE, INFO) is answered, not taken for a call.
                 "-aa", "-trace_msg", "-message_file", str(self.messages)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        return self

    def stop(self) -> None:
        """Stop the SIPp, and unregister (no qualify to a port nobody listens on)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.port:
            register(self.asterisk, self.workdir, self.endpoint, self.password, expires=0, port=self.port)

    def log(self) -> str:
        return self.messages.read_text(errors="replace") if self.messages.exists() else ""

    def received(self, method: str) -> int:
        """How many `method` requests (or `SIP/2.0 NNN` responses) reached the phone so far."""
        return sum(1 for way, first in _MESSAGE.findall(self.log()) if way == "received" and first.startswith(method))

    def sent(self, first_word: str) -> int:
        return sum(1 for way, first in _MESSAGE.findall(self.log()) if way == "sent" and first.startswith(first_word))


# -- one test's ACD world ---------------------------------------------------------------------

class Rig:
    """One test's phones, agents and callers on the installed queues; `close` stops the phones,
    logs the agents out and ends the calls still up (a failed test leaves nothing behind)."""

    def __init__(self, asterisk: AsteriskUnderTest, controller: ControllerUnderTest, workdir: Path) -> None:
        self.asterisk, self.controller, self.workdir = asterisk, controller, workdir
        self.passwords = install(controller)
        self.phones: list[Phone] = []
        self.agents: list[str] = []
        self.calls: dict[str, asyncio.Task[SippResult]] = {}  # caller number -> its SIPp

    @classmethod
    @asynccontextmanager
    async def open(cls, asterisk: AsteriskUnderTest, controller: ControllerUnderTest,
                   workdir: Path) -> AsyncIterator[Rig]:
        rig = cls(asterisk, controller, workdir)
        try:
            yield rig
        finally:
            await rig.close()

    async def close(self) -> None:
        left = [caller for caller, call in self.calls.items() if not call.done()]
        for call in self.calls.values():
            call.cancel()  # kills its SIPp; a call that ended is unaffected
        await asyncio.gather(*self.calls.values(), return_exceptions=True)
        if left:  # a killed SIPp sends no BYE: its channel would wait in its queue for good
            await asyncio.to_thread(self._hang_up, left)
        for agent in self.agents:
            try:
                self.api("POST", f"/api/agents/{agent}/logout")
            except OSError:
                pass  # the controller is down: the test failed already
        for phone in self.phones:
            await asyncio.to_thread(phone.stop)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return api(self.controller, method, path, body)

    async def phone(self, endpoint: str, talk: float | None) -> Phone:
        phone = Phone(self.asterisk, self.workdir, endpoint, self.passwords[endpoint], talk)
        self.phones.append(phone)
        return await asyncio.to_thread(phone.start)

    def login(self, *agents: str) -> None:
        for agent in agents:
            self.agents.append(agent)
            assert self.api("POST", f"/api/agents/{agent}/login")["state"] == "available"

    def call(self, caller: str, *steps: Step, timeout: float = 60.0) -> asyncio.Task[SippResult]:
        """A SIPp caller from `caller` to the ACD flow, running while the test goes on."""
        task = asyncio.create_task(run_call_async(SippCall(NUMBER, caller, steps=steps),
                                                  self.asterisk.sip_target, timeout))
        self.calls[caller] = task
        return task

    def _hang_up(self, callers: list[str]) -> None:
        for channel in self.asterisk.ari("GET", "/channels"):
            if channel["caller"]["number"] in callers:
                with contextlib.suppress(OSError):
                    self.asterisk.ari("DELETE", f"/channels/{channel['id']}")

    async def finished(self, call: asyncio.Task[SippResult]) -> SippResult:
        result = await call
        assert result.ok, result.describe()
        return result

    def state(self, agent: str) -> dict[str, Any]:
        state: dict[str, Any] = self.api("GET", f"/api/agents/{agent}/state")
        return state

    def now(self, queue: str) -> dict[str, Any]:
        now: dict[str, Any] = self.api("GET", f"/api/queues/{queue}/now")
        return now

    async def wait_state(self, agent: str, state: str, timeout: float = 15.0) -> dict[str, Any]:
        return await self.wait_until(lambda: self.state(agent), lambda s: s["state"] == state,
                                f"agent {agent} {state}", timeout)

    async def wait_waiting(self, queue: str, waiting: int, timeout: float = 15.0) -> dict[str, Any]:
        return await self.wait_until(lambda: self.now(queue), lambda n: n["waiting"] == waiting,
                                f"{waiting} waiting in {queue}", timeout)

    async def wait_until(self, read: Callable[[], dict[str, Any]], ready: Callable[[dict[str, Any]], bool],
                    what: str, timeout: float) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def probe() -> dict[str, Any] | None:
            nonlocal last
            last = await asyncio.to_thread(read)
            return last if ready(last) else None

        found = await poll(probe, timeout)
        assert found is not None, f"not {what} within {timeout}s: {last}"
        return found

    async def wait_phone(self, phone: Phone, method: str, count: int = 1, timeout: float = 15.0) -> None:
        """Until `count` `method` requests reached `phone` (SIPp's own log of what it got)."""
        async def probe() -> bool | None:
            return True if phone.received(method) >= count else None

        assert await poll(probe, timeout), f"{phone.endpoint} got no {method} within {timeout}s:\n{phone.log()[-3000:]}"

    async def joined(self, caller: str) -> dict[str, Any]:
        """The caller's CDR once it waits in its queue."""
        return await self.controller.wait_event(caller, "queue_joined")


async def saved_waiting(controller: ControllerUnderTest, queue: str) -> list[str]:
    """The calls waiting in `queue` in the router state the controller last saved, in arrival order
    (what a controller started now would restore)."""
    db = Database(controller.db_url)
    try:
        saved = await AcdStateRepository(db).load()
    finally:
        await db.close()
    tasks = sorted((saved or {}).get("tasks", []), key=lambda t: t["seq"])
    return [t["task"]["id"] for t in tasks if t["task"]["queue"] == queue and t["status"] == "waiting"]
