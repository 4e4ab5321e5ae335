"""`ivrpowers flow history | diff | rollback | export | edit`: a flow's stored versions and what was live when."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import CliError, one_line
from ivrpowers.cli.flows import flow, message_option, say_live, say_stored, store
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowChanged, FlowHistory, FlowRepository, LiveChange, NothingToRollBack
from ivrpowers.store.models import FlowVersion

if TYPE_CHECKING:
    from ivrpowers.flows import Flow, Problem


def _time(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def history_to_dict(found: FlowHistory) -> dict[str, Any]:
    return {
        "name": found.name,
        "live_version": found.live_version,
        "versions": [{"version": v.version, "created_at": _iso(v.created_at), "message": v.message,
                      "live": v.published, "published_at": _iso(v.published_at)} for v in found.versions],
        "publishes": [{"version": p.version, "at": _iso(p.at), "message": p.message,
                       "previous_version": p.previous_version, "rollback": p.rollback} for p in found.publishes],
    }


@flow.command()
@click.argument("name")
@json_option
@click.pass_context
def history(ctx: click.Context, name: str, as_json: bool) -> None:
    """NAME's versions, newest first, with their messages; then every change of the live version."""

    async def work(db: Database) -> FlowHistory:
        return await FlowRepository(db).history(name)

    found = with_db(settings_from(ctx), work)
    if as_json:
        emit_json(history_to_dict(found))
        return
    click.echo(f"{'VERSION':<8} {'IMPORTED (UTC)':<19}  {'LIVE':<4}  {'LAST PUBLISHED':<19}  MESSAGE")
    for v in found.versions:
        click.echo(f"{'v' + str(v.version):<8} {_time(v.created_at):<19}  {'live' if v.published else '':<4}  "
                   f"{_time(v.published_at):<19}  {one_line(v.message or '')}".rstrip())
    if not found.publishes:
        click.echo(f"\nno version of {name} was ever published (`ivrpowers flow publish {name}`)")
        return
    click.echo(f"\n{'PUBLISHED (UTC)':<19}  {'VERSION':<8} {'WAS':<6} MESSAGE")
    for p in found.publishes:
        was = f"v{p.previous_version}" if p.previous_version else "-"
        why = " ".join(part for part in ("(rollback)" if p.rollback else "", one_line(p.message or "")) if part)
        click.echo(f"{_time(p.at):<19}  {'v' + str(p.version):<8} {was:<6} {why}".rstrip())


def _lines(text: str) -> list[str]:
    # Not str.splitlines: it also splits on form feeds and Unicode separators, which YAML keeps in a line.
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def unified_diff(old: str, old_label: str, new: str, new_label: str) -> str:
    out = []
    for line in difflib.unified_diff(_lines(old), _lines(new), old_label, new_label):
        # A last line without a newline must not run into the next line of the diff: say it as diff(1) does.
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


@flow.command()
@click.argument("name")
@click.argument("v1", required=False, type=click.IntRange(min=1))
@click.argument("v2", required=False, type=click.IntRange(min=1))
@click.pass_context
def diff(ctx: click.Context, name: str, v1: int | None, v2: int | None) -> None:
    """Unified diff between two stored versions of NAME.

    No version: the latest against the live one (against the one before it if none is live). V1 alone:
    V1 against the latest.
    """

    async def work(db: Database) -> tuple[FlowVersion | None, FlowVersion]:
        flows = FlowRepository(db)
        new = await flows.get(name, v2)
        if v1 is not None:
            return await flows.get(name, v1), new
        old = await flows.published(name)
        if old is None and new.version > 1:
            old = await flows.get(name, new.version - 1)
        return old, new

    old, new = with_db(settings_from(ctx), work)
    old_label, new_label = (f"{name} v{old.version}" if old else "/dev/null"), f"{name} v{new.version}"
    text = unified_diff(old.source if old else "", old_label, new.source, new_label)
    if not text:
        click.echo(f"no difference between {old_label} and {new_label}", err=True)
    click.echo(text, nl=False)


@flow.command()
@click.argument("name")
@message_option
@json_option
@click.pass_context
def rollback(ctx: click.Context, name: str, message: str | None, as_json: bool) -> None:
    """Make live again the version that was live before the current one (again: one further back)."""

    async def work(db: Database) -> LiveChange:
        try:
            return await FlowRepository(db).rollback(name, message=message)
        except NothingToRollBack as exc:
            fix = f"publish a version by number: `ivrpowers flow publish {name} --version N`"
            raise CliError(str(exc), fix) from exc

    say_live(with_db(settings_from(ctx), work), as_json=as_json, how="rolled back; ")


@flow.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="Default: the latest version.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.pass_context
def export(ctx: click.Context, name: str, version: int | None, output: str | None) -> None:
    """A stored version of NAME exactly as it was imported: comments, line endings and all."""

    async def work(db: Database) -> FlowVersion:
        return await FlowRepository(db).get(name, version)

    stored = with_db(settings_from(ctx), work)
    data = stored.source.encode("utf-8")
    if output is None:
        click.echo(data, nl=False)  # bytes: no newline or encoding translation on the way out
        return
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise CliError(f"{output}: cannot write: {exc.strerror or exc}") from exc
    click.echo(f"{stored.name} v{stored.version} written to {output}", err=True)


class EditKept(CliError):
    """Nothing was stored; the edited text stays in its file, for the user to take up again."""


@flow.command()
@click.argument("name")
@click.option("--publish", is_flag=True, help="Also make the new version the one live calls run.")
@message_option
@json_option
@click.pass_context
def edit(ctx: click.Context, name: str, publish: bool, message: str | None, as_json: bool) -> None:
    """Edit the latest version of NAME in $VISUAL or $EDITOR; a valid change is stored as a new version.

    An edit with problems is never stored: they are printed and you may edit again. Without -m, the
    message is asked for when stdin is a terminal. The new version goes live only with --publish.
    """

    async def latest(db: Database) -> tuple[FlowVersion, int | None]:
        flows = FlowRepository(db)
        live = await flows.published(name)
        return await flows.get(name), live.version if live else None

    base, live = with_db(settings_from(ctx), latest)
    workdir = Path(tempfile.mkdtemp(prefix="ivrpowers-edit-"))
    path = workdir / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name) or 'flow'}.yaml"
    path.write_bytes(base.source.encode("utf-8"))
    kept = False
    try:
        edited = _edit_until_valid(name, path, base.source, settings_from(ctx).number_allowed)
        if edited is None:
            say_stored((base, False, live, live), publish=False, as_json=as_json)
            return
        if message is None and sys.stdin.isatty():
            try:
                message = click.prompt("message (why this change)", default="", show_default=False, err=True) or None
            except click.Abort:
                raise EditKept("interrupted: nothing stored", f"your edit is kept in {path}") from None
        try:
            text, parsed = edited
            stored = store(ctx, parsed, text, publish=publish, message=message, base_version=base.version)
        except FlowChanged as exc:
            raise EditKept(f"{exc}; nothing stored",
                           f"your edit is in {path}: see `ivrpowers flow diff {name}`, then import it") from exc
        say_stored(stored, publish=publish, as_json=as_json, verb="stored")
    except EditKept:
        kept = True
        raise
    finally:
        if not kept:
            shutil.rmtree(workdir, ignore_errors=True)


def _edit_until_valid(
    name: str, path: Path, original: str, number_allowed: Callable[[str], bool]
) -> tuple[str, Flow] | None:
    """Edit `path` until it holds a valid flow named `name`; its text and flow, or None if left unchanged."""
    while True:
        _run_editor(path)
        text, flow, problems = _check(name, path, number_allowed)
        if text == original:
            return None
        if not problems:
            assert text is not None and flow is not None
            return text, flow
        for problem in problems:
            click.echo(str(problem), err=True)
        if not _edit_again():
            raise EditKept(f"{name} not changed: the edit has {len(problems)} problem(s), nothing stored",
                           f"your edit is kept in {path}")


def _edit_again() -> bool:
    try:
        return click.confirm("edit again?", default=True, err=True)
    except click.Abort:
        return False  # no answer (end of input, Ctrl-C): nothing is stored, as with "n"
    finally:
        if not sys.stdin.isatty():
            click.echo(err=True)  # no terminal echoed the answer and its newline: end the prompt's line


def _run_editor(path: Path) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    # Through the shell, as git does: the variable may hold arguments ("code --wait") and quoting.
    done = subprocess.run(["sh", "-c", f'{editor} "$@"', editor, str(path)], check=False)
    if done.returncode != 0:
        fix = "set $VISUAL or $EDITOR to your editor" if done.returncode == 127 else None
        raise CliError(f"the editor ({editor}) exited with status {done.returncode}; nothing stored", fix)


def _check(name: str, path: Path, number_allowed: Callable[[str], bool]
           ) -> tuple[str | None, Flow | None, list[Problem]]:
    """The edited text (None if unreadable), its flow and its problems, a change of the flow's name among them."""
    from ivrpowers.cli.flows import installed_sounds
    from ivrpowers.flows import Problem
    from ivrpowers.flows.loader import lint_flow

    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, None, [Problem(file, 1, f"cannot read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, None, [Problem(file, data[: exc.start].count(b"\n") + 1, "file is not valid UTF-8")]
    # What `flow validate` would call an error (lint's included); warnings don't stop an edit.
    flow, found = lint_flow(text, file, sounds=installed_sounds(), number_allowed=number_allowed)
    problems = [p for p in found if p.severity == "error"]
    if not problems and flow is not None and flow.name != name:
        line = next((n for n, ln in enumerate(_lines(text), 1) if re.match(r"name\s*:", ln)), 1)
        problems = [Problem(file, line, f"name: {flow.name!r}: this edits flow {name!r} (to make a new flow, "
                                         "import a file)")]
    return text, flow, problems
