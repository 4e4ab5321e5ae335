"""`ivrpowers cdr ...`: call records and their timelines."""

from __future__ import annotations

from typing import Any

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import Invalid, NotFound
from ivrpowers.store.cdrs import (
    MAX_LIMIT,
    MIN_PREFIX,
    AmbiguousCall,
    CdrRepository,
    NoSuchCall,
    PrefixTooShort,
    call_to_dict,
)
from ivrpowers.store.db import Database


@click.group()
def cdr() -> None:
    """Call detail records."""


@cdr.command(name="list")
@json_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, MAX_LIMIT),
              help=f"How many calls, 1 to {MAX_LIMIT}.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool, limit: int) -> None:
    """The latest calls, newest first (--json: full records, timelines included)."""

    async def work(db: Database) -> list[dict[str, Any]]:
        return [call_to_dict(c) for c in await CdrRepository(db).latest(limit)]

    calls = with_db(settings_from(ctx), work)
    if as_json:
        emit_json(calls)
        return
    click.echo(f"{'ID':<36}  {'STARTED (UTC)':<19}  {'CALLER':<14} {'DIALED':<8} {'FLOW':<14} {'DISPOSITION':<16} SECS")
    for c in calls:
        flow = f"{c['flow']} v{c['flow_version']}" if c["flow"] else "-"
        secs = f"{c['duration']:.1f}" if c["duration"] is not None else "live"
        started = (c["started_at"] or "")[:19].replace("T", " ")
        click.echo(f"{c['id']:<36}  {started:<19}  {c['caller'] or '-':<14} {c['dialed']:<8} {flow:<14} "
                   f"{c['disposition'] or 'in progress':<16} {secs}")


@cdr.command(help=f"One call with its timeline: CALL_ID, or the start of it ({MIN_PREFIX} characters or more).")
@click.argument("call_id")
@json_option
@click.pass_context
def show(ctx: click.Context, call_id: str, as_json: bool) -> None:
    async def work(db: Database) -> dict[str, Any]:
        try:
            return call_to_dict(await CdrRepository(db).find(call_id))
        except (PrefixTooShort, AmbiguousCall) as exc:
            raise Invalid(str(exc)) from exc
        except NoSuchCall as exc:
            raise NotFound(str(exc), "see `ivrpowers cdr list`") from exc

    call = with_db(settings_from(ctx), work)
    if as_json:
        emit_json(call)
        return
    for key in ("id", "caller", "caller_name", "dialed", "flow", "flow_version", "started_at", "answered_at",
                "ended_at", "disposition", "hangup_cause", "hangup_cause_text"):
        click.echo(f"{key:>18}: {call[key] if call[key] not in (None, '') else '-'}")
    if (queued := call.get("queue")) is not None:
        wait, talk = (queued[k] if queued[k] is not None else "-" for k in ("wait", "talk"))
        click.echo(f"{'queue':>18}: {queued['queue']} ({queued['outcome']}), wait {wait} s, "
                   f"agent {queued['agent'] or '-'}, talk {talk} s")
        for offer in queued["offers"]:
            click.echo(f"{'offered':>18}: {offer['agent']} rang {offer['ring']} s: {offer['outcome']}")
    click.echo("          timeline:")
    for e in call["events"]:
        detail = " ".join(f"{k}={v}" for k, v in e["detail"].items())
        click.echo(f"  {e['at'][11:23]}  {e['type']:<16} {e['node'] or '':<14} {detail}")
