"""The `/api/events` websocket: a snapshot then every ACD event in order, filtered as asked; the
token as a header or a subprotocol (never in a log line); a client too slow for the ACD is dropped
with a reason and never slows it; clients are closed when the app stops. A wallboard's mode:
snapshots only, fresh after changes; a wallboard's view token gets that and nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from ivrpowers.web.agent_auth import SignedTokens
from ivrpowers.web.events_ws import QUEUE_SIZE, TOO_SLOW

from .test_stats_api import AUTH, DAY, TOKEN, FakeAcd, app_with, busy_morning
from .waiting import until

BROWSER = ("ivrpowers.events", f"bearer.{TOKEN}")


@pytest.fixture
def acd() -> FakeAcd:
    return FakeAcd()


@pytest.fixture
async def client(tmp_path: Path, acd: FakeAcd) -> AsyncIterator[TestClient[Any, Any]]:
    app, db = await app_with(tmp_path, acd)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await db.close()


async def next_json(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await ws.receive(timeout=5)
    assert msg.type == WSMsgType.TEXT, msg
    return msg.json()


async def test_a_snapshot_then_every_event_in_order(client: TestClient[Any, Any], acd: FakeAcd) -> None:
    busy_morning(acd)
    async with client.ws_connect("/api/events", headers=AUTH) as ws:
        snapshot = await next_json(ws)
        assert snapshot == {"kind": "snapshot", "at": DAY + 130, "queues": acd.stats.queues(DAY + 130),
                            "agents": acd.stats.agents(DAY + 130)}
        await until(lambda: acd.subscribers)
        sent = [acd.emit("task_offered", 131, "support", "t3", "ana", expires=DAY + 151),
                acd.emit("offer_ended", 135, "support", "t3", "ana", outcome="answered", ring=4),
                acd.emit("task_answered", 135, "support", "t3", "ana", wait=35)]
        assert [await next_json(ws) for _ in sent] == [event.to_dict() for event in sent]
    await until(lambda: not acd.subscribers)  # the client left: unsubscribed


async def test_filters_by_queue_agent_and_kind(client: TestClient[Any, Any], acd: FakeAcd) -> None:
    async with client.ws_connect("/api/events?queue=sales&kinds=task_joined,agent_state", headers=AUTH) as sales, \
            client.ws_connect("/api/events?agent=ana&agent=cy", headers=AUTH) as ana:
        first = await next_json(sales)
        assert set(first["queues"]) == {"sales"} and set(first["agents"]) == {"bo"}  # sales' members
        assert set((await next_json(ana))["agents"]) == {"ana"}
        await until(lambda: len(acd.subscribers) == 2)
        acd.emit("task_joined", 1, "support", "s1")
        acd.emit("agent_state", 2, agent="ana", old="logged_out", new="available", reason=None)
        acd.emit("task_offered", 3, "sales", "b1", "bo")
        wanted = [acd.emit("agent_state", 4, agent="bo", old="logged_out", new="available", reason=None),
                  acd.emit("task_joined", 5, "sales", "b2")]
        ana_wanted = acd.emit("task_offered", 6, "support", "s1", "ana")
        assert [await next_json(sales) for _ in wanted] == [e.to_dict() for e in wanted]
        assert (await next_json(ana))["detail"]["new"] == "available"
        assert await next_json(ana) == ana_wanted.to_dict()


async def test_a_browser_gives_the_token_as_a_subprotocol_and_no_log_line_holds_it(
        client: TestClient[Any, Any], acd: FakeAcd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with client.ws_connect("/api/events", protocols=BROWSER) as ws:
        assert ws.protocol == "ivrpowers.events"  # the token's subprotocol is never echoed
        assert (await next_json(ws))["kind"] == "snapshot"
    refused = [(("ivrpowers.events", "bearer.wrong"), 401), ((f"bearer.{TOKEN}",), 400),
               ((f"bearer.{TOKEN}x", "ivrpowers.events"), 401), (("ivrpowers.events",), 401)]
    for protocols, status in refused:
        with pytest.raises(aiohttp.WSServerHandshakeError) as failed:
            async with client.ws_connect("/api/events", protocols=protocols):
                pass
        assert failed.value.status == status, protocols
    # Not on another path: the subprotocol is the events websocket's way only.
    resp = await client.get("/api/stats", headers={"Sec-WebSocket-Protocol": ", ".join(BROWSER)})
    assert resp.status == 401
    assert caplog.records and not [r for r in caplog.records if TOKEN in r.getMessage()]


async def test_what_is_not_a_websocket_or_asks_for_no_such_kind_is_refused(client: TestClient[Any, Any]) -> None:
    plain = await client.get("/api/events", headers=AUTH)
    assert plain.status == 426 and "websocket" in (await plain.json())["error"]
    bad = await client.get("/api/events?kinds=task_joined,gossip", headers=AUTH)
    assert bad.status == 400 and "'gossip'" in (await bad.json())["error"]
    assert (await client.get("/api/events")).status == 401


async def test_a_client_that_falls_behind_is_dropped_and_the_acd_never_waits(
        client: TestClient[Any, Any], acd: FakeAcd) -> None:
    async with client.ws_connect("/api/events", headers=AUTH) as ws:
        assert (await next_json(ws))["kind"] == "snapshot"
        await until(lambda: acd.subscribers)
        # A burst within one turn of the event loop: more than a client may be behind.
        for i in range(QUEUE_SIZE + 50):
            acd.emit("task_joined", 1 + i * 0.001, "support", f"burst{i}")
        received = 0
        while (msg := await ws.receive(timeout=5)).type == WSMsgType.TEXT:
            received += 1
        assert msg.type == WSMsgType.CLOSE and (msg.data, msg.extra) == (TOO_SLOW, "too slow")
        assert received <= QUEUE_SIZE
    await until(lambda: not acd.subscribers)
    assert acd.stats.queue("support", acd.now)["day"]["offered"] == QUEUE_SIZE + 50


async def test_clients_are_told_when_the_app_stops(client: TestClient[Any, Any], acd: FakeAcd) -> None:
    async with client.ws_connect("/api/events", headers=AUTH) as ws:
        assert (await next_json(ws))["kind"] == "snapshot"
        await client.app.shutdown()
        msg = await ws.receive(timeout=5)
        assert msg.type == WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.GOING_AWAY
    await until(lambda: not acd.subscribers)


async def test_a_wallboard_gets_fresh_snapshots_after_changes_and_no_event(
        client: TestClient[Any, Any], acd: FakeAcd) -> None:
    async with client.ws_connect("/api/events?mode=stats&queue=support", headers=AUTH) as ws:
        first = await next_json(ws)
        assert first["kind"] == "snapshot" and first["queues"]["support"]["waiting"] == 0
        await until(lambda: acd.subscribers)
        for i in range(40):  # a burst in one turn of the loop
            acd.emit("task_joined", 10 + i * 0.01, "support", f"w{i}")
        acd.emit("task_joined", 11, "sales", "elsewhere")  # filtered out: changes nothing here
        fresh = await next_json(ws)
        assert fresh["kind"] == "snapshot" and set(fresh["queues"]) == {"support"}
        assert fresh["queues"]["support"]["waiting"] == 40  # one snapshot for the burst, not forty
        acd.emit("task_answered", 12, "support", "w0", "ana", wait=2)
        assert (await next_json(ws))["queues"]["support"]["waiting"] == 39


async def test_a_view_token_reads_statistics_live_and_nothing_else(tmp_path: Path, acd: FakeAcd) -> None:
    tokens = SignedTokens(b"k" * 32)
    app, db = await app_with(tmp_path, acd, tokens=tokens)
    view, _ = tokens.views().issue("lobby")
    agent, _ = tokens.issue("ana")
    async with TestClient(TestServer(app)) as client:
        seen = {"Authorization": f"Bearer {view}"}
        assert (await client.get("/api/stats", headers=seen)).status == 200
        for path in ("/api/calls", "/api/queues", "/api/agents/ana", "/api/chats", "/api/cdrs"):
            assert (await client.get(path, headers=seen)).status == 401, path
        assert (await client.post("/api/agents/ana/ready", headers=seen)).status == 401
        # Asking for events gets statistics all the same: a screen on a wall shows no caller's details.
        async with client.ws_connect("/api/events?mode=events", protocols=("ivrpowers.events", f"bearer.{view}")) as ws:
            assert (await next_json(ws))["kind"] == "snapshot"
            await until(lambda: acd.subscribers)
            acd.emit("task_joined", 20, "support", "v1", customer={"number": "5551234"})
            fresh = await next_json(ws)
            assert fresh["kind"] == "snapshot" and "5551234" not in str(fresh)
        # The kinds do not pass for one another.
        assert tokens.views().verify(agent) is None and tokens.verify(view) is None
        forged = view.replace("view.", "agent.", 1)
        assert (await client.get("/api/agents/lobby", headers={"Authorization": f"Bearer {forged}"})).status == 401
    await db.close()


async def test_no_such_mode_is_refused(client: TestClient[Any, Any]) -> None:
    bad = await client.get("/api/events?mode=gossip", headers=AUTH)
    assert bad.status == 400 and "'gossip'" in (await bad.json())["error"]
