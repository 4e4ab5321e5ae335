"""`ivrpowers route ...`: which flow answers which dialed number."""

from __future__ import annotations

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import CliError, Invalid, NotFound
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowNotFound, FlowRepository
from ivrpowers.store.routes import InvalidNumber, RouteRepository, check_number


@click.group()
def route() -> None:
    """Routing table: dialed number -> flow."""


@route.command(name="set")
@click.argument("number")
@click.argument("flow_name", metavar="FLOW")
@click.option("--force", is_flag=True,
              help="Route to FLOW although it has no published version yet: until one is published, calls to "
                   "NUMBER are refused as unrouted (and this says so).")
@json_option
@click.pass_context
def set_(ctx: click.Context, number: str, flow_name: str, force: bool, as_json: bool) -> None:
    """Route calls to NUMBER to the published version of FLOW.

    NUMBER: digits, * and #, with an optional leading +. FLOW must exist (`flow import` first).
    """
    try:
        check_number(number)
    except InvalidNumber as exc:
        raise Invalid(str(exc)) from exc

    async def work(db: Database) -> tuple[str | None, int | None]:
        flows = FlowRepository(db)
        try:
            await flows.get(flow_name)
        except FlowNotFound:
            raise NotFound(f"there is no flow named {flow_name!r}",
                           "import it first: `ivrpowers flow import FILE`") from None
        published = await flows.published(flow_name)
        if published is None and not force:
            raise CliError(f"flow {flow_name!r} has no published version, so calls to {number} would be refused",
                           f"publish one: `ivrpowers flow publish {flow_name}`, or route anyway with --force")
        routes = RouteRepository(db)
        before = await routes.get(number)
        previous = before.flow_name if before is not None else None
        await routes.set(number, flow_name)
        return previous, published.version if published is not None else None

    previous, live = with_db(settings_from(ctx), work)
    if as_json:
        emit_json({"number": number, "flow": flow_name, "previous_flow": previous, "published_version": live})
        return
    was = " (new route)" if previous is None else " (unchanged)" if previous == flow_name else f" (was {previous})"
    click.echo(f"{number} -> {flow_name}{was}")
    if live is None:
        click.echo(f"warning: {flow_name} has no published version: calls to {number} are refused as unrouted "
                   f"until `ivrpowers flow publish {flow_name}`", err=True)


@route.command(name="list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List routes with the flow version each number runs now."""

    async def work(db: Database) -> list[dict[str, object]]:
        routes = RouteRepository(db)
        rows: list[dict[str, object]] = []
        for r in await routes.all():
            found = await routes.published_flow(r.number)
            rows.append({"number": r.number, "flow": r.flow_name, "published_version": found[1] if found else None})
        return rows

    rows = with_db(settings_from(ctx), work)
    if as_json:
        emit_json(rows)
        return
    click.echo(f"{'NUMBER':<16} {'FLOW':<24} LIVE")
    for row in rows:
        live = f"v{row['published_version']}" if row["published_version"] else "none (calls refused)"
        click.echo(f"{row['number']:<16} {row['flow']!s:<24} {live}")


@route.command()
@click.argument("number")
@json_option
@click.pass_context
def delete(ctx: click.Context, number: str, as_json: bool) -> None:
    """Remove the route for NUMBER: calls to it are then refused as unrouted."""

    async def work(db: Database) -> str:
        routes = RouteRepository(db)
        existing = await routes.get(number)
        if existing is None or not await routes.delete(number):
            raise NotFound(f"no route for {number}", "see `ivrpowers route list`")
        return existing.flow_name

    flow_name = with_db(settings_from(ctx), work)
    if as_json:
        emit_json({"number": number, "flow": flow_name})
        return
    click.echo(f"{number} removed (it went to {flow_name}); calls to it are now refused as unrouted")
