"""`ivrpowers db ...`: schema migrations."""

from __future__ import annotations

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from
from ivrpowers.config import ensure_state_dir


@click.group()
def db() -> None:
    """Database schema."""


@db.command()
@click.option("--revision", default="head", show_default=True)
@json_option
@click.pass_context
def upgrade(ctx: click.Context, revision: str, as_json: bool) -> None:
    """Migrate the database (IVRPOWERS_DB_URL, or SQLite in the state directory) to REVISION."""
    from ivrpowers.store.migrate import upgrade as run_upgrade

    settings = settings_from(ctx)
    ensure_state_dir(settings.state_dir)
    run_upgrade(settings.database_url, revision)
    if as_json:
        emit_json({"revision": revision, "state_dir": str(settings.state_dir)})
        return
    click.echo(f"database at {revision} ({settings.state_dir})")
