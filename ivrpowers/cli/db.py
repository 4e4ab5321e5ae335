"""`ivrpowers db ...`: schema migrations."""

from __future__ import annotations

import click

from ivrpowers.cli.common import settings_from
from ivrpowers.config import ensure_state_dir


@click.group()
def db() -> None:
    """Database schema."""


@db.command()
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database (IVRPOWERS_DB_URL, or SQLite in the state directory) to REVISION."""
    from ivrpowers.store.migrate import upgrade as run_upgrade

    settings = settings_from(ctx)
    ensure_state_dir(settings.state_dir)
    run_upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")
