"""`ivrpowers acd apply FILE`: queues and agents from a reviewable YAML file, idempotently."""

from __future__ import annotations

import click

from ivrpowers.acd.changes import Change, plan
from ivrpowers.acd.definitions import check_acd_file
from ivrpowers.cli import controller_api
from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import CliError
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.db import Database
from ivrpowers.yamlfile import FileError, read_text_file


@click.group()
def acd() -> None:
    """The ACD as a whole: queues and agents declared in a file."""


@acd.command()
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option("--prune", is_flag=True, help="Also delete the queues and agents the file does not define.")
@json_option
@click.pass_context
def apply(ctx: click.Context, path: str, dry_run: bool, prune: bool, as_json: bool) -> None:
    """Create and update the queues and agents FILE defines; print each change.

    Applying the same file again changes nothing. Nothing is stored if the file has a problem:
    each one is printed as FILE:LINE: message.
    """
    try:
        text = read_text_file(path)
    except FileError as exc:
        raise CliError(str(exc.problems[0])) from None

    async def work(db: Database) -> list[Change]:
        repo = AcdRepository(db)
        queues, agents = await repo.queues(), await repo.agents()
        definitions, problems = check_acd_file(text, path, known_queues=set(queues))
        if definitions is None:
            for problem in problems:
                click.echo(str(problem), err=True)
            raise CliError(f"{path}: {len(problems)} problem(s), nothing applied")
        changes = plan(definitions, queues, agents, prune=prune)
        if not dry_run:
            await repo.apply(changes)
        return changes

    changes = with_db(settings_from(ctx), work)
    if not dry_run:
        controller_api.reload_quietly(settings_from(ctx))
    done = [c for c in changes if c.action != "unchanged"]
    if as_json:
        emit_json({"dry_run": dry_run, "changes": [c.to_dict() for c in changes]})
        return
    for change in done:
        click.echo(("would " if dry_run else "") + change.describe())
    kept = len(changes) - len(done)
    click.echo(f"{'would change' if dry_run else 'changed'} {len(done)}, unchanged {kept}", err=True)
