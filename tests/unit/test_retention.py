"""Pruning old records (`store.retention`, `ivrpowers db prune`): what ended before the cutoff goes
with everything hanging from it, nothing live or recent is touched, a call keeps its recordings
listed unless their files were deleted first, and a dry run changes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivrpowers.acd.events import AcdEvent
from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.chats import Chat, ChatRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.store.retention import prune

from .cli_run import Run

NOW = datetime.now(UTC)
OLD, RECENT = NOW - timedelta(days=100), NOW - timedelta(days=2)
CUTOFF = NOW - timedelta(days=90)


async def fill(db: Database) -> None:
    cdrs = CdrRepository(db)
    calls = {"old": (OLD, OLD + timedelta(minutes=3)), "old-live": (OLD, None),  # never ended: never pruned
             "old-rec": (OLD, OLD + timedelta(minutes=2)), "recent": (RECENT, RECENT + timedelta(minutes=1))}
    for call_id, (started, ended) in calls.items():
        await cdrs.start(id=call_id, channel_id=f"ch-{call_id}", started_at=started)
        await cdrs.add_event(call_id, "node_entered", started, "menu", {})
        if ended is not None:
            await cdrs.update(call_id, ended_at=ended, disposition="completed")
    for kind in ("recording_started", "recording_saved"):
        await cdrs.add_event("old-rec", kind, OLD + timedelta(seconds=30), "vm", {"name": "vm-old-rec-1"})
    events = [AcdEvent("task_joined", when.timestamp(), queue="support", task=f"t-{n}", channel="voice")
              for n, when in enumerate((OLD, OLD, RECENT))]
    await AcdStateRepository(db).save({}, "ctl", [("ana", OLD, "logged_out", "available", None),
                                                  ("ana", RECENT, "available", "paused", "lunch")], acd_events=events)
    chats = ChatRepository(db)
    for chat_id, when, closed in (("chat-old", OLD, True), ("chat-old-open", OLD, False), ("chat-new", RECENT, True)):
        await chats.create(Chat(id=chat_id, queue="web", customer_name="A", token_digest="x", created_at=when), "hi")
        if closed:
            await chats.change(chat_id, when + timedelta(minutes=5), "closed", status="closed", outcome="handled")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    await fill(database)
    yield database
    await database.close()


async def left(db: Database) -> dict[str, list[str]]:
    acd = AcdStateRepository(db)
    return {"calls": sorted(c.id for c in await CdrRepository(db).latest(100)),
            "acd": sorted(e.task or "" for e in await acd.events_since(0)),
            "agent": [e.new for e in await acd.agent_events("ana")],
            "chats": sorted(c.id for c in await ChatRepository(db).find(("waiting", "active", "closed"), limit=None))}


async def test_a_dry_run_counts_and_changes_nothing(db: Database) -> None:
    before = await left(db)
    counted = await prune(db, CUTOFF, dry_run=True)
    assert (counted.calls, counted.call_events, counted.kept_for_recordings, counted.recordings) == (1, 1, 1, [])
    assert (counted.acd_events, counted.agent_events, counted.chats, counted.chat_messages) == (2, 1, 1, 2)

    async def keep_none(name: str) -> bool:
        raise AssertionError("a dry run deletes no file")

    with_files = await prune(db, CUTOFF, dry_run=True, delete_recording=keep_none)
    assert (with_files.calls, with_files.recordings, with_files.kept_for_recordings) == (2, ["vm-old-rec-1"], 0)
    assert await left(db) == before


async def test_what_ended_before_the_cutoff_goes_and_a_call_keeps_its_recordings(db: Database) -> None:
    pruned = await prune(db, CUTOFF, batch=1)
    assert (pruned.calls, pruned.call_events, pruned.kept_for_recordings) == (1, 1, 1)
    assert (pruned.acd_events, pruned.agent_events, pruned.chats, pruned.chat_messages) == (2, 1, 1, 2)
    assert await left(db) == {"calls": ["old-live", "old-rec", "recent"], "acd": ["t-2"], "agent": ["paused"],
                              "chats": ["chat-new", "chat-old-open"]}
    assert [r["name"] for r in await CdrRepository(db).recordings()] == ["vm-old-rec-1"]  # still listed

    tried: list[str] = []

    async def cannot(name: str) -> bool:  # Asterisk away: the file stays, so does its call
        tried.append(name)
        return False

    assert (await prune(db, CUTOFF, delete_recording=cannot)).kept_for_recordings == 1
    assert tried == ["vm-old-rec-1"] and "old-rec" in (await left(db))["calls"]

    async def deleted(name: str) -> bool:
        return True

    last = await prune(db, CUTOFF, delete_recording=deleted)
    assert (last.calls, last.call_events, last.recordings, last.kept_for_recordings) == (1, 3, ["vm-old-rec-1"], 0)
    assert (await left(db))["calls"] == ["old-live", "recent"] and await CdrRepository(db).recordings() == []


def test_the_cli_prunes_what_is_old_enough_and_refuses_a_recent_cutoff(run: Run, state: Path) -> None:
    async def filled() -> None:
        database = Database(f"sqlite+aiosqlite:///{state / 'ivrpowers.db'}")
        try:
            await fill(database)
        finally:
            await database.close()

    asyncio.run(filled())
    dry = json.loads(run("db", "prune", "--before", "90d", "--dry-run", "--json").out)
    assert (dry["dry_run"], dry["calls"], dry["kept_for_recordings"]) == (True, 1, 1)
    done = run("db", "prune", "--before", "90d")
    assert done.code == 0 and done.out.startswith("deleted, ended before ")
    assert "1 calls (1 timeline events), 2 ACD events, 1 agent state changes, 1 chats (2 messages)" in done.out
    assert done.err == "kept 1 calls: they have recordings: add --recordings to delete them too\n"
    again = json.loads(run("db", "prune", "--before", "90d", "--json").out)
    assert (again["calls"], again["acd_events"], again["chats"]) == (0, 0, 0)
    for bad, message in ((("--before", "2h"), "at least a day ago"), (("--before", "soon"), "is not a time")):
        refused = run("db", "prune", *bad)
        assert refused.code == 2 and message in refused.err and refused.err.count("\n") == 1
