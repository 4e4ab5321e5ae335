"""`ivrpowers queue report`: the queues' figures per interval of the past (`acd.report`)."""

from __future__ import annotations

from typing import Any

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import Invalid, NotFound
from ivrpowers.store.db import Database
from ivrpowers.store.queue_report import queue_report, report_csv


@click.command(name="report")
@click.option("--since", metavar="WHEN", help="From (default: today's start): 2026-11-30, 2026-11-30T08:00 (the "
              "configured time zone unless it has an offset), or a time ago: 90m, 24h, 7d.")
@click.option("--until", metavar="WHEN", help="To (default: now), the same forms.")
@click.option("--interval", metavar="LENGTH", help="Each row's length: 15m, 30m, 1h (default), 1d.")
@click.option("--queue", "queue_name", metavar="NAME", help="This queue only.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one line per queue and interval, every figure).")
@json_option
@click.pass_context
def report(ctx: click.Context, /, since: str | None, until: str | None, interval: str | None,
           queue_name: str | None, as_csv: bool, as_json: bool) -> None:
    """Per queue and interval: offered, answered, abandoned, service level, ASA, AHT... (the
    definitions of `queue stats`), from the ACD's stored events; a wait that spans two intervals is
    offered in the first and ends in the second."""
    if as_json and as_csv:
        raise Invalid("--json and --csv: choose one")
    settings = settings_from(ctx)
    params = {"since": since, "until": until, "interval": interval, "queue": queue_name}

    async def work(db: Database) -> list[dict[str, Any]]:
        try:
            return await queue_report(db, params, settings.timezone)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        except LookupError as exc:
            raise NotFound(str(exc), "see `ivrpowers queue list`") from None

    rows = with_db(settings, work)
    if as_json:
        emit_json(rows)
    elif as_csv:
        click.echo(report_csv(rows), nl=False)
    else:
        _table(rows)


def _table(rows: list[dict[str, Any]]) -> None:
    # ENDED: the waits that ended (answered, abandoned, timed out, left, ...): what SL is a share of.
    click.echo(f"{'START':<16}  {'QUEUE':<14} {'OFFERED':>7} {'ENDED':>5} {'ANSWERED':>8} {'ABANDONED':>9} "
               f"{'SL':>5} {'ASA':>6} {'AHT':>6}")
    for row in rows:
        sl = f"{round(row['service_level'] * 100)}%" if row["service_level"] is not None else "-"
        asa, aht = (f"{row[k]:.0f}s" if row[k] is not None else "-" for k in ("asa", "aht"))
        click.echo(f"{row['start'][:16].replace('T', ' '):<16}  {row['queue']:<14} {row['offered']:>7} "
                   f"{row['waits_ended']:>5} {row['answered']:>8} {row['abandoned']:>9} {sl:>5} {asa:>6} {aht:>6}")
