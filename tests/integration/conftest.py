"""Integration fixtures: a real Asterisk 22, a real controller process, SQLite and PostgreSQL.

Nothing here skips: if Asterisk cannot be built or started, the tests fail and say why.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ivrpowers.asterisk import process
from ivrpowers.config import PROJECT_ROOT, Settings, load_settings
from ivrpowers.store.cdrs import CdrRepository, call_to_dict
from ivrpowers.store.db import Database
from ivrpowers.store.models import CallRecord

from .postgres import Cluster
from .sipp import free_tcp_port, free_udp_port
from .tcp_proxy import TcpProxy

FLOWS = Path(__file__).parent / "flows"

# Numbers the test flows answer on; 999 stays unrouted.
ROUTES = {"100": "demo", "200": "itest", "201": "itest-long", "202": "itest-wait"}


@dataclass
class AsteriskUnderTest:
    settings: Settings
    env: dict[str, str]

    @property
    def sip_target(self) -> tuple[str, int]:
        return (self.settings.bind_address, self.settings.sip_port)

    def cli(self, command: str) -> str:
        return process.cli(self.settings, command)

    def ari(self, method: str, path: str, body: Any = None) -> Any:
        """One ARI request as the test (Basic auth, JSON body): the JSON answer, None when empty.
        Raises urllib's HTTPError for an error status."""
        s = self.settings
        auth = base64.b64encode(f"{s.ari_user}:{s.ari_secret}".encode()).decode()
        request = urllib.request.Request(f"{s.ari_base_url}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


@contextmanager
def running_asterisk(state: Path, rtp_start: int, media_address: str | None = None) -> Iterator[AsteriskUnderTest]:
    """An Asterisk of its own: state directory (so its own id), ports and RTP range (and browsers'
    media address: the tests in a network namespace of their own, tests/e2e)."""
    # Ports of their own, so a `make run` on the same machine does not collide with the tests.
    env = {
        "IVRPOWERS_STATE_DIR": str(state),
        "IVRPOWERS_HTTP_PORT": str(free_tcp_port()),
        "IVRPOWERS_AMI_PORT": str(free_tcp_port()),
        "IVRPOWERS_SIP_PORT": str(free_udp_port()),
        "IVRPOWERS_RTP_START": str(rtp_start),
        "IVRPOWERS_RTP_END": str(rtp_start + 999),
        **({"IVRPOWERS_MEDIA_ADDRESS": media_address} if media_address else {}),
    }
    # The same settings twice: as arguments for this process, as environment for the controller's.
    settings = load_settings(**{k.removeprefix("IVRPOWERS_").lower(): v for k, v in env.items()})
    try:
        process.start(settings, attached=True)
        yield AsteriskUnderTest(settings, env)
    finally:
        process.stop(settings)


@pytest.fixture(scope="session")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskUnderTest]:
    # Two runs side by side (`make test`) give each its own RTP range.
    rtp_base = int(os.environ.get("IVRPOWERS_TEST_RTP_BASE", "26000"))
    with running_asterisk(tmp_path_factory.mktemp("state"), rtp_base) as running:
        yield running


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[Cluster | str]:
    given = os.environ.get("IVRPOWERS_TEST_PG_URL")
    if given:
        yield given
        return
    cluster = Cluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


T = TypeVar("T")


async def poll(probe: Callable[[], Awaitable[T | None]], timeout: float, interval: float = 0.05) -> T | None:
    """`probe()`'s first answer that is not None (a counter reached, a record written), or None after
    `timeout` s: how integration tests wait for what Asterisk and the controller do, never for time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := await probe()) is not None:
            return found
        await asyncio.sleep(interval)
    return None


@dataclass
class ControllerUnderTest:
    kind: str
    db_url: str
    env: dict[str, str]
    proxy: TcpProxy
    proc: subprocess.Popen[bytes]
    log: Path
    web_port: int

    def ivrpowers(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([sys.executable, "-m", "ivrpowers", *args], env=self.env, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise AssertionError(f"ivrpowers {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=2) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            return json.load(exc)
        except OSError:
            return {}

    def launch(self) -> None:
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ivrpowers", "-v", "run"], env=self.env, stdout=fh, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"controller exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.health().get("ari_connected"):
                return
            time.sleep(0.1)
        raise AssertionError(f"controller did not connect to ARI:\n{self.log_tail()}")

    def crash_and_restart(self) -> None:
        """SIGKILL the controller (no cleanup at all), then start a new one."""
        self.proc.kill()
        self.proc.wait()
        self.launch()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def wait_health(self, ready: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        """Poll /health until `ready(report)`: how tests wait for counters (backlog, reconnects...)."""

        async def probe() -> dict[str, Any] | None:
            report = await asyncio.to_thread(self.health)
            return report if report and ready(report) else None

        if (found := await poll(probe, timeout)) is not None:
            return found
        raise AssertionError(f"health never got there within {timeout}s: {self.health()}\n{self.log_tail()}")

    async def wait_record(
        self, match: Callable[[CallRecord], bool], what: str, timeout: float = 40.0, recent: int = 200
    ) -> dict[str, Any]:
        """Poll the `recent` newest CDRs until one satisfies `match`; `what` names it in the failure."""
        db = Database(self.db_url)

        async def probe() -> dict[str, Any] | None:
            return next((call_to_dict(r) for r in await CdrRepository(db).latest(recent) if match(r)), None)

        try:
            found = await poll(probe, timeout)
        finally:
            await db.close()
        if found is not None:
            return found
        raise AssertionError(f"no {what} within {timeout}s\n{self.log_tail()}")

    async def wait_event(
        self, caller: str, type_: str, node: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The CDR (maybe unfinished) of `caller`'s call once its timeline has that event."""
        return await self.wait_record(
            lambda r: r.caller_number == caller
            and any(e.type == type_ and (node is None or e.node == node) for e in r.events),
            f"{type_} event for caller {caller}", timeout)

    async def wait_cdr(self, caller: str, timeout: float = 40.0) -> dict[str, Any]:
        """The finished CDR of the call placed with caller number `caller`."""
        return await self.wait_record(lambda r: r.caller_number == caller and r.ended_at is not None,
                                      f"finished CDR for caller {caller}", timeout)


def start_controller(kind: str, db_url: str, asterisk: AsteriskUnderTest, log: Path,
                      flows: list[Path] | None = None, routes: dict[str, str] | None = None,
                      settings: dict[str, str] | None = None) -> ControllerUnderTest:
    """A controller on `asterisk` with `flows` published and `routes` set (by default the demo's and
    tests/integration/flows/' on ROUTES), and `settings` (IVRPOWERS_* variables) of its own."""
    proxy = TcpProxy("127.0.0.1", asterisk.settings.http_port).start()
    web_port = free_tcp_port()
    env = {
        **os.environ, **asterisk.env,
        "IVRPOWERS_DB_URL": db_url,
        "IVRPOWERS_WEB_PORT": str(web_port),
        # The controller reaches ARI through a proxy the tests can cut.
        "IVRPOWERS_ARI_URL": f"http://127.0.0.1:{proxy.port}/ari",
        "PYTHONUNBUFFERED": "1",
        **(settings or {}),
    }
    setup = ControllerUnderTest(kind, db_url, env, proxy, None, log, web_port)  # type: ignore[arg-type]
    setup.ivrpowers("db", "upgrade")
    if flows is None:
        flows = [PROJECT_ROOT / "ivrpowers" / "demo" / "demo.yaml", *sorted(FLOWS.glob("*.yaml"))]
    for flow_file in flows:
        setup.ivrpowers("flow", "import", str(flow_file), "--publish")
    for number, flow in (ROUTES if routes is None else routes).items():
        setup.ivrpowers("route", "set", number, flow)
    log.write_bytes(b"")
    setup.launch()
    return setup


def stop_controller(ctl: ControllerUnderTest) -> None:
    if ctl.proc.poll() is None:
        ctl.proc.send_signal(signal.SIGTERM)
        try:
            ctl.proc.wait(15)
        except subprocess.TimeoutExpired:
            ctl.proc.kill()
            ctl.proc.wait()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def controller(
    request: pytest.FixtureRequest, asterisk: AsteriskUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerUnderTest]:
    kind = request.param
    workdir = tmp_path_factory.mktemp(f"controller-{kind}")
    if kind == "sqlite":
        db_url = f"sqlite+aiosqlite:///{workdir / 'ivrpowers.db'}"
    else:
        base = request.getfixturevalue("pg_base_url")
        db_url = base.create_database(f"ivr_{os.getpid()}") if isinstance(base, Cluster) else base
    ctl = start_controller(kind, db_url, asterisk, workdir / "controller.log")
    try:
        yield ctl
    finally:
        stop_controller(ctl)
        ctl.proxy.stop()
