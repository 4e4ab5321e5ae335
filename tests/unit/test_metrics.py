"""`/metrics`: Prometheus' text format, read by Prometheus' own parser, with the bearer token; the
queues' and agents' figures as the statistics have them at scrape time, and the controller's live
calls and CDR backlog from its health figures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from .test_stats_api import AUTH, DAY, FakeAcd, Health, app_with, busy_morning


@pytest.fixture
def acd() -> FakeAcd:
    return FakeAcd()


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
async def client(tmp_path: Path, acd: FakeAcd, health: Health) -> AsyncIterator[TestClient[Any, Any]]:
    app, db = await app_with(tmp_path, acd, health)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await db.close()


async def scrape(client: TestClient[Any, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await client.get("/metrics", headers=AUTH)
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(await resp.text()) for sample in family.samples}


async def test_queues_agents_and_the_controller_as_prometheus_reads_them(
        client: TestClient[Any, Any], acd: FakeAcd, health: Health) -> None:
    busy_morning(acd)
    got = await scrape(client)

    def queue(name: str, queue: str = "support", **labels: str) -> float | None:
        return got.get((f"ivrpowers_queue_{name}", tuple(sorted({"queue": queue, **labels}.items()))))

    assert (queue("waiting"), queue("longest_wait_seconds"), queue("talking")) == (1.0, 30.0, 0.0)
    assert (queue("offered", period="day"), queue("answered", period="day"), queue("abandoned", period="day"),
            queue("handled", period="window")) == (3.0, 1.0, 1.0, 1.0)
    assert (queue("service_level_ratio", period="day"), queue("abandon_ratio", period="window"),
            queue("asa_seconds", period="day"), queue("aht_seconds", period="day"),
            queue("abandoned_wait_max_seconds", period="day")) == (0.5, 0.5, 5.0, 60.0, 12.0)
    assert queue("agents", state="busy") == 1.0 and queue("agents", state="logged_out") == 1.0
    assert queue("agents", queue="sales", state="logged_out") == 1.0
    assert queue("asa_seconds", queue="sales", period="day") is None  # nothing answered: no sample, not 0
    assert got[("ivrpowers_agent_state", (("agent", "ana"), ("state", "busy")))] == 1.0
    assert got[("ivrpowers_agent_state", (("agent", "ana"), ("state", "available")))] == 0.0
    assert got[("ivrpowers_agent_state_seconds", (("agent", "ana"),))] == 115.0
    assert got[("ivrpowers_agent_handled", (("agent", "ana"),))] == 1.0
    assert got[("ivrpowers_agent_talk_seconds", (("agent", "ana"),))] == 60.0
    assert (got[("ivrpowers_calls_active", ())], got[("ivrpowers_cdr_backlog", ())],
            got[("ivrpowers_ari_connected", ())], got[("ivrpowers_healthy", ())]) == (3.0, 7.0, 1.0, 1.0)

    # Read at scrape time: what changed since shows in the next scrape.
    health.report = {**health.report, "status": "degraded", "active_calls": 0, "cdr_backlog": 120,
                     "ari_connected": False, "loop_lag_ms": 612.5, "loop_stalls": 2}
    acd.emit("task_answered", 140, "support", "t3", "bo", wait=40)
    got = await scrape(client)
    assert (queue("waiting"), queue("answered", period="day"), queue("answered_in_sla", period="day")) == (0.0, 2.0,
                                                                                                          1.0)
    assert (got[("ivrpowers_calls_active", ())], got[("ivrpowers_cdr_backlog", ())],
            got[("ivrpowers_ari_connected", ())], got[("ivrpowers_healthy", ())]) == (0.0, 120.0, 0.0, 0.0)
    # The loop's stalls are a count since start: a Prometheus counter (rate() works on it).
    assert (got[("ivrpowers_event_loop_lag_ms", ())], got[("ivrpowers_event_loop_stalls_total", ())]) == (612.5, 2.0)
    assert acd.now == DAY + 140


async def test_metrics_need_the_token(client: TestClient[Any, Any]) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"


async def test_without_the_acd_the_controller_s_figures_alone(tmp_path: Path) -> None:
    app, db = await app_with(tmp_path, None)
    async with TestClient(TestServer(app)) as test_client:
        got = await scrape(test_client)
    await db.close()
    assert got[("ivrpowers_cdr_backlog", ())] == 7.0
    assert not [name for name, _ in got if name.startswith(("ivrpowers_queue_", "ivrpowers_agent_"))]
