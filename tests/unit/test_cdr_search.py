"""Finding call records (`store.cdr_search`): the filters as the CLI and the REST API take them, the
same refusals in both, newest first a page at a time, and the CSV export; on SQLite through the real
store (PostgreSQL runs the same queries in tests/integration)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivrpowers.cli import cdr as cdr_cli
from ivrpowers.store.cdr_search import CSV_COLUMNS, CallQuery, parse_query, parse_when, search, to_csv
from ivrpowers.store.cdrs import CdrRepository, call_to_dict
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.web.app import create_app

from .cli_run import Run

TOKEN = "search-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY = datetime(2026, 11, 29, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def fill(repo: CdrRepository) -> None:
    """Six calls on the 29th, an hour apart from 08:00 UTC, and one queued call on the 30th."""
    rows = [("c1", "+34911000001", "100", "sales", "completed"), ("c2", "5551234", "100", "sales", "caller_hangup"),
            ("c3", "=HYPERLINK(\"x\")", "200", "support", "completed"), ("c4", "5551234", "200", "support", "failed"),
            ("c5", "anonymous", "100", "sales", "completed"), ("c6", "5559999", "300", None, "unrouted")]
    for hour, (call_id, caller, dialed, flow, disposition) in enumerate(rows, start=8):
        started = DAY + timedelta(hours=hour)
        await repo.start(id=call_id, channel_id=f"ch-{call_id}", caller_number=caller, dialed=dialed, flow_name=flow,
                         flow_version=1 if flow else None, started_at=started)
        await repo.update(call_id, ended_at=started + timedelta(seconds=30), disposition=disposition)
    queued = NOW - timedelta(hours=1)
    await repo.start(id="q1", channel_id="ch-q1", caller_number="5551234", caller_name="-Mallory", dialed="100",
                     flow_name="sales", flow_version=2, started_at=queued)
    for seconds, kind, detail in ((5, "queue_joined", {"queue": "billing"}), (40, "queue_answered", {"agent": "ana",
                                                                                                      "wait": 35.0}),
                                  (100, "queue_agent_done", {"agent": "ana", "talk": 60.0})):
        await repo.add_event("q1", kind, queued + timedelta(seconds=seconds), "queue", detail)
    await repo.update("q1", ended_at=queued + timedelta(seconds=101), disposition="completed")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cdrs.db'}"
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    await fill(CdrRepository(database))
    yield database
    await database.close()


def ids(calls: list[Any]) -> list[str]:
    return [c.id for c in calls]


def test_times_are_dates_date_times_in_the_zone_or_times_ago() -> None:
    assert parse_when("2026-11-29", "Europe/Madrid", NOW) == datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert parse_when("2026-11-29T08:30", "UTC", NOW) == datetime(2026, 11, 29, 8, 30, tzinfo=UTC)
    assert parse_when("2026-11-29 08:30+02:00", "UTC", NOW) == datetime(2026, 11, 29, 6, 30, tzinfo=UTC)
    assert parse_when("90m", "UTC", NOW) == NOW - timedelta(minutes=90)
    assert parse_when("7d", "UTC", NOW) == NOW - timedelta(days=7)


@pytest.mark.parametrize(("params", "message"), [
    ({"since": "yesterday"}, "since: 'yesterday' is not a time"),
    ({"until": "2026-13-01"}, "until: '2026-13-01' is not a time"),
    ({"since": "2026-11-30", "until": "2026-11-29"}, "since (2026-11-30T00:00:00+00:00) must come before until ("),
    ({"since": "0001-01-01T00:00+05:00"}, "since: '0001-01-01T00:00+05:00' is not a time"),
    ({"until": "9999-12-31T23:00"}, "until: '9999-12-31T23:00' is out of range: from 1970 to 9998"),
    ({"limit": "0"}, "limit must be a whole number from 1 to 1000"),
    ({"limit": "²"}, "limit must be a whole number from 1 to 1000"),
    ({"number": "55%"}, "number: '55%' is not a number"),
    ({"number": " 4930"}, "number: ' 4930' is not a number (in a URL, write + as %2B)"),
    ({"flow": "a b"}, "flow: 'a b' is not a flow"),
    ({"before": "x\x00y"}, "before: 'x\\x00y' is not a call id"),
])
def test_a_bad_filter_is_named_in_one_line(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_query(params, "UTC", NOW)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


async def test_filters_combine_and_the_newest_come_first(db: Database) -> None:
    def query(**params: str) -> CallQuery:
        return parse_query(params, "UTC", NOW)

    assert ids(await search(db, query(limit="100"))) == ["q1", "c6", "c5", "c4", "c3", "c2", "c1"]
    assert ids(await search(db, query(since="2026-11-29", until="2026-11-30"))) == ["c6", "c5", "c4", "c3", "c2",
                                                                                    "c1"]
    assert ids(await search(db, query(since="2026-11-29T10:00", until="2026-11-29T12:00"))) == ["c4", "c3"]
    assert ids(await search(db, query(since="2h"))) == ["q1"]
    assert ids(await search(db, query(number="555123"))) == ["q1", "c4", "c2"]  # in the caller's number
    assert ids(await search(db, query(number="300"))) == ["c6"]  # or the number dialed
    assert ids(await search(db, query(number="+349"))) == ["c1"]
    assert ids(await search(db, query(disposition="completed", flow="sales"))) == ["q1", "c5", "c1"]
    assert ids(await search(db, query(number="5551234", flow="support"))) == ["c4"]
    assert await search(db, query(disposition="nothing_like_it")) == []
    # LIKE's own wildcards are plain characters here.
    assert await search(db, query(number="_")) == []


async def test_pages_follow_each_other_without_a_gap_or_a_repeat(db: Database) -> None:
    repo = CdrRepository(db)
    for n in range(5):  # five calls that started at the same instant: ordered by id
        await repo.start(id=f"same-{n}", channel_id=f"ch-same-{n}", started_at=DAY + timedelta(hours=9))
    seen: list[str] = []
    page = await search(db, CallQuery(limit=3))
    while page:
        seen += ids(page)
        page = await search(db, CallQuery(limit=3, before=page[-1].id)) if len(page) == 3 else []
    assert seen == ids(await search(db, CallQuery(limit=1000))) and len(seen) == len(set(seen)) == 12
    with pytest.raises(LookupError):
        await search(db, CallQuery(before="no-such-call"))


async def test_the_csv_has_a_line_per_call_with_its_queue_and_no_formula(db: Database) -> None:
    calls = [call_to_dict(c) for c in await search(db, CallQuery(limit=100))]
    rows = list(csv.DictReader(io.StringIO(to_csv(calls))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 7
    queued = rows[0]
    assert (queued["id"], queued["queue"], queued["queue_outcome"], queued["agent"]) == ("q1", "billing", "handled",
                                                                                         "ana")
    assert (queued["queue_wait"], queued["talk"], queued["duration"]) == ("35.0", "60.0", "101.0")
    assert queued["caller_name"] == "'-Mallory"  # a spreadsheet would run it
    by_id = {row["id"]: row for row in rows}
    assert by_id["c3"]["caller"] == "'=HYPERLINK(\"x\")"
    assert by_id["c1"]["caller"] == "+34911000001"  # an international number is not a formula
    assert by_id["c6"]["flow"] == "" and by_id["c6"]["queue"] == ""
    assert to_csv(calls[:1], header=False).count("\r\n") == 1


class Healthy:
    def health(self) -> dict[str, object]:
        return {"status": "ok"}


async def test_the_api_takes_the_same_filters_pages_with_a_link_and_says_csv(db: Database) -> None:
    app = create_app(health=Healthy(), cdrs=CdrRepository(db), api_token=TOKEN, timezone="Europe/Madrid")
    async with TestClient(TestServer(app)) as client:
        # Madrid is UTC+1: its 29th runs from 23:00 UTC on the 28th, the 30th's first hour is the 29th's last.
        resp = await client.get("/api/calls?since=2026-11-29T10:00&until=2026-11-29T12:00", headers=AUTH)
        assert [c["id"] for c in await resp.json()] == ["c3", "c2"]
        resp = await client.get("/api/calls?number=5551234&limit=2", headers=AUTH)
        assert [c["id"] for c in await resp.json()] == ["q1", "c4"]
        follow = resp.headers["Link"].split(">")[0].removeprefix("<")
        assert 'rel="next"' in resp.headers["Link"] and "before=c4" in follow and "number=5551234" in follow
        nxt = await client.get(follow, headers=AUTH)
        assert [c["id"] for c in await nxt.json()] == ["c2"] and "Link" not in nxt.headers
        resp = await client.get("/api/calls?flow=support&format=csv", headers=AUTH)
        assert resp.content_type == "text/csv"
        assert [row["id"] for row in csv.DictReader(io.StringIO(await resp.text()))] == ["c4", "c3"]
        for bad, message in (("since=yesterday", "since: 'yesterday' is not a time"), ("format=xml", "format must"),
                             ("since=0001-01-01T00:00%2B05:00", "since: '0001-01-01T00:00+05:00' is not a time"),
                             ("before=nope", "before: no call 'nope'")):
            resp = await client.get(f"/api/calls?{bad}", headers=AUTH)
            assert resp.status == 400 and (await resp.json())["error"].startswith(message), bad


def test_the_cli_lists_filters_and_exports_every_page(run: Run, state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def filled() -> None:
        database = Database(f"sqlite+aiosqlite:///{state / 'ivrpowers.db'}")
        try:
            await fill(CdrRepository(database))
        finally:
            await database.close()

    asyncio.run(filled())
    listed = run("cdr", "list", "--since", "2026-11-29", "--until", "2026-11-30", "--disposition", "completed")
    assert listed.code == 0 and [line.split()[0] for line in listed.out.splitlines()[1:]] == ["c5", "c3", "c1"]
    as_json = run("cdr", "list", "--number", "5551234", "--json")
    assert [c["id"] for c in json.loads(as_json.out)] == ["q1", "c4", "c2"]
    monkeypatch.setattr(cdr_cli, "MAX_LIMIT", 3)  # --all reads pages of MAX_LIMIT: three of them here
    exported = run("cdr", "list", "--all", "--csv")
    assert [row["id"] for row in csv.DictReader(io.StringIO(exported.out))] == ["q1", "c6", "c5", "c4", "c3", "c2",
                                                                                 "c1"]
    assert exported.out.count("id,started_at") == 1
    bad = run("cdr", "list", "--since", "last week")
    assert bad.code == 2 and bad.error_lines == ["error: since: 'last week' is not a time: write 2026-11-30, "
                                                 "2026-11-30T08:00 or 24h (ago)"]
    assert run("cdr", "list", "--csv", "--json").code == 2
    assert run("cdr", "list", "--all", "--limit", "5").error_lines == ["error: --all and --limit: choose one"]
    overflow = run("cdr", "list", "--since", "0001-01-01T00:00+05:00")  # before 1970 in UTC: refused, not a crash
    assert overflow.code == 2 and "is not a time" in overflow.err
