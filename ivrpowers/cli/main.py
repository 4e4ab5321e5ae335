"""`ivrpowers` command line."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click

from ivrpowers.cli.asterisk import asterisk
from ivrpowers.cli.cdr import cdr
from ivrpowers.cli.common import settings_from, setup_logging
from ivrpowers.cli.db import db
from ivrpowers.cli.flows import flow
from ivrpowers.cli.routes import route
from ivrpowers.config import load_settings
from ivrpowers.store.migrate import SchemaOutdated

log = logging.getLogger("ivrpowers")


@click.group()
@click.option("--state-dir", type=click.Path(path_type=Path), envvar="IVRPOWERS_STATE_DIR",
              help="Where generated secrets, rendered config, logs and the SQLite file live (default ./state).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, state_dir: Path | None, verbose: int) -> None:
    """ivrpowers: contact-center engine on Asterisk."""
    # Everything written from here on (database, spool, logs, rendered config) is the owner's alone.
    os.umask(0o077)
    setup_logging(verbose)
    ctx.obj = {"settings": load_settings(state_dir=state_dir.resolve() if state_dir else None)}


@cli.command()
@click.option("--start-asterisk", is_flag=True, help="Start the project's Asterisk too, and stop it on exit.")
@click.option("--demo", is_flag=True, help="Migrate, import and publish the packaged demo flow, route 100 to it.")
@click.pass_context
def run(ctx: click.Context, start_asterisk: bool, demo: bool) -> None:
    """Run the controller (ARI app, call sessions) and its web app until Ctrl-C."""
    import uvloop

    from ivrpowers import app
    from ivrpowers.asterisk import process

    settings = settings_from(ctx)
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    started = False
    try:
        if start_asterisk:
            status = process.start(settings, attached=True)
            started = True
            log.info("Asterisk %s running (pid %s)", status.version, status.pid)
        if demo:
            from ivrpowers.cli.demo import install_demo, print_how_to_call

            install_demo(settings)
            print_how_to_call(settings)
        # uvloop: the controller's event loop is most of its CPU per call; measured with `make bench-calls`.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(app.serve(settings))
    except SchemaOutdated as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if started:
            process.stop(settings)


cli.add_command(asterisk)
cli.add_command(db)
cli.add_command(flow)
cli.add_command(route)
cli.add_command(cdr)


def main() -> None:
    cli(auto_envvar_prefix="IVRPOWERS_CLI")
