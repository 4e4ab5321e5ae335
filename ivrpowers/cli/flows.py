"""`ivrpowers flow ...`: validate, import, publish and read flows."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ivrpowers.cli.common import settings_from, with_db
from ivrpowers.store.flows import FlowNotFound, FlowRepository


@click.group()
def flow() -> None:
    """IVR flows (YAML files, versioned in the database)."""


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read: {exc}") from exc


@flow.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check flow files; print FILE:LINE: problem for each problem found (exit 1 if any)."""
    from ivrpowers.flows import check_flow

    failed = False
    for path in files:
        try:
            problems = check_flow(Path(path).read_text(encoding="utf-8"), path)
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"{path}:1: cannot read: {exc}", err=True)
            failed = True
            continue
        for problem in problems:
            click.echo(str(problem), err=True)
        failed = failed or bool(problems)
        if not problems:
            click.echo(f"{path}: ok")
    sys.exit(1 if failed else 0)


@flow.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--publish", is_flag=True, help="Make this version the one live calls run.")
@click.pass_context
def import_(ctx: click.Context, file: str, publish: bool) -> None:
    """Store FILE as a new version of its flow (after validating it)."""
    from ivrpowers.flows import FlowError, load_flow

    source = _read(file)
    try:
        parsed = load_flow(source, file)
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{file} not imported: {len(exc.problems)} problem(s)") from exc

    async def work(db):  # type: ignore[no-untyped-def]
        return await FlowRepository(db).import_source(parsed.name, source, publish=publish)

    version, created = with_db(settings_from(ctx), work)
    state = "published" if version.published else "not published"
    click.echo(f"{version.name} v{version.version} {'imported' if created else 'unchanged'} ({state})")


@flow.command()
@click.argument("name")
@click.option("--version", type=int, help="Default: the latest version.")
@click.pass_context
def publish(ctx: click.Context, name: str, version: int | None) -> None:
    """Make a version of NAME the one live calls run."""

    async def work(db):  # type: ignore[no-untyped-def]
        return await FlowRepository(db).publish(name, version)

    try:
        published = with_db(settings_from(ctx), work)
    except FlowNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{published.name} v{published.version} published")


@flow.command(name="list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List flows with their latest and published versions."""

    async def work(db):  # type: ignore[no-untyped-def]
        return await FlowRepository(db).summaries()

    rows = with_db(settings_from(ctx), work)
    click.echo(f"{'NAME':<24} {'LATEST':>6} {'PUBLISHED':>9} {'VERSIONS':>8}")
    for row in rows:
        published = f"v{row.published_version}" if row.published_version else "-"
        click.echo(f"{row.name:<24} {'v' + str(row.latest_version):>6} {published:>9} {row.versions:>8}")


@flow.command()
@click.argument("name")
@click.option("--version", type=int, help="Default: the latest version.")
@click.pass_context
def show(ctx: click.Context, name: str, version: int | None) -> None:
    """Print a flow's YAML source as stored."""

    async def work(db):  # type: ignore[no-untyped-def]
        return await FlowRepository(db).get(name, version)

    try:
        stored = with_db(settings_from(ctx), work)
    except FlowNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"# {stored.name} v{stored.version}{' (published)' if stored.published else ''}", err=True)
    click.echo(stored.source, nl=not stored.source.endswith("\n"))
