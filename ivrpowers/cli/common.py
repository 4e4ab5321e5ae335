"""What every command shares: settings, logging, running a coroutine with a database."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from ivrpowers.cli.errors import Unavailable
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


def require_installation(settings: Settings) -> None:
    """Refuse, in one line with the fix, to work on a state directory that holds no installation."""
    if (sqlite := settings.sqlite_path) is not None and not sqlite.exists():
        how = settings.state_dir_found_by
        named = "the default state directory" if how == "the default" else f"the state directory {how} names"
        raise Unavailable(
            f"no ivrpowers installation in {settings.state_dir}, {named}",
            "set one up there with `make run` or `ivrpowers db upgrade`, or name yours with --state-dir or "
            "IVRPOWERS_STATE_DIR",
        )


def with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on the installation's database, after checking there is one and its schema is current."""
    from ivrpowers.store.migrate import check_schema

    require_installation(settings)

    async def main() -> T:
        await check_schema(settings.database_url)
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def json_option(f: Callable[..., T]) -> Callable[..., T]:
    """`--json`: the command prints its data as JSON (the shapes are in the README), nothing else on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
