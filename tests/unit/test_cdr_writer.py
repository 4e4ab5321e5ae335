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
from ivrpowers.store.writer import CdrWriter

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FlakyRepository(CdrRepository):
    """A real repository whose database is 'down' while `down` is True."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.down = False
        self.refused = 0

    def _check(self) -> None:
        if self.down:
            self.refused += 1
            raise OperationalError("INSERT ...", {}, ConnectionRefusedError("database is down"))

    async def start(self, **fields):  # type: ignore[no-untyped-def]
        self._check()
        await super().start(**fields)

    async def update(self, call_id, **fields):  # type: ignore[no-untyped-def]
        self._check()
        await super().update(call_id, **fields)

    async def add_event(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._check()
        await super().add_event(*args, **kwargs)


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
    assert not spool.exists()
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
