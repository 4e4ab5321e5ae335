"""A big CDR backlog drains in linear work with bounded memory, and a killed process loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.store.models import CallEvent, CallRecord
from ivrpowers.store.writer import CdrWriter

from .waiting import until

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
N = 100_000


class CountingRepository(CdrRepository):
    """Stands for a database that takes every write: counts transactions, checks order, and watches
    how many writes the writer holds in memory while it applies them."""

    def __init__(self) -> None:
        self.writer: CdrWriter | None = None
        self.transactions = 0
        self.applied: list[int] = []
        self.most_in_memory = 0
        self.down = False

    async def ping(self) -> None:
        if self.down:
            raise ConnectionRefusedError("down")

    async def apply_batch(self, ops: Sequence[Mapping[str, Any]]) -> None:
        if self.down:
            raise ConnectionRefusedError("down")
        assert self.writer is not None
        self.most_in_memory = max(self.most_in_memory, self.writer._spool.in_memory)
        self.transactions += 1
        self.applied.extend(op["detail"]["n"] for op in ops)


def queue(writer: CdrWriter, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        writer.add_event("c", "node_entered", T0, "n", {"n": i})


async def test_a_backlog_of_100000_writes_drains_in_linear_work_with_bounded_memory(tmp_path: Path) -> None:
    repo = CountingRepository()
    repo.down = True
    writer = CdrWriter(repo, tmp_path / "spool.jsonl", retry_min=0.01, retry_max=0.01, batch_size=200,
                       max_queued=1000, segment_bytes=256 << 10)
    repo.writer = writer
    writer.start()
    queue(writer, N // 2)
    await until(lambda: writer.failures > 0)  # an outage, seen by the writer, with a growing backlog...
    queue(writer, N // 2, start=N // 2)
    assert writer.backlog == N and writer._spool.in_memory == 1000  # the rest only on disk
    assert writer.health()["problem"] is not None  # far past the alarm
    repo.down = False
    queue(writer, 10, start=N)  # ...and writes keep coming while it drains
    assert await writer.flush(timeout=60)
    await writer.close()

    stats = writer._spool.stats
    assert repo.applied == list(range(N + 10))  # all of them, once, in order
    assert repo.transactions == (N + 10 + 199) // 200  # full batches
    assert repo.most_in_memory <= 1000
    # Each byte appended once and read back at most once: nothing is ever rewritten.
    assert stats.records_read_back == N + 10 - 1000 and stats.bytes_read_back < stats.bytes_written
    assert stats.segments_deleted >= stats.bytes_written // (256 << 10) - 1
    assert [p.name for p in tmp_path.iterdir()] == [f"spool.{stats.segments_deleted:06d}.jsonl"]
    assert writer.health() == {"backlog": 0, "failures": 0, "set_aside": 0, "problem": None}


async def test_100000_queued_writes_all_land_in_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cdr.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    writer = CdrWriter(CdrRepository(db), tmp_path / "spool.jsonl", max_queued=20_000)
    writer.start()
    calls = N // 20  # each call: a start, 18 events, an end
    for c in range(calls):
        writer.start_call(id=f"c{c}", channel_id=f"ch{c}", dialed="100", started_at=T0)
        for j in range(18):
            writer.add_event(f"c{c}", "node_entered", T0 + timedelta(seconds=j), f"n{j}", {"j": j})
        writer.update_call(f"c{c}", ended_at=T0, disposition="completed")
    assert writer.backlog == N
    assert await writer.flush(timeout=120)
    await writer.close()
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(CallRecord)) == calls
        assert await session.scalar(
            select(func.count()).select_from(CallRecord).where(CallRecord.disposition == "completed")) == calls
        assert await session.scalar(select(func.count()).select_from(CallEvent)) == calls * 18
    assert writer.transactions == N // 200 and writer.set_aside == 0
    await db.close()


CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from ivrpowers.store.writer import CdrWriter

    class Down:
        async def ping(self): raise ConnectionRefusedError("down")
        async def apply_batch(self, ops): raise ConnectionRefusedError("down")

    async def main():
        writer = CdrWriter(Down(), Path(sys.argv[1]), max_queued=100)
        writer.start()
        for i in range(5000):
            writer.add_event("c", "dtmf", datetime.now(UTC), None, {"n": i})
        os.kill(os.getpid(), signal.SIGKILL)  # right after the last add_event returned

    asyncio.run(main())
""")


async def test_a_killed_process_loses_no_write_that_returned(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    child = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", CHILD, str(spool)], cwd=os.getcwd())
    assert child.returncode == -signal.SIGKILL

    repo = CountingRepository()
    writer = CdrWriter(repo, spool)
    repo.writer = writer
    writer.start()
    assert writer.backlog == 5000
    assert await writer.flush(timeout=30)
    await writer.close()
    assert repo.applied == list(range(5000))


async def test_a_restart_replays_every_segment_in_order(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    down = CountingRepository()
    down.down = True
    first = CdrWriter(down, spool, max_queued=50, segment_bytes=4096)
    down.writer = first
    first.start()
    queue(first, 2000)
    await first.close(timeout=0)  # the database never came back: everything stays on disk
    segments = sorted(p.name for p in tmp_path.iterdir())
    assert len(segments) > 10 and "spool.jsonl" in segments and "spool.000010.jsonl" in segments

    repo = CountingRepository()
    second = CdrWriter(repo, spool, max_queued=50, segment_bytes=4096)
    repo.writer = second
    second.start()
    assert second.backlog == 2000
    queue(second, 10, start=2000)  # after the replay, in order
    assert await second.flush(timeout=30)
    await second.close()
    assert repo.applied == list(range(2010)) and repo.most_in_memory <= 50
    assert len(list(tmp_path.iterdir())) == 1
