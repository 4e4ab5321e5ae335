"""`ivrpowers run --demo`: a ready-to-call demo on number 100."""

from __future__ import annotations

from pathlib import Path

import click

from ivrpowers.cli.common import with_db
from ivrpowers.config import Settings, ensure_state_dir
from ivrpowers.flows import load_flow
from ivrpowers.resources import demo_flow, demo_sipp_scenario
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowRepository
from ivrpowers.store.migrate import upgrade
from ivrpowers.store.routes import RouteRepository

DEMO_NUMBER = "100"


def install_demo(settings: Settings, flow_file: Path | None = None) -> None:
    """Make the demo (the packaged demo flow unless `flow_file`) callable on 100, without undoing
    what an operator changed since.

    The demo flow is published only while no version of it is, and 100 is routed only while it has
    no route: a version published by hand, or 100 routed elsewhere, survives every `make run`.
    """
    ensure_state_dir(settings.state_dir)
    upgrade(settings.database_url)
    flow_file = flow_file or demo_flow()
    source = flow_file.read_text()
    name = load_flow(source, str(flow_file)).name

    async def work(db: Database) -> None:
        flows, routes = FlowRepository(db), RouteRepository(db)
        unpublished = await flows.published(name) is None
        await flows.import_source(name, source, publish=unpublished)
        if await routes.get(DEMO_NUMBER) is None:
            await routes.set(DEMO_NUMBER, name)

    with_db(settings, work)


def print_how_to_call(settings: Settings) -> None:
    secrets = settings.secrets()
    scenario = demo_sipp_scenario()
    host = settings.bind_address
    click.echo(
        f"""
ivrpowers demo is up. Number {DEMO_NUMBER} runs the published version of flow "demo" ({demo_flow()}).

  Call it with SIPp as the PSTN trunk (presses 1, hears its number read back, then SIPp hangs up;
  copy the scenario and change its DTMF pcap to press other digits):
    sipp {host}:{settings.sip_port} -sf {scenario} -s {DEMO_NUMBER} -m 1 -i {host} -p 5070 -mi {host}

  Or register a softphone (UDP) and dial {DEMO_NUMBER}:
    server {host}:{settings.sip_port}   user agent1   password {secrets['agent_password']}
  (its calls show the number 1001: that is what the demo reads back)

  Then read the call records:
    ivrpowers cdr list          (or: cdr list --json, cdr show ID)

  Health: http://{host}:{settings.web_port}/health      The API: http://{host}:{settings.web_port}/
  State (secrets, logs, database): {settings.state_dir}      Ctrl-C stops everything.
""",
        err=False,
    )
