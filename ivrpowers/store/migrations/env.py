"""Alembic environment: async engines for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from ivrpowers.store import chat_models as _chat_models  # noqa: F401  (chats and their messages)
from ivrpowers.store import endpoints as _endpoints  # noqa: F401  (its model joins Base.metadata)
from ivrpowers.store.db import create_engine
from ivrpowers.store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("IVRPOWERS_DB_URL")
    if not url:
        from ivrpowers.config import load_settings

        url = load_settings().database_url
    return url


def _migrate(connection: Connection) -> None:
    # Batch mode: SQLite cannot ALTER most things in place, Alembic recreates the table instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_migrate)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, render_as_batch=True, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
