"""What every command shares: settings, logging, running a coroutine with a database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from ivrpowers.config import Settings
from ivrpowers.store.db import Database

T = TypeVar("T")


def settings_from(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj["settings"]  # set by the root command (cli/main.py)
    return settings


def setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic narrates every plugin it sets up at INFO: only its warnings are news here.
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)


def with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())
