"""A database outage during calls delays their CDRs and loses none (PostgreSQL stopped for real)."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import ControllerUnderTest
from .postgres import Cluster
from .sipp import Dtmf, ExpectHangup, Pause, SippCall, run_call_async
from .test_calls import caller, events

pytestmark = pytest.mark.integration


# The outage is staged on the PostgreSQL server (SQLite is a local file that cannot go away).
@pytest.mark.parametrize("controller", ["postgresql"], indirect=True)
async def test_postgres_down_mid_call_then_back(controller: ControllerUnderTest, asterisk, request) -> None:
    cluster = request.getfixturevalue("pg_base_url")
    assert isinstance(cluster, Cluster), "needs the throwaway cluster, not an external server"

    number = caller()
    placing = asyncio.create_task(run_call_async(
        SippCall(dialed="200", caller_number=number, steps=[Pause(2.0), Dtmf("2"), ExpectHangup(15)]),
        target=asterisk.sip_target, timeout=40,
    ))
    # The CDR row exists; the rest of the call happens during the outage.
    await controller.wait_event(number, "node_entered", "menu")
    await asyncio.to_thread(cluster.pause)
    try:
        result = await placing
        assert result.ok, result.describe()  # the caller noticed nothing
        health = await controller.wait_health(lambda h: h["cdr_backlog"] > 0 and h["cdr_write_failures"] > 0)
        assert health["status"] == "degraded" and health["problems"], health
    finally:
        await asyncio.to_thread(cluster.resume)

    cdr = await controller.wait_cdr(number, timeout=40)
    assert cdr["disposition"] == "completed"
    assert [e["node"] for e in events(cdr, "node_entered")] == ["answer", "menu", "bye", "hangup"]
    assert events(cdr, "menu_selected")[0]["detail"] == {"digit": "2", "next": "bye"}
    assert cdr["events"][-1]["type"] == "hangup" and cdr["hangup_cause"] == 16
    health = await controller.wait_health(lambda h: h["cdr_backlog"] == 0)
    assert health["status"] == "ok", health


@pytest.mark.parametrize("controller", ["postgresql"], indirect=True)
async def test_controller_crash_during_a_database_outage(controller: ControllerUnderTest, asterisk, request) -> None:
    cluster = request.getfixturevalue("pg_base_url")
    number = caller()
    placing = asyncio.create_task(run_call_async(
        # Pressed again 5 s later: a digit while no controller listens is dropped by Asterisk.
        SippCall(dialed="200", caller_number=number,
                 steps=[Pause(9.0), Dtmf("1"), Pause(5.0), Dtmf("1"), ExpectHangup(25)]),
        target=asterisk.sip_target, timeout=60,
    ))
    await controller.wait_event(number, "node_entered", "menu")
    await asyncio.to_thread(cluster.pause)
    try:
        await asyncio.to_thread(controller.crash_and_restart)  # the new one starts with no database
        health = await controller.wait_health(lambda h: h["adoption_waits"] > 0)
        assert health["active_calls"] == 0  # waiting for the database to adopt
    finally:
        await asyncio.to_thread(cluster.resume)
    result = await placing
    assert result.ok, result.describe()

    cdr = await controller.wait_cdr(number, timeout=40)
    assert cdr["disposition"] == "completed"
    assert [e["node"] for e in events(cdr, "adopted")] == ["menu"]
    assert events(cdr, "menu_selected")[0]["detail"] == {"digit": "1", "next": "thanks"}
    # The resumed flow enters the menu again (its prompt replays), then goes on.
    assert [e["node"] for e in events(cdr, "node_entered")] == ["answer", "menu", "menu", "thanks", "bye", "hangup"]
    assert len(events(cdr, "answered")) == 1  # the log's writes landed once, not twice
    assert controller.health()["calls_adopted"] == 1
