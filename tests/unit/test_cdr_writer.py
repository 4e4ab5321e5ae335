"""The CDR writer keeps every write, in order, through a database outage and across a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.store.writer import CdrWriter, _encode

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FlakyRepository(CdrRepository):
    """A real repository whose database is 'down' while `down` is True."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.down = False
        self.refused = 0
        self.refuse_calls: set[str] = set()

    def _check(self, call_id: str | None = None) -> None:
        if self.down or call_id in self.refuse_calls:
            self.refused += 1
            raise OperationalError("INSERT ...", {}, ConnectionRefusedError("database is down"))

    async def start(self, **fields):  # type: ignore[no-untyped-def]
        self._check(fields["id"])
        await super().start(**fields)

    async def update(self, call_id, **fields):  # type: ignore[no-untyped-def]
        self._check(call_id)
        await super().update(call_id, **fields)

    async def add_event(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._check(kwargs.get("call_id"))
        await super().add_event(*args, **kwargs)


def crash(writer: CdrWriter) -> None:
    """What SIGKILL leaves behind: no close(), no flush, the task simply gone."""
    assert writer._task is not None
    writer._task.cancel()
    assert writer._log is not None
    writer._log.close()


@pytest.fixture
async def db(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cdr.db'}"
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    database = Database(url)
    yield database
    await database.close()


def write_call(writer: CdrWriter, call_id: str, events: int) -> None:
    writer.start_call(id=call_id, channel_id=f"chan-{call_id}", caller_number="555", dialed="100", started_at=T0)
    for i in range(events):
        writer.add_event(call_id, "node_entered", T0 + timedelta(seconds=i), f"n{i}", {"i": i})
    writer.update_call(call_id, ended_at=T0 + timedelta(seconds=events), disposition="completed")


async def test_outage_delays_writes_but_loses_none(db: Database, tmp_path: Path) -> None:
    repo = FlakyRepository(db)
    writer = CdrWriter(repo, tmp_path / "spool.jsonl", retry_min=0.01, retry_max=0.05)
    writer.start()
    repo.down = True
    write_call(writer, "a", 5)
    assert not await writer.flush(timeout=0.3)
    assert repo.refused >= 3 and writer.backlog == 7 and writer.failures >= 3
    assert await CdrRepository(db).get("a") is None

    repo.down = False
    assert await writer.flush(timeout=5)
    call = await CdrRepository(db).get("a")
    assert call is not None and call.disposition == "completed"
    assert [e.detail["i"] for e in call.events] == [0, 1, 2, 3, 4]
    assert writer.failures == 0
    await writer.close()


async def test_unwritten_cdrs_are_spooled_at_shutdown_and_replayed_first(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    repo = FlakyRepository(db)
    repo.down = True
    first = CdrWriter(repo, spool, retry_min=0.01, retry_max=0.02)
    first.start()
    write_call(first, "b", 3)
    await first.close(timeout=0.2)
    assert spool.exists() and len(spool.read_text().splitlines()) == 5

    repo.down = False
    second = CdrWriter(repo, spool, retry_min=0.01)
    second.start()
    write_call(second, "c", 1)  # newer than the spooled writes: must land after them
    assert await second.flush(timeout=5)
    await second.close()
    assert spool.read_text() == ""
    b = await CdrRepository(db).get("b")
    assert b is not None and b.ended_at == T0 + timedelta(seconds=3)
    assert [e.node for e in b.events] == ["n0", "n1", "n2"]
    assert (await CdrRepository(db).get("c")) is not None


async def test_a_write_the_database_rejects_is_set_aside_not_blocking(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    writer = CdrWriter(CdrRepository(db), spool, retry_min=0.01)
    writer.start()
    writer.update_call("never-started", disposition="completed")  # no such call: can never succeed
    write_call(writer, "d", 2)
    assert await writer.flush(timeout=5)
    await writer.close()
    assert (await CdrRepository(db).get("d")) is not None
    rejected = spool.with_suffix(".rejected").read_text()
    assert "never-started" in rejected and "LookupError" in rejected


async def test_a_crash_during_an_outage_loses_nothing(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    repo = FlakyRepository(db)
    first = CdrWriter(repo, spool, retry_min=0.01, retry_max=0.02)
    first.start()
    write_call(first, "e", 2)
    assert await first.flush(timeout=5)
    repo.down = True
    write_call(first, "f", 4)  # queued while the database is down...
    await asyncio.sleep(0.1)
    crash(first)  # ...and the controller dies

    repo.down = False
    second = CdrWriter(repo, spool, retry_min=0.01)
    second.start()
    assert await second.flush(timeout=5)
    await second.close()
    f = await CdrRepository(db).get("f")
    assert f is not None and f.disposition == "completed"
    assert [e.node for e in f.events] == ["n0", "n1", "n2", "n3"]


async def test_replaying_writes_that_already_landed_stores_nothing_twice(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    first = CdrWriter(CdrRepository(db), spool, retry_min=0.01)
    first.start()
    write_call(first, "g", 3)
    assert await first.flush(timeout=5)
    # A crash after the database took the writes but before the log was emptied:
    crash(first)
    # ...so the log still holds the whole call: the start, the three events (same ids), the end.
    landed = CdrRepository(db)
    g_events = (await landed.get("g")).events  # type: ignore[union-attr]
    replay = [{"op": "start", "id": "g", "channel_id": "chan-g", "caller_number": "555", "dialed": "100",
               "started_at": T0}]
    replay += [{"op": "event", "uid": e.uid, "call_id": "g", "type": e.type, "at": e.at, "node": e.node,
                "detail": e.detail} for e in g_events]
    replay.append({"op": "update", "call_id": "g", "ended_at": T0 + timedelta(seconds=3), "disposition": "completed"})
    spool.write_text("".join(_encode(op) + "\n" for op in replay))
    second = CdrWriter(CdrRepository(db), spool, retry_min=0.01)
    second.start()
    assert await second.flush(timeout=5)
    await second.close()
    g = await CdrRepository(db).get("g")
    assert g is not None and len(g.events) == 3


async def test_the_same_event_replayed_is_stored_once(db: Database, tmp_path: Path) -> None:
    repo = CdrRepository(db)
    await repo.start(id="h", channel_id="chan-h", started_at=T0)
    for _ in range(3):
        await repo.add_event("h", "dtmf_received", T0, "main", {"digit": "1"}, uid="same-uid")
    h = await repo.get("h")
    assert h is not None and len(h.events) == 1


async def test_a_torn_last_line_is_skipped_and_the_rest_replayed(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    first = CdrWriter(FlakyRepository(db), spool)
    first.start()
    first.repo.down = True  # type: ignore[attr-defined]
    write_call(first, "i", 1)
    crash(first)
    spool.write_text(spool.read_text() + '{"op": "event", "call_id": "i", "ty')
    second = CdrWriter(CdrRepository(db), spool, retry_min=0.01)
    second.start()
    assert await second.flush(timeout=5)
    await second.close()
    i = await CdrRepository(db).get("i")
    assert i is not None and i.disposition == "completed" and len(i.events) == 1


async def test_the_log_is_compacted_when_it_never_drains(db: Database, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("ivrpowers.store.writer.COMPACT_AFTER", 5)
    spool = tmp_path / "spool.jsonl"
    writer = CdrWriter(CdrRepository(db), spool, retry_min=0.01)
    writer.start()
    write_call(writer, "j", 20)
    # Still draining: the log holds at most the pending writes plus fewer than 5 applied ones.
    while writer.backlog > 3:
        await asyncio.sleep(0)
        assert len(spool.read_text().splitlines()) <= writer.backlog + 5
    assert await writer.flush(timeout=5)
    await writer.close()
    assert spool.read_text() == ""
    j = await CdrRepository(db).get("j")
    assert j is not None and len(j.events) == 20


async def test_flush_waits_for_earlier_writes_only(db: Database, tmp_path: Path) -> None:
    repo = FlakyRepository(db)
    writer = CdrWriter(repo, tmp_path / "spool.jsonl", retry_min=0.01, retry_max=0.02)
    writer.start()
    write_call(writer, "k", 2)
    assert await writer.flush(timeout=5)
    repo.down = True
    write_call(writer, "l", 1)  # queued after: the next flush must wait for these...
    assert not await writer.flush(timeout=0.2)
    waiting = asyncio.create_task(writer.flush(timeout=5))
    await asyncio.sleep(0)
    repo.refuse_calls.add("m")
    write_call(writer, "m", 5)  # ...but not for ones queued while it waits (these cannot land)
    repo.down = False
    assert await waiting
    assert await CdrRepository(db).get("l") is not None
    assert writer.backlog == 7 and await CdrRepository(db).get("m") is None
    await writer.close(timeout=0.1)
