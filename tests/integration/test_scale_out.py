"""Two Asterisk servers, two controllers, one PostgreSQL: each keeps its calls, ids never collide,
and a controller that dies leaves its calls alone for its successor, not for the other one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    AsteriskUnderTest,
    ControllerUnderTest,
    running_asterisk,
    start_controller,
    stop_controller,
)
from .postgres import Cluster
from .sipp import Dtmf, ExpectHangup, Pause, SippCall, run_call_async
from .test_calls import caller, events

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, pg_base_url: Cluster | str) -> Iterator[
        tuple[AsteriskUnderTest, AsteriskUnderTest, str]]:
    # Two Asterisks of their own: the session's shared one has its own controllers attached.
    if not isinstance(pg_base_url, Cluster):
        pytest.fail("needs the throwaway PostgreSQL cluster (a fresh database for this test)")
    db_url = pg_base_url.create_database("ivr_scale_out")
    with running_asterisk(tmp_path_factory.mktemp("ast-a"), 28000) as first, \
            running_asterisk(tmp_path_factory.mktemp("ast-b"), 29000) as second:
        yield first, second, db_url


def _start(name: str, asterisk: AsteriskUnderTest, db_url: str, workdir: Path) -> ControllerUnderTest:
    return start_controller(name, db_url, asterisk, workdir / f"{name}.log")


async def test_two_controllers_on_two_asterisks_share_one_database(
        pair: tuple[AsteriskUnderTest, AsteriskUnderTest, str], tmp_path: Path) -> None:
    ast_a, ast_b, db_url = pair
    ctl_a = _start("ctl-a", ast_a, db_url, tmp_path)
    ctl_b = _start("ctl-b", ast_b, db_url, tmp_path)
    try:
        id_a, id_b = ctl_a.health()["asterisk_id"], ctl_b.health()["asterisk_id"]
        assert id_a and id_b and id_a != id_b
        num_a, num_b = caller(), caller()
        # Each caller stays in the menu (40 s) long enough for its controller to die or stop and come
        # back: a digit pressed while no controller listens is dropped by Asterisk, and on a loaded
        # machine the restarts below took over 14 s.
        placing_a = asyncio.create_task(run_call_async(
            SippCall(dialed="202", caller_number=num_a, steps=[Pause(30.0), Dtmf("1"), ExpectHangup(25)]),
            target=ast_a.sip_target, timeout=70))
        placing_b = asyncio.create_task(run_call_async(
            SippCall(dialed="202", caller_number=num_b, steps=[Pause(20.0), Dtmf("2"), ExpectHangup(25)]),
            target=ast_b.sip_target, timeout=70))
        live_a = await ctl_a.wait_event(num_a, "node_entered", "menu")
        live_b = await ctl_b.wait_event(num_b, "node_entered", "menu")
        # Asterisk prefixes its channel ids with its systemname: ids from the two cannot collide.
        assert live_a["channel_id"].startswith(f"{id_a}-") and live_b["channel_id"].startswith(f"{id_b}-")
        assert (live_a["asterisk_id"], live_b["asterisk_id"]) == (id_a, id_b)
        owner_a = live_a["owner"]
        assert owner_a == ctl_a.health()["controller_id"] != ctl_b.health()["controller_id"]

        # A dies. B restarts meanwhile and looks at every unfinished call in the shared database:
        # A's call is on another Asterisk, whose channels B cannot see; it must leave it open.
        ctl_a.proc.kill()
        ctl_a.proc.wait()
        await asyncio.to_thread(stop_controller, ctl_b)
        await asyncio.to_thread(ctl_b.launch)
        await ctl_b.wait_health(lambda h: h["reconcile_passes"] >= 1 and h["calls_adopted"] == 1)
        still = await ctl_b.wait_event(num_a, "node_entered", "menu")
        assert still["ended_at"] is None and still["disposition"] is None

        # A's successor adopts A's call (the caller never noticed) and takes ownership.
        await asyncio.to_thread(ctl_a.launch)
        result_a, result_b = await placing_a, await placing_b
        assert result_a.ok, result_a.describe()
        assert result_b.ok, result_b.describe()
        cdr_a, cdr_b = await ctl_a.wait_cdr(num_a), await ctl_b.wait_cdr(num_b)
        assert cdr_a["disposition"] == cdr_b["disposition"] == "completed"
        assert events(cdr_a, "menu_selected")[0]["detail"] == {"digit": "1", "next": "thanks"}
        assert events(cdr_b, "menu_selected")[0]["detail"] == {"digit": "2", "next": "bye"}
        assert len(events(cdr_a, "adopted")) == 1 and len(events(cdr_b, "adopted")) == 1
        assert cdr_a["owner"] == ctl_a.health()["controller_id"] != owner_a
        assert cdr_a["id"] != cdr_b["id"] and cdr_a["channel_id"] != cdr_b["channel_id"]
    finally:
        for ctl in (ctl_a, ctl_b):
            stop_controller(ctl)
            ctl.proxy.stop()
