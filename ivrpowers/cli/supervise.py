"""`ivrpowers supervise ...`: listen to, whisper to, barge into or watch an agent's queue conversation,
through the running controller (`/api/supervision`, with the installation's API token)."""

from __future__ import annotations

from typing import Any

import click

from ivrpowers.acd.supervision import MODES
from ivrpowers.cli import controller_api
from ivrpowers.cli.common import emit_json, json_option, settings_from
from ivrpowers.cli.errors import Invalid, NotFound
from ivrpowers.config import Settings


class _Supervise(click.Group):
    """`supervise CALL ...` is `supervise start CALL ...`: the other words are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


def _line(conversation: dict[str, Any]) -> str:
    watch = conversation["supervision"]
    by = f"; {watch['mode']} by {watch['by']} at {watch['endpoint']} ({watch['status']})" if watch else ""
    c = conversation
    return (f"{c['call_id']}  {c['queue']}  agent {c['agent']}  caller {c['caller'] or '-'}  {c['media']}  "
            f"since {c['since'] or '-'}{by}")


def _call_id(settings: Settings, given: str) -> str:
    """The full id of a conversation going on now, from its id or the start of it (as `cdr show`)."""
    from ivrpowers.store.cdrs import MIN_PREFIX  # lazily: SQLAlchemy is not every command's to load

    if len(given) < MIN_PREFIX:
        raise Invalid(f"give at least {MIN_PREFIX} characters of the call id (`ivrpowers supervise list`)")
    found = [c["call_id"] for c in controller_api.call(settings, "GET", "/api/supervision")
             if c["call_id"].startswith(given)]
    if not found:
        raise NotFound(f"no conversation with an agent has an id starting {given!r}", "see `ivrpowers supervise list`")
    if len(found) > 1:
        raise Invalid(f"{given!r} is the start of {len(found)} calls' ids (did you mean {' or '.join(found)}?)")
    return str(found[0])


@click.group(cls=_Supervise)
def supervise() -> None:
    """Supervise agents' calls: `supervise list`, `supervise CALL --mode MODE`, `supervise stop CALL`.

    Modes: listen (hear both sides, heard by nobody), whisper (the agent alone hears you), barge
    (all three hear each other), watch (a video call: both pictures, heard by nobody). Asking again
    with another mode switches it; the supervision also ends when the call does.
    """


@supervise.command(name="list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """The queue conversations going on now, and who supervises them."""
    found = controller_api.call(settings_from(ctx), "GET", "/api/supervision")
    if as_json:
        emit_json(found)
        return
    for conversation in found:
        click.echo(_line(conversation))
    if not found:
        click.echo("no agent is talking with a caller now", err=True)


@supervise.command()
@click.argument("call")
@click.option("--mode", type=click.Choice(MODES), default="listen", show_default=True)
@click.option("--endpoint", help="The phone or browser endpoint to ring (default: the --as supervisor's own).")
@click.option("--as", "supervisor", metavar="AGENT", help="The supervisor (an agent with --supervisor) you act as.")
@json_option
@click.pass_context
def start(ctx: click.Context, call: str, mode: str, endpoint: str | None, supervisor: str | None,
          as_json: bool) -> None:
    """Supervise CALL (its id, or the start of it): rings your endpoint, or switches the mode."""
    if endpoint is None and supervisor is None:
        raise Invalid("say which endpoint to ring (--endpoint EP) or which supervisor you are (--as AGENT)")
    settings = settings_from(ctx)
    body = {"mode": mode, **({"endpoint": endpoint} if endpoint else {}),
            **({"supervisor": supervisor} if supervisor else {})}
    found = controller_api.call(settings, "POST", f"/api/supervision/{_call_id(settings, call)}", body)
    if as_json:
        emit_json(found)
        return
    watch = found["supervision"] or {}
    click.echo(f"{watch.get('mode', mode)}: {watch.get('endpoint', endpoint)} {watch.get('status', '')} "
               f"(call {found['call_id']}, agent {found['agent']})")


@supervise.command()
@click.argument("call")
@click.pass_context
def stop(ctx: click.Context, call: str) -> None:
    """Stop supervising CALL: the supervisor's endpoint is hung up."""
    settings = settings_from(ctx)
    call_id = _call_id(settings, call)
    controller_api.call(settings, "DELETE", f"/api/supervision/{call_id}")
    click.echo(f"stopped supervising call {call_id}")
