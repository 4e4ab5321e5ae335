"""`ivrpowers route ...`: which flow answers which dialed number."""

from __future__ import annotations

import click

from ivrpowers.cli.common import settings_from, with_db
from ivrpowers.store.flows import FlowRepository
from ivrpowers.store.routes import RouteRepository


@click.group()
def route() -> None:
    """Routing table: dialed number -> flow."""


@route.command(name="set")
@click.argument("number")
@click.argument("flow_name", metavar="FLOW")
@click.option("--force", is_flag=True, help="Route even if FLOW has no published version yet.")
@click.pass_context
def set_(ctx: click.Context, number: str, flow_name: str, force: bool) -> None:
    """Route calls to NUMBER to the published version of FLOW."""

    async def work(db):  # type: ignore[no-untyped-def]
        if not force and await FlowRepository(db).published(flow_name) is None:
            raise click.ClickException(
                f"flow {flow_name!r} has no published version (import it with --publish, or use --force)"
            )
        await RouteRepository(db).set(number, flow_name)

    with_db(settings_from(ctx), work)
    click.echo(f"{number} -> {flow_name}")


@route.command(name="list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List routes."""

    async def work(db):  # type: ignore[no-untyped-def]
        return await RouteRepository(db).all()

    for r in with_db(settings_from(ctx), work):
        click.echo(f"{r.number:<16} {r.flow_name}")


@route.command()
@click.argument("number")
@click.pass_context
def delete(ctx: click.Context, number: str) -> None:
    """Remove the route for NUMBER."""

    async def work(db):  # type: ignore[no-untyped-def]
        return await RouteRepository(db).delete(number)

    if not with_db(settings_from(ctx), work):
        raise click.ClickException(f"no route for {number}")
    click.echo(f"{number} removed")
