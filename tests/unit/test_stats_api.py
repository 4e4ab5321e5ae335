"""The statistics over REST (`/api/stats`, `/api/queues/{name}/stats`, `/api/agents/{id}/stats`),
against a small stand-in for the running ACD (its statistics, clock and event subscription), and
how the OpenAPI document describes them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivrpowers.acd.definitions import AgentDef, QueueDef
from ivrpowers.acd.events import AcdEvent
from ivrpowers.acd.stats import Stats
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.web.agent_auth import SignedTokens
from ivrpowers.web.app import create_app

TOKEN = "st4ts-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY = 1_700_000_000.0


class FakeAcd:
    """The running ACD as the web app sees it: `AcdRuntime` (unused here) and `LiveAcd`."""

    def __init__(self) -> None:
        self.stats = Stats(window=900.0)
        self.stats.configure(sla={"support": 20.0, "sales": 30.0},
                             members={"support": ["ana", "bo"], "sales": ["bo"]})
        self.stats.new_day(DAY)
        self.now = DAY
        self.subscribers: list[Callable[[AcdEvent], None]] = []

    def clock(self) -> float:
        return self.now

    def subscribe(self, subscriber: Callable[[AcdEvent], None]) -> Callable[[], None]:
        self.subscribers.append(subscriber)
        return lambda: self.subscribers.remove(subscriber)

    def emit(self, kind: Any, at: float, queue: str | None = None, task: str | None = None,
             agent: str | None = None, **detail: Any) -> AcdEvent:
        """As the service does: the statistics first, then every subscriber."""
        self.now = DAY + at
        event = AcdEvent(kind, self.now, queue=queue, task=task, agent=agent, detail=detail)
        self.stats.feed(event)
        for subscriber in list(self.subscribers):
            subscriber(event)
        return event

    async def reload(self) -> None:
        pass

    def agent_event(self, agent_id: str, event: str, reason: str | None = None) -> None:
        pass

    def agent_state(self, agent_id: str) -> dict[str, Any]:
        return {"agent": agent_id, "state": "logged_out"}

    def queue_now(self, queue: str) -> dict[str, Any]:
        return {"queue": queue, "waiting": 0, "longest_wait": 0.0, "agents": {}}


def busy_morning(acd: FakeAcd) -> None:
    acd.emit("agent_state", 0, agent="ana", old="logged_out", new="available", reason=None)
    acd.emit("task_joined", 10, "support", "t1")
    acd.emit("task_answered", 15, "support", "t1", "ana", wait=5)
    acd.emit("agent_state", 15, agent="ana", old="available", new="busy", reason=None)
    acd.emit("task_ended", 75, "support", "t1", "ana", outcome="handled", wait=5, talk=60)
    acd.emit("task_joined", 80, "support", "t2")
    acd.emit("task_ended", 92, "support", "t2", outcome="abandoned", wait=12)
    acd.emit("task_joined", 100, "support", "t3")
    acd.now = DAY + 130


class Health:
    def __init__(self) -> None:
        self.report: dict[str, object] = {"status": "ok", "problems": [], "active_calls": 3, "cdr_backlog": 7,
                                          "cdr_write_failures": 0, "ari_connected": True}

    def health(self) -> dict[str, object]:
        return self.report


async def app_with(tmp_path: Path, acd: FakeAcd | None, health: Health | None = None, token: str = TOKEN,
                   tokens: SignedTokens | None = None) -> tuple[web.Application, Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'stats.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    repo = AcdRepository(db)
    for name in ("support", "sales", "fresh"):
        await repo.put_queue(QueueDef(name=name))
    await repo.put_agent(AgentDef(id="ana", name="Ana", endpoint="agent1", queues={"support": 0}))
    await repo.put_agent(AgentDef(id="cy", name="Cy", endpoint="agent3"))
    app = create_app(health=health or Health(), cdrs=CdrRepository(db), api_token=token, acd=repo,
                     acd_runtime=acd, agent_tokens=tokens)
    return app, db


@pytest.fixture
def acd() -> FakeAcd:
    return FakeAcd()


@pytest.fixture
async def client(tmp_path: Path, acd: FakeAcd) -> AsyncIterator[TestClient[Any, Any]]:
    app, db = await app_with(tmp_path, acd)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await db.close()


async def get(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    resp = await client.get(path, headers=AUTH)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_a_queue_s_figures_are_the_running_acd_s(client: TestClient[Any, Any], acd: FakeAcd) -> None:
    busy_morning(acd)
    support = await get(client, "/api/queues/support/stats")
    assert support == acd.stats.queue("support", DAY + 130)
    assert (support["waiting"], support["longest_wait"], support["agents"]["available"]) == (1, 30.0, 0)
    day = support["day"]
    assert (day["offered"], day["answered"], day["abandoned"], day["handled"]) == (3, 1, 1, 1)
    assert (day["service_level"], day["abandon_rate"], day["asa"], day["aht"]) == (0.5, 0.5, 5.0, 60.0)
    assert support["window"]["seconds"] == 900.0 and support["day"]["since"] == DAY


async def test_everything_at_once_and_agents(client: TestClient[Any, Any], acd: FakeAcd) -> None:
    busy_morning(acd)
    everything = await get(client, "/api/stats")
    assert everything["at"] == DAY + 130 and set(everything["queues"]) == {"support", "sales"}
    assert set(everything["agents"]) == {"ana", "bo"}
    ana = await get(client, "/api/agents/ana/stats")
    assert (ana["state"], ana["time_in_state"], ana["day"]["handled"], ana["day"]["talk_time"]) == ("busy", 115.0,
                                                                                                   1, 60.0)


async def test_unknown_queues_and_agents_are_404_and_stored_ones_not_yet_seen_are_zeros(
        client: TestClient[Any, Any]) -> None:
    assert (await get(client, "/api/queues/nope/stats", 404))["error"] == "there is no queue named 'nope'"
    assert (await get(client, "/api/agents/nobody/stats", 404))["error"] == "there is no agent 'nobody'"
    fresh = await get(client, "/api/queues/fresh/stats")  # stored a moment ago: the ACD has not heard yet
    assert (fresh["waiting"], fresh["day"]["offered"], fresh["day"]["service_level"]) == (0, 0, None)
    cy = await get(client, "/api/agents/cy/stats")
    assert (cy["state"], cy["queues"], cy["day"]["handled"]) == ("logged_out", [], 0)
    for path in ("/api/stats", "/api/queues/support/stats", "/api/agents/ana/stats"):
        assert (await client.get(path)).status == 401


async def test_the_document_describes_the_answers(client: TestClient[Any, Any], acd: FakeAcd) -> None:
    busy_morning(acd)
    document = await get(client, "/api/openapi.json")
    paths = document["paths"]
    assert {"/api/stats", "/api/queues/{name}/stats", "/api/agents/{agent_id}/stats", "/api/events",
            "/metrics"} <= set(paths)
    assert set(paths["/api/queues/{name}/stats"]["get"]["responses"]) == {"200", "401", "404"}
    schemas = document["components"]["schemas"]
    queue, agent = schemas["QueueStats"], schemas["AgentStats"]
    support = await get(client, "/api/queues/support/stats")
    # Every figure the API gives is described, and every described one is given.
    assert set(queue["required"]) == set(queue["properties"]) == set(support)
    for period in ("day", "window"):
        assert set(queue["properties"][period]["required"]) == set(support[period])
    assert set(queue["properties"]["agents"]["required"]) == set(support["agents"])
    ana = await get(client, "/api/agents/ana/stats")
    assert set(agent["required"]) == set(ana) and set(agent["properties"]["day"]["required"]) == set(ana["day"])


async def test_without_a_live_acd_there_are_no_statistics_routes(tmp_path: Path) -> None:
    app, db = await app_with(tmp_path, None)
    async with TestClient(TestServer(app)) as test_client:
        assert (await test_client.get("/api/stats", headers=AUTH)).status == 404
        assert (await test_client.get("/metrics", headers=AUTH)).status == 200
    await db.close()
