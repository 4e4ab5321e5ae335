"""`ivrpowers flow simulate`: run a flow file or a stored flow on a simulated call."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import CliError, Invalid
from ivrpowers.cli.flows import _read, flow
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowRepository


def _variable(text: str) -> tuple[str, Any]:
    name, eq, raw = text.partition("=")
    if not eq or not name:
        raise Invalid(f"--var {text!r}: expected NAME=VALUE")
    try:
        value = json.loads(raw)  # 42, true, null, "text", [..] and {..} as JSON
    except ValueError:
        value = raw  # anything else is text
    return name, value


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"--at {text!r}: expected an ISO time such as 2026-12-07T10:30 "
                      "(in the flow's time zone unless it gives an offset)") from None


def _parse(source: str, filename: str) -> Any:
    from ivrpowers.flows import FlowError, load_flow

    try:
        return load_flow(source, filename)
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise CliError(f"{filename}: not a valid flow ({len(exc.problems)} problem(s) above)") from None


def _fixture(path: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from ivrpowers.flows.simulate import FixtureHttp

    try:
        answers = YAML(typ="safe").load(_read(path))
        return FixtureHttp(answers if isinstance(answers, dict) else {})
    except (YAMLError, ValueError) as exc:
        raise Invalid(f"--http-fixture {path}: {exc}") from None


async def _run(simulate: Any, parsed: Any, http: Any, **options: Any) -> Any:
    from ivrpowers.calls.services import AiohttpHttp

    real = AiohttpHttp() if http is None else None
    try:
        return await simulate(parsed, http=http or real, **options)
    finally:
        if real is not None:
            await real.close()


@flow.command()
@click.argument("flow_ref", metavar="NAME|FILE")
@click.option("--dtmf", default="", help="What the caller presses, one digit each time the flow waits; ',' is a "
              "silence (one timeout). After the last, the caller hangs up.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="A variable set before the start "
              "(VALUE is read as JSON when it is JSON, else as text). Repeatable.")
@click.option("--at", "at", metavar="ISO-TIME", help="When the call happens (default: now).")
@click.option("--http-fixture", "fixture", type=click.Path(dir_okay=False, exists=True),
              help='Answers for http nodes, by "METHOD URL" (YAML or JSON); without it they make real requests.')
@click.option("--transfer", "transfer", type=click.Choice(["answered", "no_answer", "busy", "failed"]),
              default="answered", show_default=True, help="How transfer nodes end.")
@click.option("--queue", "queue", type=click.Choice(["answered", "timeout", "no_agents", "wait"]),
              default="answered", show_default=True,
              help="How queue nodes end: an agent answers, the queue times out, nobody is logged in, or no agent "
                   "ever comes (the caller's digits and the node's max_wait decide).")
@click.option("--caller", default="5551234", show_default=True, help="The caller's number.")
@click.option("--dialed", default="100", show_default=True, help="The number dialed.")
@json_option
@click.pass_context
def simulate(ctx: click.Context, flow_ref: str, dtmf: str, variables: tuple[str, ...], at: str | None,
             fixture: str | None, transfer: str, queue: str, caller: str, dialed: str, as_json: bool) -> None:
    """Run a flow on a simulated call: the path taken, the prompts heard, the variables at the end.

    NAME|FILE is a flow file, or the name of a stored flow (its published version, else its latest).
    Nothing waits in real time and no Asterisk is needed.
    """
    from ivrpowers.flows.simulate import parse_dtmf
    from ivrpowers.flows.simulate import simulate as run_simulation

    settings = settings_from(ctx)
    try:
        parse_dtmf(dtmf)
    except ValueError as exc:
        raise Invalid(f"--dtmf: {exc}") from None
    initial = dict(_variable(v) for v in variables)
    when = _when(at)
    http = _fixture(fixture) if fixture else None
    options: dict[str, Any] = {"dtmf": dtmf, "variables": initial, "at": when, "default_tz": settings.timezone,
                               "caller_number": caller, "dialed": dialed, "secrets": settings.flow_secrets,
                               "transfer": transfer, "queue": queue}
    if os.path.exists(flow_ref) or flow_ref.endswith((".yaml", ".yml")):
        from ivrpowers.flows.simulate import DirectoryFlows

        parsed = _parse(_read(flow_ref), flow_ref)
        flows = DirectoryFlows(Path(flow_ref).resolve().parent)
        result = asyncio.run(_run(run_simulation, parsed, http, flows=flows, **options))
    else:
        async def stored(db: Database) -> Any:
            from ivrpowers.calls.routing import Router
            from ivrpowers.store.routes import RouteRepository

            repo = FlowRepository(db)
            found = await repo.published(flow_ref) or await repo.get(flow_ref)
            parsed = _parse(found.source, f"{found.name} v{found.version}")
            return await _run(run_simulation, parsed, http, flows=Router(RouteRepository(db), repo, ttl=0),
                              **options)

        result = with_db(settings, stored)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(f"path:    {' -> '.join(result.path) or '(none)'}")
        click.echo(f"prompts: {', '.join(result.prompts) or '(none)'}")
        click.echo(f"vars:    {json.dumps(result.vars, ensure_ascii=False)}")
        click.echo(f"end:     {result.end}" + (f" ({result.error})" if result.error else ""))
    sys.exit(1 if result.end == "error" else 0)
