"""`ivrpowers cdr ...`: call records and their timelines."""

from __future__ import annotations

import json

import click

from ivrpowers.cli.common import settings_from, with_db
from ivrpowers.store.cdrs import CdrRepository, call_to_dict


@click.group()
def cdr() -> None:
    """Call detail records."""


@cdr.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Full records, events included, as a JSON list.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100000))
@click.pass_context
def list_(ctx: click.Context, as_json: bool, limit: int) -> None:
    """The latest calls, newest first."""

    async def work(db):  # type: ignore[no-untyped-def]
        return [call_to_dict(c) for c in await CdrRepository(db).latest(limit)]

    calls = with_db(settings_from(ctx), work)
    if as_json:
        click.echo(json.dumps(calls, indent=2))
        return
    click.echo(f"{'ID':<36}  {'STARTED (UTC)':<19}  {'CALLER':<14} {'DIALED':<8} {'FLOW':<14} {'DISPOSITION':<16} SECS")
    for c in calls:
        flow = f"{c['flow']} v{c['flow_version']}" if c["flow"] else "-"
        secs = f"{c['duration']:.1f}" if c["duration"] is not None else "live"
        started = (c["started_at"] or "")[:19].replace("T", " ")
        click.echo(f"{c['id']:<36}  {started:<19}  {c['caller'] or '-':<14} {c['dialed']:<8} {flow:<14} "
                   f"{c['disposition'] or 'in progress':<16} {secs}")


@cdr.command()
@click.argument("call_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, call_id: str, as_json: bool) -> None:
    """One call with its timeline (CALL_ID or a unique prefix of it)."""

    async def work(db):  # type: ignore[no-untyped-def]
        found = await CdrRepository(db).find(call_id)
        return call_to_dict(found) if found else None

    call = with_db(settings_from(ctx), work)
    if call is None:
        raise click.ClickException(f"no call {call_id}")
    if as_json:
        click.echo(json.dumps(call, indent=2))
        return
    for key in ("id", "caller", "caller_name", "dialed", "flow", "flow_version", "started_at", "answered_at",
                "ended_at", "disposition", "hangup_cause", "hangup_cause_text"):
        click.echo(f"{key:>18}: {call[key] if call[key] not in (None, '') else '-'}")
    click.echo("          timeline:")
    for e in call["events"]:
        detail = " ".join(f"{k}={v}" for k, v in e["detail"].items())
        click.echo(f"  {e['at'][11:23]}  {e['type']:<16} {e['node'] or '':<14} {detail}")
