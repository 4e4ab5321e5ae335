"""The CDR writer keeps every write, in order, through a database outage and across a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.store.writer import CdrWriter, _encode

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def outage() -> OperationalError:
    return OperationalError("INSERT ...", {}, ConnectionRefusedError("database is down"))


class FlakyRepository(CdrRepository):
    """A real repository whose database is 'down' (unreachable, the probe fails too) while `down` is True.

    Writes for a call in `poison` fail although the database answers; writes for a call in `hold`
    wait for `release` (a slow transaction).
    """

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.down = False
        self.refused = 0
        self.poison: set[str] = set()
        self.hold: set[str] = set()
        self.release = asyncio.Event()

    async def ping(self) -> None:
        if self.down:
            raise outage()
        await super().ping()

    async def apply_batch(self, ops: Sequence[Mapping[str, Any]]) -> None:
        calls = {op.get("call_id", op.get("id")) for op in ops}
        if self.down:
            self.refused += 1
            raise outage()
        if calls & self.hold:
            await self.release.wait()
        if calls & self.poison:
            raise RuntimeError("deadlock detected")  # not one the writer knows as permanent
        await super().apply_batch(ops)


def crash(writer: CdrWriter) -> None:
    """What SIGKILL leaves behind: no close(), no last fsync, the tasks simply gone."""
    assert writer._task is not None and writer._spool._sync_task is not None
    writer._task.cancel()
    writer._spool._sync_task.cancel()
    for seg in writer._spool._segments:
        if seg.fd is not None:
            import os
            os.close(seg.fd)
            seg.fd = None


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
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
    writer = CdrWriter(repo, tmp_path / "spool.jsonl", retry_min=0.01, retry_max=0.05, max_tries=2)
    writer.start()
    repo.down = True
    write_call(writer, "a", 5)
    assert not await writer.flush(timeout=0.3)
    # More failures than max_tries: an outage is not the writes' fault, nothing is set aside.
    assert repo.refused >= 3 and writer.backlog == 7 and writer.failures >= 3
    assert await CdrRepository(db).get("a") is None

    repo.down = False
    assert await writer.flush(timeout=5)
    call = await CdrRepository(db).get("a")
    assert call is not None and call.disposition == "completed"
    assert [e.detail["i"] for e in call.events] == [0, 1, 2, 3, 4]
    assert writer.failures == 0 and writer.set_aside == 0
    assert not (tmp_path / "spool.rejected").exists()
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
    assert second.backlog == 5
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
    assert writer.health() == {"backlog": 0, "failures": 0, "set_aside": 0, "problem": None}
    write_call(writer, "d0", 2)
    writer.update_call("never-started", disposition="completed")  # no such call: can never succeed
    write_call(writer, "d", 2)  # same batch as the bad write, before and after it
    assert await writer.flush(timeout=5)
    assert (await CdrRepository(db).get("d0")) is not None and (await CdrRepository(db).get("d")) is not None
    rejected = spool.with_suffix(".rejected").read_text()
    assert "never-started" in rejected and "LookupError" in rejected
    assert (spool.with_suffix(".rejected").stat().st_mode & 0o777) == 0o600
    health = writer.health()
    assert health["set_aside"] == 1 and "set aside" in health["problem"]
    await writer.close()


async def test_a_poison_write_gets_bounded_tries_then_is_set_aside_while_the_rest_flow(
    db: Database, tmp_path: Path
) -> None:
    repo = FlakyRepository(db)
    repo.poison.add("p")
    writer = CdrWriter(repo, tmp_path / "spool.jsonl", retry_min=0.001, retry_max=0.002, max_tries=5)
    writer.start()
    for i in range(100):
        write_call(writer, f"ok{i}", 0)  # 200 writes...
    writer.update_call("p", disposition="completed")  # ...the poison one at index 200...
    for i in range(100, 199):
        write_call(writer, f"ok{i}", 0)  # ...and 198 after it: two batches of 200, then one of 1
    assert await writer.flush(timeout=10)
    assert writer.set_aside == 1 and writer.backlog == 0
    assert len(await CdrRepository(db).latest(limit=500)) == 199
    assert "deadlock detected" in (tmp_path / "spool.rejected").read_text()
    # batch 1 lands; batch 2 fails and is halved down to the poison write alone (log2(200) splits),
    # which gets its 5 tries; then the rest go on in full batches again.
    assert writer.transactions <= 1 + 2 * 8 + 5 + 2
    await writer.close()


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
    spool.write_bytes(b"".join(_encode(op) for op in replay + replay))  # twice: one batch, same ids
    second = CdrWriter(CdrRepository(db), spool, retry_min=0.01)
    second.start()
    assert await second.flush(timeout=5)
    assert second.set_aside == 0 and second.transactions == 1
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


async def test_a_torn_last_line_is_cut_before_any_append(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    repo = FlakyRepository(db)
    repo.down = True
    first = CdrWriter(repo, spool)
    first.start()
    write_call(first, "i", 1)
    crash(first)
    whole = spool.read_bytes()
    spool.write_bytes(whole + b'{"op": "event", "call_id": "i", "ty')  # the crash tore an append
    repo.down = False
    second = CdrWriter(repo, spool, retry_min=0.01)
    second.start()
    assert spool.read_bytes() == whole  # cut at start, so the next append cannot merge with it
    write_call(second, "i2", 1)
    assert await second.flush(timeout=5)
    await second.close()
    i = await CdrRepository(db).get("i")
    assert i is not None and i.disposition == "completed" and len(i.events) == 1
    assert (await CdrRepository(db).get("i2")) is not None and second.set_aside == 0


async def test_an_unreadable_line_is_set_aside_and_the_rest_replayed(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    lines = [_encode({"op": "start", "id": "u", "channel_id": "chan-u", "started_at": T0}), b"\x00\x00garbage\n",
             _encode({"op": "update", "call_id": "u", "disposition": "completed"})]
    spool.write_bytes(b"".join(lines))
    writer = CdrWriter(CdrRepository(db), spool, retry_min=0.01)
    writer.start()
    assert await writer.flush(timeout=5)
    await writer.close()
    u = await CdrRepository(db).get("u")
    assert u is not None and u.disposition == "completed"
    assert writer.set_aside == 1 and "garbage" in spool.with_suffix(".rejected").read_text()


async def test_flush_waits_for_earlier_writes_only(db: Database, tmp_path: Path) -> None:
    repo = FlakyRepository(db)
    # One write per transaction here: in a batch, earlier writes land together with later ones.
    writer = CdrWriter(repo, tmp_path / "spool.jsonl", retry_min=0.01, retry_max=0.02, batch_size=1)
    writer.start()
    write_call(writer, "k", 2)
    assert await writer.flush(timeout=5)
    repo.down = True
    write_call(writer, "l", 1)  # queued after: the next flush must wait for these...
    assert not await writer.flush(timeout=0.2)
    waiting = asyncio.create_task(writer.flush(timeout=5))
    await asyncio.sleep(0)
    repo.hold.add("m")
    write_call(writer, "m", 5)  # ...but not for ones queued while it waits (these are stuck)
    repo.down = False
    assert await waiting
    assert await CdrRepository(db).get("l") is not None
    assert writer.backlog == 7 and await CdrRepository(db).get("m") is None
    repo.release.set()
    assert await writer.flush(timeout=5)
    await writer.close()


async def test_writes_are_applied_in_batches(db: Database, tmp_path: Path) -> None:
    writer = CdrWriter(CdrRepository(db), tmp_path / "spool.jsonl", batch_size=200)
    writer.start()
    for i in range(50):
        write_call(writer, f"q{i}", 14)  # 800 writes, queued before the writer task runs
    assert await writer.flush(timeout=10)
    assert writer.transactions == 4
    calls = await CdrRepository(db).latest(limit=100)
    assert len(calls) == 50 and all(len(c.events) == 14 and c.disposition == "completed" for c in calls)
    assert all([e.node for e in c.events] == [f"n{i}" for i in range(14)] for c in calls)
    await writer.close()


async def test_sync_waits_for_the_spool_to_be_fsynced(db: Database, tmp_path: Path) -> None:
    repo = FlakyRepository(db)
    repo.down = True
    writer = CdrWriter(repo, tmp_path / "spool.jsonl", retry_min=0.01)
    writer.start()
    write_call(writer, "s", 3)
    rounds = writer._spool.stats.sync_rounds
    assert await writer.sync(timeout=5)
    assert writer._spool.stats.sync_rounds > rounds and writer._spool.stats.sync_errors == 0
    repo.down = False
    await writer.close()


async def test_health_raises_the_alarm_before_the_bound(db: Database, tmp_path: Path) -> None:
    repo = FlakyRepository(db)
    repo.down = True
    writer = CdrWriter(repo, tmp_path / "spool.jsonl", retry_min=0.01, retry_max=0.02, max_queued=100,
                       alarm_after=0.1)
    writer.start()
    for _ in range(79):
        writer.add_event("x", "node_entered", T0, None, {})
    assert writer.health()["problem"] is None  # 79 % of the bound, and not failing for long yet
    writer.add_event("x", "node_entered", T0, None, {})
    assert "backlog 80" in writer.health()["problem"]
    while writer.failures < 3:
        await asyncio.sleep(0.01)
    assert not await writer.flush(timeout=0.15)
    problem = writer.health()["problem"]
    assert "failing for" in problem and "backlog" in problem
    await writer.close(timeout=0)


async def test_a_replayed_start_fills_in_a_recovered_call(db: Database, tmp_path: Path) -> None:
    repo = CdrRepository(db)
    # The adopting controller found no row: it made one up, knowing little.
    await repo.start(id="r", asterisk_id="ast1", channel_id="chan-r", owner="ctl-2", recovered=True,
                     started_at=T0 + timedelta(seconds=30), flow_name="demo")
    # The dead owner's spool is replayed later: its start, and its events.
    writer = CdrWriter(repo, tmp_path / "spool.jsonl")
    writer.start()
    writer.start_call(id="r", asterisk_id="ast1", channel_id="chan-r", owner="ctl-1", started_at=T0,
                      caller_number="555", caller_name="Alice", dialed="200", flow_name="other", flow_version=3)
    writer.add_event("r", "answered", T0, None, {})
    # A start on a call that was not recovered changes nothing.
    await repo.start(id="n", asterisk_id="ast1", channel_id="chan-n", started_at=T0 + timedelta(seconds=5))
    writer.start_call(id="n", asterisk_id="ast1", channel_id="chan-n", started_at=T0, caller_number="999")
    assert await writer.flush(timeout=5)
    await writer.close()
    r = await repo.get("r")
    assert r is not None and r.recovered and r.owner == "ctl-2"
    assert (r.started_at, r.caller_number, r.caller_name, r.dialed) == (T0, "555", "Alice", "200")
    assert (r.flow_name, r.flow_version) == ("demo", 3)  # the adopter's flow name stands
    assert [e.type for e in r.events] == ["answered"]
    n = await repo.get("n")
    assert n is not None and n.started_at == T0 + timedelta(seconds=5) and n.caller_number == ""
    assert writer.set_aside == 0


async def test_updates_of_a_stored_call_keep_their_types_and_the_last_value_wins(db: Database, tmp_path: Path) -> None:
    repo = CdrRepository(db)
    await repo.start(id="t", asterisk_id="ast1", channel_id="chan-t", started_at=T0)
    channels = [{"id": "chan-t", "role": "caller", "joined_at": T0.isoformat()}]
    await repo.apply_batch([
        {"op": "update", "call_id": "t", "answered_at": T0 + timedelta(seconds=1), "channels": channels},
        {"op": "update", "call_id": "t", "disposition": "transferred"},
        {"op": "update", "call_id": "t", "disposition": "completed", "hangup_cause": 16},
    ])
    t = await repo.get("t")
    assert t is not None and t.answered_at == T0 + timedelta(seconds=1) and t.answered_at.tzinfo is not None
    assert (t.channels, t.disposition, t.hangup_cause) == (channels, "completed", 16)
    with pytest.raises(ValueError, match="unknown CDR fields"):
        await repo.update("t", no_such_column=1)


async def test_recordings_list_saved_ones_and_those_a_stopped_controller_never_saw_end(db: Database) -> None:
    repo = CdrRepository(db)
    await repo.start(id="v", channel_id="chan-v", caller_number="555", started_at=T0)
    await repo.add_event("v", "recording_started", T0, "vm", {"name": "v-vm-1"})
    await repo.add_event("v", "recording_saved", T0 + timedelta(seconds=9), "vm",
                         {"name": "v-vm-1", "duration": 8.5, "size": 136044, "reason": "finished"})
    # The controller died while this one recorded: only its start is in the timeline.
    await repo.add_event("v", "recording_started", T0 + timedelta(seconds=20), "vm", {"name": "v-vm-2"})
    listed = await repo.recordings("v")
    assert [(r["name"], r["duration"], r["reason"]) for r in listed] == [
        ("v-vm-2", None, "unobserved"), ("v-vm-1", 8.5, "finished")]
    assert listed[1]["caller"] == "555" and listed[1]["size"] == 136044
    assert [r["name"] for r in await repo.recordings(limit=1)] == ["v-vm-2"]
