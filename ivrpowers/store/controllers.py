"""Controllers' liveness: each writes a heartbeat; the others read it before touching its calls."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ivrpowers.store.db import Database
from ivrpowers.store.models import ControllerRecord


class ControllerRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def register(self, id: str, *, asterisk_id: str, host: str, pid: int, at: datetime) -> None:
        async with self.db.session() as session, session.begin():
            session.add(ControllerRecord(id=id, asterisk_id=asterisk_id, host=host, pid=pid,
                                         started_at=at, heartbeat_at=at))

    async def heartbeat(self, id: str, at: datetime) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(update(ControllerRecord).where(ControllerRecord.id == id).values(heartbeat_at=at))

    async def stopped(self, id: str, at: datetime) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(update(ControllerRecord).where(ControllerRecord.id == id).values(stopped_at=at))

    async def alive(self, ids: Iterable[str], *, now: datetime, stale_after: timedelta) -> set[str]:
        """The subset of `ids` known alive: not stopped and heartbeat fresher than `stale_after`.

        An id with no row is not alive: a controller registers before it owns any call.
        """
        wanted = set(ids)
        if not wanted:
            return set()
        async with self.db.session() as session:
            rows = await session.execute(
                select(ControllerRecord.id).where(
                    ControllerRecord.id.in_(wanted),
                    ControllerRecord.stopped_at.is_(None),
                    ControllerRecord.heartbeat_at > now - stale_after,
                )
            )
            return {row[0] for row in rows}
