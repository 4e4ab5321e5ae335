"""The call controller on a fake Asterisk: roles, adoption, lost calls by owner, early hangup, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivrpowers.ari import AriClient, Channel
from ivrpowers.calls.controller import CallController
from ivrpowers.calls.identity import call_id_for
from ivrpowers.calls.liveness import Liveness
from ivrpowers.calls.routing import Router
from ivrpowers.config import Settings
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.controllers import ControllerRepository
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowRepository
from ivrpowers.store.models import Base, CallRecord
from ivrpowers.store.routes import RouteRepository
from ivrpowers.store.writer import CdrWriter

from .fake_asterisk import APP, FakeAsterisk, FakeChannel
from .waiting import until

MENU_FLOW = """\
name: menu
start: answer
nodes:
  answer: {type: answer, next: menu}
  menu:
    type: menu
    prompt: [sound:hello-world]
    options: {"1": thanks}
    timeout: 30
    on_invalid: bye
    on_timeout: bye
  thanks: {type: play, media: [sound:demo-thanks], next: bye}
  bye: {type: hangup}
"""


RETRY_FLOW = """\
name: retry
start: answer
nodes:
  answer: {type: answer, next: menu}
  menu:
    type: menu
    prompt: [sound:hello-world]
    options: {"1": thanks}
    timeout: 30
    retries: 1
    on_invalid: invalid
    on_timeout: invalid
  thanks: {type: play, media: [sound:demo-thanks], next: bye}
  invalid: {type: play, media: [sound:invalid], next: bye}
  bye: {type: hangup}
"""


@dataclass
class Node:
    """One controller: its ARI client, writer and liveness on the shared database."""

    controller: CallController
    client: AriClient
    writer: CdrWriter
    liveness: Liveness
    stopped: bool = False

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.controller.shutdown()
        await self.client.close()
        await self.liveness.stop()
        await self.writer.close()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await FlowRepository(database).import_source("menu", MENU_FLOW, publish=True)
    await RouteRepository(database).set("100", "menu")
    await FlowRepository(database).import_source("retry", RETRY_FLOW, publish=True)
    await RouteRepository(database).set("101", "retry")
    yield database
    await database.close()


@pytest.fixture
async def start_node(db: Database, asterisk: FakeAsterisk, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    nodes: list[Node] = []
    count = iter(range(100))

    async def start(name: str | None = None, asterisk_id: str = "ast-test", acd: Any = None,
                    stale_after: float = 0.3) -> Node:
        name = name or f"ctl-{next(count)}"
        settings = Settings(state_dir=tmp_path, ari_app=APP)
        cdrs = CdrRepository(db)
        writer = CdrWriter(cdrs, tmp_path / f"{name}.spool", retry_min=0.01, retry_max=0.05)
        writer.start()
        liveness = Liveness(ControllerRepository(db), name, asterisk_id, every=0.05,
                            stale_after=timedelta(seconds=stale_after))
        liveness.start()
        await asyncio.wait_for(liveness.registered.wait(), 5)
        client = AriClient(asterisk.base_url, "u", "p", APP, reconnect_min=0.01, reconnect_max=0.05)
        controller = CallController(client, settings, Router(RouteRepository(db), FlowRepository(db)), cdrs,
                                    writer, liveness)
        controller.ctx.acd = acd
        controller.install()
        client.start()
        await client.wait_connected(5)
        node = Node(controller, client, writer, liveness)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        await node.stop()  # idempotent: a test that failed midway leaves nothing running


async def record(db: Database, call_id: str) -> CallRecord | None:
    return await CdrRepository(db).get(call_id)


async def ended(db: Database, call_id: str) -> CallRecord:
    await until(lambda: _ended(db, call_id))
    found = await record(db, call_id)
    assert found is not None
    return found


async def _ended(db: Database, call_id: str) -> bool:
    found = await record(db, call_id)
    return found is not None and found.ended_at is not None


def types(rec: CallRecord) -> list[str]:
    return [e.type for e in rec.events]


async def playing(asterisk: FakeAsterisk, channel: FakeChannel) -> None:
    await until(lambda: bool(channel.playbacks))


# -- roles -------------------------------------------------------------------------------------
async def test_an_inbound_caller_runs_the_routed_flow_and_its_record_says_who_and_where(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    node = await start_node("ctl-a")
    channel = await asterisk.call("inbound", "dialed=100", "source=trunk")
    await playing(asterisk, channel)
    await asterisk.press(channel, "1")
    call_id = call_id_for("ast-test", channel.id)
    rec = await ended(db, call_id)
    assert (rec.disposition, rec.asterisk_id, rec.owner) == ("completed", "ast-test", "ctl-a")
    assert rec.channel_id == channel.id
    assert (rec.role, rec.source, rec.dialed, rec.flow_name) == ("inbound", "trunk", "100", "menu")
    assert rec.channels == [{"id": channel.id, "role": "inbound"}]
    assert "menu_selected" in types(rec) and channel.id not in asterisk.channels
    # The flow's own hangup: the cause it asked for, not the soft-hangup flag in the request event.
    assert (rec.hangup_cause, rec.hangup_cause_text) == (16, "Normal call clearing")
    await node.stop()


async def test_the_walking_skeletons_stasis_arguments_are_still_an_inbound_call(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    node = await start_node()
    channel = await asterisk.call("100")
    await playing(asterisk, channel)
    await asterisk.caller_hangs_up(channel, cause=17)
    rec = await ended(db, call_id_for("ast-test", channel.id))
    assert (rec.dialed, rec.flow_name, rec.disposition) == ("100", "menu", "caller_hangup")
    assert (rec.hangup_cause, rec.hangup_cause_text) == (17, "User busy")
    await node.stop()


async def test_an_unknown_role_is_hung_up_and_never_runs_a_flow(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    node = await start_node()
    channel = await asterisk.call("agent_offer", "queue=sales")
    await until(lambda: channel.id not in asterisk.channels)
    assert channel.played == [] and await record(db, call_id_for("ast-test", channel.id)) is None
    await node.stop()


async def test_a_leg_joins_its_interaction_and_a_leg_for_no_interaction_is_hung_up(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    node = await start_node()
    caller = await asterisk.call("inbound", "dialed=100", "source=trunk")
    call_id = call_id_for("ast-test", caller.id)
    await playing(asterisk, caller)
    leg = await asterisk.call("leg", f"interaction={call_id}")
    stray = await asterisk.call("leg", "interaction=nobody")
    await until(lambda: stray.id not in asterisk.channels)
    await asterisk.caller_hangs_up(leg)
    await until(lambda: leg.id not in node.controller.live_calls())
    await asterisk.press(caller, "1")
    rec = await ended(db, call_id)
    assert rec.channels == [{"id": caller.id, "role": "inbound"}, {"id": leg.id, "role": "leg"}]
    assert types(rec).count("leg_joined") == 1 and types(rec).count("leg_left") == 1
    await node.stop()


async def test_a_call_whose_known_flow_starts_by_answering_is_answered_as_it_enters(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    node = await start_node()
    await until(lambda: node.client.rest_over_websocket)
    args = ["inbound", "dialed=100", "source=trunk"]

    def enters() -> tuple[FakeChannel, int]:
        """A channel entering the app: the requests on a websocket right after its StasisStart."""
        fake = FakeChannel(id=f"ast-test-early-{len(asterisk.channels)}", args=args, caller="5551234")
        asterisk.channels[fake.id] = fake
        node.controller.start_channel(Channel.model_validate(fake.json()), args, None, recovered=False)
        return fake, node.client.ws_requests_in_flight

    before = node.client.ws_requests_in_flight
    first, in_flight = enters()
    assert in_flight == before  # its number's flow is not known yet: the session looks it up first
    await playing(asterisk, first)
    before = node.client.ws_requests_in_flight
    second, in_flight = enters()
    assert in_flight == before + 1  # on the wire before the controller's turn ended
    await playing(asterisk, second)
    assert asterisk.requests.count(("POST", f"channels/{second.id}/answer")) == 1
    await asterisk.caller_hangs_up(second)
    rec = await ended(db, call_id_for("ast-test", second.id))
    assert rec.answered_at is not None and types(rec).count("answered") == 1
    await asterisk.caller_hangs_up(first)
    await node.stop()


async def test_a_finished_call_is_freed_without_the_garbage_collector(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    # A reference cycle per call is freed only by a full collection, which walks every object the
    # process has: under load such collections paused the event loop, every call's digits with it.
    node = await start_node()
    channel = await asterisk.call("inbound", "dialed=100", "source=trunk")
    await playing(asterisk, channel)
    call_id = call_id_for("ast-test", channel.id)
    session = node.controller.sessions[call_id]
    parts = [weakref.ref(o) for o in (session, session.call, session.journal, session.channel)]
    del session
    gc.disable()
    try:
        await asterisk.press(channel, "1")
        await ended(db, call_id)
        await until(lambda: call_id not in node.controller.sessions)
        await asyncio.sleep(0)  # the session's task finishes its last step
        assert [ref() for ref in parts] == [None] * len(parts)
    finally:
        gc.enable()
    await node.stop()


async def test_a_caller_gone_during_setup_is_a_caller_hangup_not_an_error(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    node = await start_node()
    channel = await asterisk.call("inbound", "dialed=100", "source=trunk")
    # Gone before the controller's first request reached Asterisk: every request answers 404.
    asterisk.channels.pop(channel.id)
    rec = await ended(db, call_id_for("ast-test", channel.id))
    assert rec.disposition == "caller_hangup" and "error" not in types(rec)
    await node.stop()


# -- adoption and lost calls -----------------------------------------------------------------------
async def test_a_new_controller_adopts_a_live_call_and_takes_ownership(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    first = await start_node("ctl-old")
    channel = await asterisk.call("inbound", "dialed=100", "source=trunk")
    call_id = call_id_for("ast-test", channel.id)
    await playing(asterisk, channel)
    await first.stop()  # like a restart: the call stays in Asterisk
    second = await start_node("ctl-new")
    await until(lambda: call_id in second.controller.sessions)
    await until(lambda: len(channel.played) >= 2)  # the menu's prompt again, from the adopted run
    await asterisk.press(channel, "1")
    rec = await ended(db, call_id)
    assert (rec.disposition, rec.owner, rec.recovered) == ("completed", "ctl-new", False)
    assert types(rec).count("adopted") == 1 and "menu_selected" in types(rec)
    await second.stop()


async def test_an_adopted_menu_keeps_the_attempts_already_used(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    first = await start_node("ctl-1")
    channel = await asterisk.call("inbound", "dialed=101", "source=trunk")
    call_id = call_id_for("ast-test", channel.id)
    await playing(asterisk, channel)
    await asterisk.press(channel, "9")  # invalid: the menu's second and last attempt starts
    await until(lambda: len(channel.played) == 2)
    await first.stop()
    second = await start_node("ctl-2")
    await until(lambda: call_id in second.controller.sessions)
    await until(lambda: len(channel.played) == 3)
    await asterisk.press(channel, "9")  # invalid again: no third attempt after the restart
    rec = await ended(db, call_id)
    assert ["sound:invalid"] in channel.played
    assert [e.detail["attempt"] for e in rec.events if e.type == "menu_invalid"] == [1, 2]
    assert rec.disposition == "completed"


async def test_a_channel_with_no_record_is_adopted_as_recovered(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    channel = await asterisk.call("inbound", "dialed=100", "source=trunk")  # nobody listening yet
    node = await start_node("ctl-b")
    call_id = call_id_for("ast-test", channel.id)
    await playing(asterisk, channel)
    await asterisk.caller_hangs_up(channel)
    rec = await ended(db, call_id)
    assert (rec.recovered, rec.owner, rec.flow_name) == (True, "ctl-b", "menu")
    await node.stop()


class EndedTasks:
    """The ACD as a lost call's closing sees it: which tasks were ended, and why."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []

    def end(self, task_id: str, reason: str) -> None:
        self.ended.append((task_id, reason))


async def _orphan(db: Database, channel_id: str, owner: str | None, asterisk_id: str = "ast-test") -> str:
    call_id = call_id_for(asterisk_id, channel_id)
    await CdrRepository(db).start(id=call_id, asterisk_id=asterisk_id, channel_id=channel_id, owner=owner,
                                  started_at=datetime.now(UTC), dialed="100")
    return call_id


async def test_lost_calls_are_closed_only_when_ours_to_close(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    repo = ControllerRepository(db)
    now = datetime.now(UTC)
    await repo.register("ctl-alive", asterisk_id="ast-test", host="h", pid=1, at=now)
    await repo.register("ctl-stopped", asterisk_id="ast-test", host="h", pid=2, at=now)
    await repo.stopped("ctl-stopped", now)
    alive_owned = await _orphan(db, "ast-test-gone.1", "ctl-alive")
    dead_owned = await _orphan(db, "ast-test-gone.2", "ctl-stopped")
    elsewhere = await _orphan(db, "ast-other-gone.3", "ctl-stopped", asterisk_id="ast-other")

    async def beat() -> None:  # the live owner, beating as a controller does (not at the test's pace)
        while True:
            await repo.heartbeat("ctl-alive", datetime.now(UTC))
            await asyncio.sleep(0.05)

    beating = asyncio.create_task(beat())
    tasks = EndedTasks()
    # Stale after 1.5 s, 30 beats: a loaded machine (CI) once held the test's loop past 0.3 s.
    node = await start_node("ctl-c", acd=tasks, stale_after=1.5)
    rec = await ended(db, dead_owned)
    assert rec.disposition == "ended_unobserved"
    # Its place in a queue, or the agent it held busy, is freed with it.
    await until(lambda: (dead_owned, "lost") in tasks.ended)
    # The live owner keeps its call while its heartbeat is fresh...
    for _ in range(3):
        await node.writer.flush()
        assert (await record(db, alive_owned)).ended_at is None  # type: ignore[union-attr]
    beating.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await beating
    # ...and loses it once the heartbeat goes stale; another Asterisk's calls are never ours to close.
    rec = await ended(db, alive_owned)
    assert rec.disposition == "ended_unobserved"
    assert (await record(db, elsewhere)).ended_at is None  # type: ignore[union-attr]
    assert [task for task, _ in tasks.ended] == [dead_owned, alive_owned]
    await node.stop()


# -- outages and shutdown ----------------------------------------------------------------------
async def test_an_events_outage_mid_prompt_loses_nothing(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    node = await start_node()
    channel = await asterisk.call("inbound", "dialed=100", "source=trunk")
    call_id = call_id_for("ast-test", channel.id)
    await playing(asterisk, channel)
    asterisk.down = True
    await asterisk.drop_websockets()
    await until(lambda: not node.client.is_connected)
    await until(lambda: not channel.playbacks)  # the prompt ends while nobody listens
    asterisk.down = False
    await node.client.wait_connected(5)
    await asterisk.press(channel, "1")
    rec = await ended(db, call_id)
    assert rec.disposition == "completed" and "menu_selected" in types(rec)
    await node.stop()


async def test_application_replaced_makes_the_client_unhealthy_and_it_reconnects(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    node = await start_node()
    await asterisk.send("ApplicationReplaced")
    await until(lambda: node.client.replacements == 1)
    assert node.client.problem is not None or not node.client.is_connected
    await node.client.wait_connected(5)
    assert node.client.problem is None
    await node.stop()


async def test_shutdown_leaves_calls_in_asterisk_even_one_arriving_meanwhile(
        db: Database, asterisk: FakeAsterisk, start_node: Callable[..., Any]) -> None:
    node = await start_node()
    first = await asterisk.call("inbound", "dialed=100", "source=trunk")
    await playing(asterisk, first)
    stopping = asyncio.create_task(node.controller.shutdown())
    late = await asterisk.call("inbound", "dialed=100", "source=trunk")
    await stopping
    await asterisk.send("ChannelDtmfReceived", channel=late.json(), digit="1", duration_ms=100)
    assert node.controller.sessions == {} and not [t for t in node.controller._tasks() if not t.done()]
    assert first.id in asterisk.channels and late.id in asterisk.channels
    assert ("DELETE", f"channels/{first.id}") not in asterisk.requests
    await node.stop()
