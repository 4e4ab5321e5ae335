"""On SQLite the CDR batch bypasses SQLAlchemy's value processing: it must store exactly what Core stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, insert, text

from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.store.models import CallEvent, CallRecord

MADRID = timezone(timedelta(hours=1))
STARTED = datetime(2026, 3, 1, 9, 30, 5, 120, tzinfo=MADRID)  # not UTC, and a microsecond part
CALL: dict[str, Any] = {
    "channel_id": "chan", "caller_number": "+34600", "dialed": "100", "started_at": STARTED,
    "channels": [{"id": "chan", "role": "inbound"}], "source": "trunk",
}
EVENT: dict[str, Any] = {"type": "digit", "at": STARTED + timedelta(seconds=3), "node": "menu",
                         "detail": {"digit": "5", "ñ": [1, 2.5, None, True]}}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cdr.db'}"
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    yield database
    await database.close()


async def stored(db: Database, table: str, key: str, value: str) -> dict[str, Any]:
    async with db.engine.connect() as conn:
        row = (await conn.execute(text(f"SELECT * FROM {table} WHERE {key} = :v"), {"v": value})).mappings().one()
    # JSON is compared parsed: its spacing may differ (orjson writes it compact), never its value.
    return {k: json.loads(v) if k in ("channels", "detail") else v
            for k, v in row.items() if k not in ("id", "uid", "call_id", "channel_id")}


async def test_a_batch_stores_the_same_values_as_sqlalchemy_core(db: Database) -> None:
    repo = CdrRepository(db)
    await repo.apply_batch([
        {"op": "start", "id": "fast", **{**CALL, "channel_id": "fast-chan"}},
        {"op": "event", "uid": "u-fast", "call_id": "fast", **EVENT},
        {"op": "update", "call_id": "fast", "answered_at": STARTED + timedelta(seconds=1), "recovered": True},
    ])
    await repo.apply_batch([{"op": "update", "call_id": "fast", "ended_at": STARTED + timedelta(seconds=9),
                             "disposition": "completed", "hangup_cause": 16}])
    async with db.engine.begin() as conn:  # the same call through Core, defaults and type processing
        await conn.execute(insert(cast(Table, CallRecord.__table__)).values(
            id="core", **CALL, answered_at=STARTED + timedelta(seconds=1), recovered=True,
            ended_at=STARTED + timedelta(seconds=9), disposition="completed", hangup_cause=16))
        await conn.execute(insert(cast(Table, CallEvent.__table__)).values(uid="u-core", call_id="core", **EVENT))

    assert await stored(db, "calls", "id", "fast") == await stored(db, "calls", "id", "core")
    assert await stored(db, "call_events", "uid", "u-fast") == await stored(db, "call_events", "uid", "u-core")
    call = await repo.get("fast")
    assert call is not None
    assert call.started_at == STARTED and call.started_at.tzinfo is UTC
    assert (call.asterisk_id, call.role, call.recovered, call.owner) == ("", "inbound", True, None)
    assert call.channels == CALL["channels"] and call.ended_at == STARTED + timedelta(seconds=9)
    assert [(e.type, e.at, e.node, e.detail) for e in call.events] == [
        (EVENT["type"], EVENT["at"], EVENT["node"], EVENT["detail"])
    ]


async def test_a_naive_timestamp_is_refused_as_core_refuses_it(db: Database) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        await CdrRepository(db).apply_batch([{"op": "start", "id": "x", **CALL, "started_at": datetime(2026, 1, 1)}])
    assert await CdrRepository(db).get("x") is None
