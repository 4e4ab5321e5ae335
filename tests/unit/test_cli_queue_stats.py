"""`ivrpowers queue stats [NAME] [--json]`: the running controller's figures through its REST API,
as a table or JSON; one line when the queue does not exist or nothing answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from ivrpowers.config import load_secrets

from .cli_run import Run
from .test_stats_api import DAY, FakeAcd, app_with, busy_morning


@pytest.fixture
async def controller(tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAcd]:
    """The web app on a loopback port, with the installation's API token (the CLI reads it from the
    secrets), its ACD after a busy morning; the CLI pointed at it."""
    acd = FakeAcd()
    busy_morning(acd)
    app, db = await app_with(tmp_path, acd, token=load_secrets(state)["api_token"])
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    monkeypatch.setenv("IVRPOWERS_WEB_PORT", str(server.port))
    yield acd
    await server.close()
    await db.close()


async def cli(run: Run, *args: str) -> Any:
    # The CLI waits for the answer: it runs beside the event loop that serves it.
    return await asyncio.to_thread(run, *args)


async def test_every_queue_as_a_table_and_as_json(run: Run, controller: FakeAcd) -> None:
    table = await cli(run, "queue", "stats")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == ["QUEUE", "WAITING", "LONGEST", "FREE/IN", "PERIOD", "OFFERED", "ANSWERED",
                                "ABANDONED", "ABANDON", "IN", "SLA", "ASA", "AHT"]
    # support: 1 waiting for 30 s, ana busy (0 free of 1 logged in); today 3 offered, 1 answered in 5 s,
    # 1 abandoned (50% of the waits that ended), 1 handled in 60 s.
    assert lines[1].split() == ["sales", "0", "0s", "0/0", "today", "0", "0", "0", "-", "-", "-", "-"]
    assert lines[3].split() == ["support", "1", "30s", "0/1", "today", "3", "1", "1", "50.0%", "50.0%", "5s",
                                "1m00s"]
    assert lines[4].split() == ["last", "15m", "3", "1", "1", "50.0%", "50.0%", "5s", "1m00s"]
    assert lines[4].index("last") == lines[3].index("today")  # the periods line up
    every = json.loads((await cli(run, "queue", "stats", "--json")).out)
    assert every["queues"]["support"] == controller.stats.queue("support", DAY + 130)
    assert set(every["agents"]) == {"ana", "bo"}


async def test_one_queue(run: Run, controller: FakeAcd) -> None:
    one = await cli(run, "queue", "stats", "support")
    assert one.code == 0 and [line.split()[0] for line in one.out.splitlines()] == ["QUEUE", "support", "last"]
    shown = json.loads((await cli(run, "queue", "stats", "support", "--json")).out)
    assert shown == controller.stats.queue("support", DAY + 130)
    missing = await cli(run, "queue", "stats", "nope")
    assert missing.code == 3 and missing.error_lines == [
        "error: there is no queue named 'nope' (see `ivrpowers queue list`)"]


async def test_without_a_controller_it_says_so(run: Run, state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVRPOWERS_WEB_PORT", "1")  # nothing listens there
    ran = run("queue", "stats")
    assert ran.code == 4 and len(ran.error_lines) == 1 and "the controller does not answer" in ran.err
