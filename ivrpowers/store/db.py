"""Engine and sessions for SQLite (embedded default) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def _sqlite_pragmas(engine: Engine) -> None:
    # The controller and the CLI share the file: WAL lets readers run beside the writer, and
    # busy_timeout makes a writer wait for the lock instead of failing at once.
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.close()


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 15})
        _sqlite_pragmas(engine.sync_engine)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def create_thread_engine(url: str) -> Engine | None:
    """For SQLite, a plain (blocking) engine on the same file, for work done in a worker thread.

    aiosqlite sends each statement to its own thread and back; a batch of statements run in one
    `asyncio.to_thread` call costs one such round trip instead of one per statement.
    """
    if not url.startswith("sqlite"):
        return None
    engine = sqlalchemy.create_engine(url.replace("+aiosqlite", "+pysqlite", 1),
                                      connect_args={"timeout": 15, "check_same_thread": False})
    _sqlite_pragmas(engine)
    return engine


T = TypeVar("T")


def _in_transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return fn(conn)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.sync_engine = create_thread_engine(url)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in one transaction on a plain Connection: statements on the hot path of calls.

        SQLite: the whole of `fn` in one worker thread (see `create_thread_engine`). PostgreSQL:
        through asyncpg, on the event loop.
        """
        if self.sync_engine is not None:
            return await asyncio.to_thread(_in_transaction, self.sync_engine, fn)
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn)

    async def close(self) -> None:
        await self.engine.dispose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()
