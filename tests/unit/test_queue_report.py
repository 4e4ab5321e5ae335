"""The queues' interval report over the stored ACD events: `ivrpowers queue report` and
`GET /api/reports/queues` take the same parameters (times in the configured zone), give the same
rows, as JSON, CSV or a table, and refuse the same mistakes in one line."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from ivrpowers.acd.definitions import QueueDef
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.web.app import create_app

from .acd.test_report import DAY, T0
from .cli_run import Run

TOKEN = "report-token"


async def stored(url: str) -> None:
    db = Database(url)
    try:
        await AcdRepository(db).put_queue(QueueDef(name="support", sla_seconds=20))
        await AcdRepository(db).put_queue(QueueDef(name="sales", sla_seconds=30))
        await AcdStateRepository(db).save({}, "ctl-1", acd_events=DAY)
    finally:
        await db.close()


class Healthy:
    def health(self) -> dict[str, object]:
        return {"status": "ok"}


def test_the_cli_and_the_api_give_the_same_report(run: Run, state: Path, monkeypatch) -> None:
    url = f"sqlite+aiosqlite:///{state / 'ivrpowers.db'}"
    asyncio.run(stored(url))
    day = datetime.fromtimestamp(T0, UTC).date().isoformat()
    # Madrid is UTC+1 in winter: 09:00 there is 08:00 UTC, the busy hour of the stored day.
    monkeypatch.setenv("IVRPOWERS_TIMEZONE", "Europe/Madrid")
    args = ("--since", f"{day}T09:00", "--until", f"{day}T11:00", "--interval", "1h")
    as_json = run("queue", "report", *args, "--json")
    assert as_json.code == 0, as_json.err
    rows = json.loads(as_json.out)
    assert [(r["queue"], r["start"][11:], r["offered"], r["answered"], r["abandoned"]) for r in rows] == [
        ("sales", "09:00:00+01:00", 0, 0, 0), ("support", "09:00:00+01:00", 3, 2, 1),
        ("sales", "10:00:00+01:00", 1, 0, 0), ("support", "10:00:00+01:00", 0, 1, 0)]
    as_csv = run("queue", "report", *args, "--queue", "support", "--csv")
    assert [(r["queue"], r["offered"], r["service_level"]) for r in csv.DictReader(io.StringIO(as_csv.out))] == [
        ("support", "3", "0.3333"), ("support", "0", "0.0")]
    table = run("queue", "report", *args, "--queue", "support").out.splitlines()
    assert table[1].split() == [day, "09:00", "support", "3", "3", "2", "1", "33%",
                                f"{(600 + 8 * 3600 + 40) / 2:.0f}s", "180s"]
    assert table[0].split()[:5] == ["START", "QUEUE", "OFFERED", "ENDED", "ANSWERED"]
    nosuch = run("queue", "report", "--queue", "nosuch")
    assert nosuch.code == 3 and nosuch.error_lines == ["error: there is no queue named 'nosuch', now or in those "
                                                       "events (see `ivrpowers queue list`)"]
    backwards = run("queue", "report", "--since", "2026-11-30", "--until", "2026-11-29")
    assert backwards.code == 2 and "since (2026-11-30T00:00:00+01:00) must come before until (" in backwards.err
    bad = run("queue", "report", "--interval", "1w")
    assert bad.code == 2 and bad.error_lines == ["error: interval: '1w' is not a length from 1m to 1d (write 15m, "
                                                 "1h or 1d)"]

    async def api() -> None:
        db = Database(url)
        app = create_app(health=Healthy(), cdrs=CdrRepository(db), api_token=TOKEN, timezone="Europe/Madrid",
                         acd=AcdRepository(db))
        try:
            async with TestClient(TestServer(app)) as client:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                resp = await client.get(f"/api/reports/queues?since={day}T09:00&until={day}T11:00", headers=auth)
                assert await resp.json() == rows
                resp = await client.get(f"/api/reports/queues?since={day}T09:00&until={day}T11:00&queue=support"
                                        "&format=csv", headers=auth)
                assert resp.content_type == "text/csv" and await resp.text() == as_csv.out
                resp = await client.get("/api/reports/queues?since=tomorrow", headers=auth)
                assert resp.status == 400 and (await resp.json())["error"].startswith("since: 'tomorrow' is not")
                assert (await client.get("/api/reports/queues")).status == 401
                assert (await client.get("/api/reports/queues?queue=nosuch", headers=auth)).status == 404
        finally:
            await db.close()

    asyncio.run(api())
