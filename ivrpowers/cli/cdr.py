"""`ivrpowers cdr ...`: call records and their timelines."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import Invalid, NotFound
from ivrpowers.store.cdr_search import parse_query, search, to_csv
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
@click.option("--since", metavar="WHEN", help="Started at or after: 2026-11-30, 2026-11-30T08:00 (the "
              "configured time zone unless it has an offset), or a time ago: 90m, 24h, 7d.")
@click.option("--until", metavar="WHEN", help="Started before (the same forms).")
@click.option("--number", help="The caller's number or the number dialed contains this.")
@click.option("--disposition", help="How it ended: completed, caller_hangup, failed, unrouted, handed_off, ...")
@click.option("--flow", help="The flow it ran.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, MAX_LIMIT),
              help=f"How many calls, 1 to {MAX_LIMIT}.")
@click.option("--all", "every", is_flag=True, help="Every call that matches, however many (read a page at a time).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one line per call, its queue's figures included).")
@json_option
@click.pass_context
def list_(ctx: click.Context, /, as_json: bool, as_csv: bool, every: bool, limit: int, **filters: str | None) -> None:
    """The latest calls, newest first, those that match the filters (--json: full records, timelines
    included; --csv: one line per call)."""
    if as_json and as_csv:
        raise Invalid("--json and --csv: choose one")
    if every and ctx.get_parameter_source("limit") is not click.core.ParameterSource.DEFAULT:
        raise Invalid("--all and --limit: choose one")
    settings = settings_from(ctx)
    try:
        query = parse_query({**filters, "limit": str(MAX_LIMIT if every else limit)}, settings.timezone)
    except ValueError as exc:
        raise Invalid(str(exc)) from None

    async def work(db: Database) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page, first = await search(db, query), True
        while True:
            rows = [call_to_dict(c) for c in page]
            if as_csv:  # out as each page comes: an export can be long
                click.echo(to_csv(rows, header=first), nl=False)
            else:
                found += rows
            first = False
            if not every or len(page) < query.limit:
                return found
            page = await search(db, replace(query, before=page[-1].id))

    calls = with_db(settings, work)
    if as_json:
        emit_json(calls)
    elif not as_csv:
        _table(calls)


def _table(calls: list[dict[str, Any]]) -> None:
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
