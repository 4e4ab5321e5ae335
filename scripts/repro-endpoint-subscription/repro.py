"""Asterisk 22.10 dies (SIGSEGV) at a phone's registration expiry after an ARI app subscribed to `endpoint:`
was reactivated and subscribed again, then went away. See README.md beside this file.

Starts this project's Asterisk (ivrpowers.asterisk.process, as the integration tests do), plays one story
on an ARI app `repro`, registers a phone over raw UDP (digest auth, a short expiry), lets the
registration expire, and says whether Asterisk is still there.

    .venv/bin/python scripts/repro-endpoint-subscription/repro.py                  # reproduces
    .venv/bin/python scripts/repro-endpoint-subscription/repro.py --gdb            # + where it crashes
    .venv/bin/python scripts/repro-endpoint-subscription/repro.py --story plain    # survives
    .venv/bin/python scripts/repro-endpoint-subscription/repro.py --source endpoint:PJSIP/repro1  # survives

Exit status: 0 Asterisk survived, 1 it is gone, 2 the setup itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ivrpowers.asterisk import process
from ivrpowers.config import load_settings

APP = "repro"
DYNAMIC = "repro1"  # the endpoint made over ARI when --endpoint dynamic


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def say(*parts: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)


# -- a phone, in raw UDP ----------------------------------------------------------------------------
class Phone:
    """Just enough of a SIP UA to REGISTER with digest auth and to answer OPTIONS (qualify)."""

    def __init__(self, user: str, password: str, server: tuple[str, int], answer_options: bool) -> None:
        self.user, self.password, self.server = user, password, server
        self.answer_options = answer_options
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.call_id = f"{random.getrandbits(64):x}@repro"
        self.cseq = 0

    def _request(self, expires: int, auth: str = "") -> str:
        self.cseq += 1
        host, port = self.server
        return (f"REGISTER sip:{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{random.getrandbits(48):x}\r\n"
                f"From: <sip:{self.user}@{host}>;tag={random.getrandbits(32):x}\r\n"
                f"To: <sip:{self.user}@{host}>\r\n"
                f"Call-ID: {self.call_id}\r\nCSeq: {self.cseq} REGISTER\r\n"
                f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>\r\n"
                f"{auth}Max-Forwards: 70\r\nExpires: {expires}\r\nUser-Agent: repro-phone\r\n"
                "Content-Length: 0\r\n\r\n")

    def _reply(self, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65535).decode(errors="replace")
            if data.startswith("SIP/2.0"):
                return data
            self._answer(data)  # a qualify OPTIONS may come first
        raise TimeoutError("no reply to REGISTER")

    def _answer(self, request: str) -> None:
        if not request.startswith("OPTIONS") or not self.answer_options:
            return
        keep = [line for line in request.split("\r\n")
                if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
        self.sock.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode(),
                         self.server)

    def register(self, expires: int) -> int:
        """REGISTER (challenged, then with credentials); the final status code."""
        self.sock.sendto(self._request(expires).encode(), self.server)
        reply = self._reply()
        status = int(reply.split()[1])
        if status != 401:
            return status
        challenge = re.search(r"^WWW-Authenticate:\s*Digest\s+(.*)$", reply, re.M | re.I)
        assert challenge, reply
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.group(1)))
        host, port = self.server
        uri = f"sip:{host}:{port}"
        ha1 = md5(f"{self.user}:{params['realm']}:{self.password}")
        ha2 = md5(f"REGISTER:{uri}")
        auth = (f'Authorization: Digest username="{self.user}", realm="{params["realm"]}", '
                f'nonce="{params["nonce"]}", uri="{uri}", algorithm=MD5, ')
        if "qop" in params:
            cnonce, nc = f"{random.getrandbits(32):x}", "00000001"
            response = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
            auth += f'qop=auth, nc={nc}, cnonce="{cnonce}", '
        else:
            response = md5(f"{ha1}:{params['nonce']}:{ha2}")
        if "opaque" in params:
            auth += f'opaque="{params["opaque"]}", '
        auth += f'response="{response}"\r\n'
        self.sock.sendto(self._request(expires, auth).encode(), self.server)
        return int(self._reply().split()[1])

    def serve(self, stop: threading.Event) -> None:
        """Answer what Asterisk sends meanwhile (its qualify), until `stop`."""
        self.sock.settimeout(0.2)
        while not stop.is_set():
            try:
                self._answer(self.sock.recv(65535).decode(errors="replace"))
            except TimeoutError:
                continue


# -- ARI ----------------------------------------------------------------------------------------------
async def make_dynamic_endpoint(http: aiohttp.ClientSession, base: str, password: str, min_expiry: int) -> None:
    """A phone made at run time (as `ivrpowers endpoint create` does), whose AOR accepts a short expiry."""
    objects = [
        ("auth", [("auth_type", "userpass"), ("username", DYNAMIC), ("password", password)]),
        ("aor", [("max_contacts", "1"), ("remove_existing", "yes"), ("qualify_frequency", "30"),
                 ("minimum_expiration", str(min_expiry)), ("default_expiration", str(min_expiry))]),
        ("endpoint", [("transport", "transport-udp"), ("context", "from-agents"), ("disallow", "all"),
                      ("allow", "ulaw"), ("auth", DYNAMIC), ("aors", DYNAMIC), ("identify_by", "username")]),
    ]
    for kind, fields in objects:
        body = {"fields": [{"attribute": k, "value": v} for k, v in fields]}
        async with http.put(f"{base}/asterisk/config/dynamic/res_pjsip/{kind}/{DYNAMIC}", json=body) as resp:
            if resp.status != 200:
                raise RuntimeError(f"PUT {kind}/{DYNAMIC}: {resp.status} {await resp.text()}")


async def wait_for(probe: Callable[[], Awaitable[str | None]], value: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await probe() != value:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {value} within {timeout} s")
        await asyncio.sleep(0.05)


async def contact_reachable(events: list[dict[str, Any]]) -> str:
    return "yes" if any(e.get("contact_info", {}).get("contact_status") == "Reachable" for e in events) else "no"


async def endpoint_state(http: aiohttp.ClientSession, base: str, user: str) -> str | None:
    try:
        async with http.get(f"{base}/endpoints/PJSIP/{user}", timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return str((await resp.json()).get("state")) if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


def alive(pid: int) -> bool:
    """Is Asterisk's process there (not gone, not a zombie)? Asked of the kernel, not of ARI: a process
    stopped in gdb does not answer ARI and is still alive."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def attach_gdb(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """gdb attached to Asterisk: on a fatal signal it writes every thread's backtrace to `out`."""
    if shutil.which("gdb") is None:
        say("gdb not installed: no backtrace (apt-get install gdb)")
        return None
    early = [f"set sysroot /proc/{pid}/root", "set auto-load safe-path /", "set pagination off",
             "set confirm off"]
    # Asterisk's own signals, and glibc's thread signals (SIG32/33): pass them on without stopping.
    quiet = [f"handle {sig} nostop noprint pass"
             for sig in ("SIGPIPE", "SIGUSR1", "SIGURG", "SIGCHLD", "SIGWINCH", "SIG32", "SIG33", "SIGHUP")]
    late = [*quiet, "continue", "p $_siginfo.si_signo", "p $_siginfo._sifields._sigfault.si_addr",
            "info symbol $pc", "x/6i $pc", "info registers", "bt 12", "info proc mappings",
            "thread apply all bt 8", "detach", "quit"]
    argv = ["gdb", "-q", "-nx", "-batch"]
    for command in early:
        argv += ["-iex", command]
    argv += ["-p", str(pid)]
    for command in late:
        argv += ["-ex", command]
    fh = out.open("wb")
    return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def where(report: str) -> str | None:
    """The faulting instruction as `object+offset` (the binaries carry no debug symbols; see README.md)."""
    pc = re.search(r"^=> (0x[0-9a-f]+)", report, re.M)
    if pc is None:
        return None
    address = int(pc.group(1), 16)
    for start, end, offset, path in re.findall(
            r"^\s*(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+\S+\s+(/\S+)$", report, re.M):
        if int(start, 16) <= address < int(end, 16):
            base = int(start, 16) - int(offset, 16)
            return f"{path.split('/merged', 1)[-1]}+{address - base:#x}"
    return hex(address)


def asterisk_pid(launcher: int) -> int:
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    return int(children[0]) if children else launcher


class App:
    """An ARI application: its events websocket, and subscriptions made over REST."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.events: list[dict[str, Any]] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.ws = ws = await self.http.ws_connect(
            f"{self.base.replace('http', 'ws', 1)}/events?app={APP}&subscribeAll=false", compress=0,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0))
        self.reader = asyncio.create_task(self._read(ws))
        say(f"app {APP}: events websocket open")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(msg.data)
                self.events.append(event)
                endpoint = event.get("endpoint", {})
                say("  ARI event", event.get("type"), endpoint.get("resource"), endpoint.get("state"),
                    json.dumps(event.get("contact_info") or event.get("peer") or {}))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None
            say(f"app {APP}: events websocket closed")
        if self.reader is not None:
            await self.reader

    async def subscription(self, method: str, source: str) -> None:
        url = f"{self.base}/applications/{APP}/subscription"
        async with self.http.request(method, url, params={"eventSource": source}) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"{method} subscription {source}: {resp.status} {body}")
        say(f"app {APP}: {method} eventSource={source} -> endpoint_ids {body['endpoint_ids']}, "
            f"bridge_ids {body['bridge_ids']}")


async def story(app: App, http: aiohttp.ClientSession, base: str, args: argparse.Namespace) -> None:
    """What the app does before the phone's registration expires (see README.md)."""
    await app.connect()
    if args.story == "control":
        return
    await app.subscription("POST", args.source)
    if args.story == "plain":
        return
    # reconnect: what a controller does across a restart while a call (here: a bridge) keeps its app.
    async with http.post(f"{base}/bridges", params={"type": "mixing"}) as resp:
        bridge = (await resp.json())["id"]
    await app.subscription("POST", f"bridge:{bridge}")
    await app.close()
    await app.connect()
    await app.subscription("POST", args.source)  # what Presence did after every (re)connect
    async with http.delete(f"{base}/bridges/{bridge}") as resp:
        say(f"bridge {bridge} deleted: {resp.status}")


async def run(args: argparse.Namespace) -> int:
    state = Path(tempfile.mkdtemp(prefix="repro-endpoint-sub-"))
    env = {"state_dir": str(state), "http_port": str(free_port(socket.SOCK_STREAM)),
           "ami_port": str(free_port(socket.SOCK_STREAM)), "sip_port": str(free_port(socket.SOCK_DGRAM)),
           "rtp_start": "41000", "rtp_end": "41999"}
    settings = load_settings(**env)
    # Whatever Asterisk dumps, let it: the launcher and Asterisk inherit this limit.
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    started = process.start(settings, attached=True)
    assert started.pid is not None
    pid = asterisk_pid(started.pid)
    say(f"Asterisk {started.version} up, pid {pid}; state {state}")
    gdb = attach_gdb(pid, state / "gdb.txt") if args.gdb else None
    base = settings.ari_base_url
    token = base64.b64encode(f"{settings.ari_user}:{settings.ari_secret}".encode()).decode()
    survived = False
    stop = threading.Event()  # ends the phone's thread, whatever happens
    app_events: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as http:
            app = App(http, base)
            app_events = app.events
            if args.endpoint == "dynamic":
                user, password = DYNAMIC, "repro-secret"
                await make_dynamic_endpoint(http, base, password, args.expires)
            else:
                user, password = "agent1", settings.secrets()["agent_password"]
            await story(app, http, base, args)
            phone = Phone(user, password, (settings.bind_address, settings.sip_port), not args.silent)
            status = phone.register(args.expires)
            say(f"REGISTER {user} Expires {args.expires}: {status}")
            if status != 200:
                return 2
            server = asyncio.get_running_loop().run_in_executor(None, phone.serve, stop)
            if not args.keep_app:
                # Once Asterisk has told the app the phone is reachable (its qualify answered), the app
                # goes away: nothing more happens until the registration expires.
                await wait_for(lambda: endpoint_state(http, base, user), "online", 10)
                if args.story != "control":  # and the app has heard it all: the qualify's answer last
                    await wait_for(lambda: contact_reachable(app.events), "yes", 10)
                await app.close()
            # Asterisk removes an expired contact on its own schedule (res_pjsip's expiry check, every
            # 30 s by default), not at the second it expires: wait until the endpoint says offline,
            # a question that subscribes to nothing.
            gone_at = None
            deadline = time.monotonic() + args.expires + 60
            while time.monotonic() < deadline and alive(pid):
                if gone_at is None and await endpoint_state(http, base, user) == "offline":
                    gone_at = time.monotonic()
                    say(f"{user} is offline (its contact was removed); watching Asterisk {args.grace} s more")
                if gone_at is not None and time.monotonic() > gone_at + args.grace:
                    break
                await asyncio.sleep(0.5)
            survived = alive(pid)
            stop.set()
            await server
            if app.reader is not None:
                app.reader.cancel()
    finally:
        stop.set()
        if alive(pid):
            process.stop(settings)
        if gdb is not None:
            try:
                gdb.wait(20)
            except subprocess.TimeoutExpired:
                gdb.kill()
    types = [e.get("type") for e in app_events]
    say("Asterisk", "SURVIVED" if survived else "IS GONE", "the registration's expiry;",
        f"the app got {types.count('PeerStatusChange')} PeerStatusChange, "
        f"{types.count('ContactStatusChange')} ContactStatusChange, "
        f"{types.count('EndpointStateChange')} EndpointStateChange events")
    log = state / "asterisk" / "log"
    for name in ("messages.log", "console.log"):
        path = log / name
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-args.tail:]
            say(f"--- last lines of {path}")
            print("\n".join(tail))
    if gdb is not None:
        say(f"--- gdb: {state / 'gdb.txt'}")
        report = (state / "gdb.txt").read_text(errors="replace")
        print(report[report.find("received signal"):][:1500])
        say("crashed at", where(report) or "(no fatal signal seen)")
    cores = [p for p in state.rglob("core*") if p.is_file()]
    say("core files:", [str(p) for p in cores] or "none")
    return 0 if survived else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--story", choices=("control", "plain", "reconnect"), default="reconnect",
                        help="what the app does before the registration (README.md)")
    parser.add_argument("--source", default="endpoint:",
                        help="event source: endpoint: (every endpoint) or endpoint:PJSIP/<name>")
    parser.add_argument("--keep-app", action="store_true",
                        help="keep the app's websocket open until the end (by default it is closed once "
                             "the phone is reachable, and the app goes away)")
    parser.add_argument("--endpoint", choices=("dynamic", "agent1"), default="dynamic",
                        help="dynamic: made over ARI with a short minimum expiry; agent1: pjsip.conf's "
                             "(minimum expiry 60 s)")
    parser.add_argument("--expires", type=int, default=None, help="registration expiry (s)")
    parser.add_argument("--grace", type=int, default=10,
                        help="seconds to watch Asterisk after the contact is removed")
    parser.add_argument("--silent", action="store_true", help="do not answer Asterisk's qualify OPTIONS")
    parser.add_argument("--gdb", action="store_true", help="attach gdb and print the backtrace of a crash")
    parser.add_argument("--tail", type=int, default=40, help="lines of Asterisk's logs to print")
    args = parser.parse_args()
    if args.expires is None:
        args.expires = 5 if args.endpoint == "dynamic" else 60
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
