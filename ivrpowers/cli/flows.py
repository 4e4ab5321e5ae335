"""`ivrpowers flow ...`: validate, import, publish and read flows."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import CliError
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowRepository, LiveChange
from ivrpowers.store.models import FlowVersion

if TYPE_CHECKING:
    from ivrpowers.config import Settings
    from ivrpowers.flows import Flow

T = TypeVar("T")


@click.group()
def flow() -> None:
    """IVR flows (YAML files, versioned in the database)."""


def _read(path: str) -> str:
    # Bytes decoded as they are (no newline translation, a BOM kept): what is stored is exactly the file.
    try:
        return Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read: {exc}") from exc


def message_option(f: Callable[..., T]) -> Callable[..., T]:
    """`-m MSG`: why, kept in the flow's history."""
    return click.option("-m", "--message", help="Why: kept in `ivrpowers flow history`.")(f)


def _version(v: FlowVersion) -> dict[str, Any]:
    return {"name": v.name, "version": v.version, "published": v.published}


@flow.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@json_option
@click.pass_context
def validate(ctx: click.Context, files: tuple[str, ...], strict: bool, as_json: bool) -> None:
    """Check flow files and lint them: FILE:LINE: problem (or warning: ...) on stderr, one per line.

    Exit 1 on any error (or, with --strict, any warning). Sound names are checked against the
    Asterisk in use when one is installed; transfers to outside numbers against the settings.
    """
    from ivrpowers.flows import Problem
    from ivrpowers.flows.subflows import subflow_cycle

    settings = settings_from(ctx)
    sounds, videos = installed_sounds(), installed_videos(settings)
    results: dict[str, list[Problem]] = {}
    files_of, calls = {}, {}  # flow name -> its file, the subflows it runs
    for path in files:
        results[path], parsed = checked(path, settings.number_allowed, sounds, videos)
        if parsed is not None:
            files_of[parsed[0]], calls[parsed[0]] = path, parsed[1]
    for name, path in files_of.items():  # cycles among the files checked together
        if cycle := subflow_cycle(name, calls):
            results[path].append(Problem(path, 1, f"subflow cycle: {' -> '.join(cycle)}"))
    failed = False
    out = []
    for path, problems in results.items():
        errors = sum(p.severity == "error" for p in problems)
        warnings = len(problems) - errors
        ok = not errors and not (strict and warnings)
        failed |= not ok
        out.append({"file": path, "ok": ok, "errors": errors, "warnings": warnings,
                    "problems": [{"file": p.file, "line": p.line, "severity": p.severity, "message": p.message}
                                 for p in problems]})
        for problem in problems:
            click.echo(str(problem), err=True)
        if not as_json:
            counts = f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else ""
            click.echo(f"{path}: ok{counts}" if not errors else f"{path}: {errors} error{'s' * (errors != 1)}"
                       + (f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""))
    if sounds is None and not as_json:
        click.echo("note: no Asterisk installed here: sound names not checked", err=True)
    if as_json:
        emit_json(out)
    sys.exit(1 if failed else 0)


def installed_sounds() -> set[str] | None:
    """The sound names of the Asterisk in use, or None when none is installed (not built yet)."""
    from ivrpowers.asterisk.rootfs import RootfsError, find_installation
    from ivrpowers.flows.lint import sound_inventory

    try:
        installation = find_installation(build=False)
    except RootfsError:
        return None
    root = Path("/usr/share/asterisk/sounds")
    if installation.rootfs is not None:
        root = installation.rootfs / "usr/share/asterisk/sounds"
    return sound_inventory(root) or None


def installed_videos(settings: Settings) -> dict[str, tuple[str, ...]]:
    """The media library's video prompts, each with the codecs it has a file for."""
    from ivrpowers.media.library import MediaLibrary, media_root

    return {info.name: tuple(info.codecs) for info in MediaLibrary(media_root(settings)).list()}


def checked(path: str, number_allowed: Callable[[str], bool], sounds: set[str] | None,
            videos: dict[str, tuple[str, ...]] | None = None) -> tuple[list[Any], tuple[str, set[str]] | None]:
    """A file's problems and warnings, and (its flow's name, the subflows it runs) when it loads."""
    from ivrpowers.flows import FlowError, Problem
    from ivrpowers.flows.loader import lint_flow, read_flow_file
    from ivrpowers.flows.subflows import subflow_targets

    try:
        text = read_flow_file(path)
    except FlowError as exc:
        return list(exc.problems), None
    except OSError as exc:
        return [Problem(path, 1, f"cannot read: {exc}")], None
    flow, problems = lint_flow(text, path, sounds=sounds, number_allowed=number_allowed, videos=videos)
    if flow is None or any(p.severity == "error" for p in problems):
        return problems, None
    return problems, (flow.name, subflow_targets(flow))


@flow.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--publish", is_flag=True, help="Make this version the one live calls run.")
@message_option
@json_option
@click.pass_context
def import_(ctx: click.Context, file: str, publish: bool, message: str | None, as_json: bool) -> None:
    """Store FILE as a new version of its flow, after validating it; an unchanged file makes none."""
    source = _read(file)
    parsed = refuse_errors(source, file, settings_from(ctx), "not imported")
    stored = store(ctx, parsed, source, publish=publish, message=message)
    say_stored(stored, publish=publish, as_json=as_json)


Stored = tuple[FlowVersion, bool, int | None, int | None]  # version, created, live before, live now


def store(ctx: click.Context, parsed: Flow, source: str, *, publish: bool, message: str | None,
          base_version: int | None = None) -> Stored:
    """Store `source` (`parsed`) as a version of its flow (see `FlowRepository.import_source`), with what
    is live around it."""
    name = parsed.name

    async def work(db: Database) -> Stored:
        flows = FlowRepository(db)
        if publish:
            await refuse_subflow_cycle(flows, parsed)
        before = await flows.published(name)
        version, created = await flows.import_source(name, source, publish=publish, message=message,
                                                     base_version=base_version)
        after = await flows.published(name)
        return version, created, before.version if before else None, after.version if after else None

    return with_db(settings_from(ctx), work)


def refuse_errors(source: str, filename: str, settings: Settings, what: str) -> Flow:
    """Print a flow's problems and warnings; refuse it (exit 1) if any is an error; else the flow."""
    from ivrpowers.flows.loader import lint_flow

    flow, problems = lint_flow(source, filename, sounds=installed_sounds(), number_allowed=settings.number_allowed,
                               videos=installed_videos(settings))
    for problem in problems:
        click.echo(str(problem), err=True)
    errors = sum(p.severity == "error" for p in problems)
    if flow is None or errors:
        raise CliError(f"{filename} {what}: {errors} error{'s' * (errors != 1)}", "fix them and try again")
    return flow


async def refuse_subflow_cycle(flows: FlowRepository, flow: Flow) -> None:
    """Refuse to make live a version of a flow that would run itself through subflows."""
    from ivrpowers.flows import FlowError, load_flow
    from ivrpowers.flows.subflows import subflow_cycle, subflow_targets

    name = flow.name
    calls = {name: subflow_targets(flow)}
    if not calls[name]:
        return
    for summary in await flows.summaries():
        if summary.name == name or summary.published_version is None:
            continue
        try:
            live = load_flow((await flows.get(summary.name, summary.published_version)).source, summary.name)
        except FlowError:
            continue  # a live version that no longer loads runs nothing either
        calls[summary.name] = subflow_targets(live)
    if cycle := subflow_cycle(name, calls):
        raise CliError(f"{name} would run itself: subflow cycle {' -> '.join(cycle)} (live versions)",
                       "remove one of these subflow nodes")


def say_stored(stored: Stored, *, publish: bool, as_json: bool, verb: str = "imported") -> None:
    version, created, live_before, live = stored
    if as_json:
        emit_json({**_version(version), "created": created, "live_version": live, "previous_live_version": live_before})
        return
    name, v = version.name, version.version
    what = f"{name} v{v} {verb}" if created else f"{name} unchanged: same as v{v}, no new version"
    if live is None:
        click.echo(f"{what}; no version is live (publish one: `ivrpowers flow publish {name}`)")
    elif publish and live_before != live:
        click.echo(f"{what}; v{live} is live now" + (f" (was v{live_before})" if live_before else ""))
    elif live == v:
        click.echo(f"{what}; v{live} is live (it already was)")
    else:
        click.echo(f"{what}; v{live} is still the live one (`ivrpowers flow publish {name} --version {v}` to change)")


@flow.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="Default: the latest version.")
@message_option
@json_option
@click.pass_context
def publish(ctx: click.Context, name: str, version: int | None, message: str | None, as_json: bool) -> None:
    """Make a version of NAME the one live calls run."""

    settings = settings_from(ctx)

    async def work(db: Database) -> LiveChange:
        flows = FlowRepository(db)
        chosen = await flows.get(name, version)
        parsed = refuse_errors(chosen.source, f"{name} v{chosen.version}", settings, "not published")
        await refuse_subflow_cycle(flows, parsed)
        return await flows.publish(name, version, message=message)

    say_live(with_db(settings_from(ctx), work), as_json=as_json)


def say_live(change: LiveChange, *, as_json: bool, how: str = "") -> None:
    """What a publish or a rollback left live, and what was live before."""
    live, before = change.version, change.previous
    if as_json:
        emit_json({**_version(live), "live_version": live.version, "previous_live_version": before})
        return
    was = "it already was" if before == live.version else f"was v{before}" if before else "none was"
    click.echo(f"{live.name} v{live.version} is live now ({how}{was})")


@flow.command(name="list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List flows with their latest and published versions."""

    async def work(db: Database) -> list[Any]:
        return await FlowRepository(db).summaries()

    rows = with_db(settings_from(ctx), work)
    if as_json:
        emit_json([{"name": r.name, "latest_version": r.latest_version, "published_version": r.published_version,
                    "versions": r.versions} for r in rows])
        return
    click.echo(f"{'NAME':<24} {'LATEST':>6} {'PUBLISHED':>9} {'VERSIONS':>8}")
    for row in rows:
        published = f"v{row.published_version}" if row.published_version else "-"
        click.echo(f"{row.name:<24} {'v' + str(row.latest_version):>6} {published:>9} {row.versions:>8}")


@flow.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="Default: the latest version.")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, version: int | None, as_json: bool) -> None:
    """Print a flow's YAML source as stored."""

    async def work(db: Database) -> FlowVersion:
        return await FlowRepository(db).get(name, version)

    stored = with_db(settings_from(ctx), work)
    if as_json:
        emit_json({**_version(stored), "source": stored.source})
        return
    click.echo(f"# {stored.name} v{stored.version}{' (published)' if stored.published else ''}", err=True)
    click.echo(stored.source, nl=not stored.source.endswith("\n"))
