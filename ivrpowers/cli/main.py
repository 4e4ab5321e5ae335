"""`ivrpowers` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import click

from ivrpowers.cli import flow_graph as _flow_graph  # noqa: F401  (adds `flow graph`)
from ivrpowers.cli import flow_schema as _flow_schema  # noqa: F401  (adds `flow schema`)
from ivrpowers.cli import flow_simulate  # noqa: F401  (adds `flow simulate`)
from ivrpowers.cli import flow_versions as _flow_versions  # noqa: F401  (adds `flow history`, `diff`, `edit`...)
from ivrpowers.cli.acd import acd
from ivrpowers.cli.agents import agent
from ivrpowers.cli.asterisk import asterisk
from ivrpowers.cli.cdr import cdr
from ivrpowers.cli.common import settings_from, setup_logging
from ivrpowers.cli.db import db
from ivrpowers.cli.endpoints import endpoint
from ivrpowers.cli.errors import Invalid, one_line, report
from ivrpowers.cli.flows import flow
from ivrpowers.cli.media import media
from ivrpowers.cli.queue_report import report as queue_report
from ivrpowers.cli.queues import queue
from ivrpowers.cli.recordings import recording
from ivrpowers.cli.routes import route
from ivrpowers.cli.supervise import supervise
from ivrpowers.cli.wallboard import wallboard
from ivrpowers.config import load_settings

log = logging.getLogger("ivrpowers")


@click.group()
@click.option("--state-dir", type=click.Path(path_type=Path),
              help="Where secrets, rendered config, logs and the SQLite file live. Default: IVRPOWERS_STATE_DIR, "
                   "else state_dir in ~/.config/ivrpowers/config.toml, else ~/.local/state/ivrpowers.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.option("--debug", is_flag=True, envvar="IVRPOWERS_DEBUG", help="Print the traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, state_dir: Path | None, verbose: int, debug: bool) -> None:
    """ivrpowers: contact-center engine on Asterisk.

    Exit codes: 0 done, 1 refused or problems found, 2 usage, 3 not found, 4 unavailable (no
    installation, database or Asterisk down). Errors are one line on stderr.
    """
    global _debug
    _debug = _debug or debug
    # Everything written from here on (database, spool, logs, rendered config) is the owner's alone.
    os.umask(0o077)
    setup_logging(verbose)
    try:
        settings = load_settings(state_dir=state_dir)
    except ValueError as exc:
        raise Invalid(one_line(str(exc))) from exc
    ctx.obj = {"settings": settings}


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
    finally:
        if started:
            process.stop(settings)


cli.add_command(asterisk)
cli.add_command(db)
cli.add_command(flow)
cli.add_command(route)
cli.add_command(cdr)
cli.add_command(recording)
cli.add_command(endpoint)
queue.add_command(queue_report)
cli.add_command(queue)
cli.add_command(agent)
cli.add_command(acd)
cli.add_command(media)
cli.add_command(wallboard)
cli.add_command(supervise)


_debug = False


def main() -> None:
    global _debug
    _debug = os.environ.get("IVRPOWERS_DEBUG", "") not in ("", "0") or "--debug" in sys.argv[1:]
    try:
        code = cli.main(auto_envvar_prefix="IVRPOWERS_CLI", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        code = 130
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        code = 130
    except Exception as exc:
        code = report(exc, debug=_debug)
    sys.exit(code if isinstance(code, int) else 0)
