"""`ivrpowers run --demo`: a ready-to-call demo on number 100."""

from __future__ import annotations

from pathlib import Path

import click

from ivrpowers.acd.definitions import AgentDef, Capacity, QueueDef
from ivrpowers.cli.common import with_db
from ivrpowers.cli.wallboard import wallboard_url
from ivrpowers.config import Settings, ensure_state_dir
from ivrpowers.demo.video import DEMO_HOLD, install_prompts
from ivrpowers.endpoints.accounts import password_digest
from ivrpowers.endpoints.fields import REALM
from ivrpowers.flows import load_flow
from ivrpowers.media.library import MediaLibrary, media_root
from ivrpowers.resources import demo_flow, demo_sipp_scenario
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.db import Database
from ivrpowers.store.endpoints import EndpointRepository
from ivrpowers.store.flows import FlowRepository
from ivrpowers.store.migrate import upgrade
from ivrpowers.store.routes import RouteRepository

DEMO_NUMBER = "100"
DEMO_QUEUE = QueueDef(name="support", description="the demo's option 4", strategy="longest-idle",
                      channels=["voice", "video", "chat"], video_hold=f"video:{DEMO_HOLD}",
                      ring_timeout=15, wrapup_seconds=5)
# Phones: no chats (they could not see them).
DEMO_AGENTS = [AgentDef(id=name, name=f"Demo {name}", endpoint=name, queues={"support": 0}, auto_login=True,
                        capacity=Capacity(chat=0))
               for name in ("agent1", "agent2")]
# The browser agent: signs in on /agent (not always logged in: Ready there). Video callers go to
# whoever is free and reachable (a phone agent talks with them without a picture). Blended: it takes
# the call page's chats beside a call, as the demo's text says.
DEMO_AGENTS.append(AgentDef(id="webagent", name="Demo browser agent", endpoint="webagent", queues={"support": 0},
                            blended=True))


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
        await _demo_queue(AcdRepository(db))
        # agent2 (a phone) and webagent (a browser): made like `endpoint create` would (the controller
        # pushes them to Asterisk), with their passwords in secrets.json like agent1's, so the demo
        # can print them every time.
        endpoints = EndpointRepository(db)
        for account, kind in (("agent2", "phone"), ("webagent", "webrtc")):
            if await endpoints.get(account) is None:
                digest = password_digest(account, REALM, settings.secrets()[f"{account}_password"])
                await endpoints.add(account, kind, REALM, digest)

    with_db(settings, work)
    install_prompts(MediaLibrary(media_root(settings)), stock_sounds())


def stock_sounds() -> Path:
    """Where this Asterisk's English sounds are (`hello-world.gsm`...), on the host's file system."""
    from ivrpowers.asterisk.rootfs import find_installation

    installation = find_installation(build=False)
    base = (installation.rootfs / "usr/share/asterisk/sounds") if installation.rootfs else Path(
        "/usr/share/asterisk/sounds")
    # The rootfs' `en` is a link through /etc/alternatives, which only resolves inside it: look for
    # the directory that holds the sounds themselves.
    for candidate in [base / "en", *sorted(base.iterdir())]:
        if (candidate / "hello-world.gsm").is_file():
            return candidate
    raise FileNotFoundError(f"no Asterisk sounds (hello-world.gsm) under {base}")


async def _demo_queue(acd: AcdRepository) -> None:
    """The support queue the demo's option 4 waits in, and its two agents, always logged in: made
    once, so an operator's changes to them stay."""
    if DEMO_QUEUE.name not in await acd.queues():
        await acd.put_queue(DEMO_QUEUE)
    agents = await acd.agents()
    for agent in DEMO_AGENTS:
        if agent.id not in agents:
            await acd.put_agent(agent)


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

  Option 4 waits in the "support" queue for an agent: register a second softphone as
    server {host}:{settings.sip_port}   user agent2   password {secrets['agent2_password']}
  and it rings (agents agent1 and agent2 are always logged in; `ivrpowers agent state agent2`).

  Then read the call records:
    ivrpowers cdr list          (or: cdr list --json, cdr show ID)

  From a browser on this machine (a video call: its menu is a video, option 4 a video agent):
    http://{host}:{settings.web_port}/call#user=webrtc1&password={secrets['webrtc_password']}&number={DEMO_NUMBER}&queue=support
  and answer it as the agent (sign in, press Ready) in another window (Chat on the call page opens a
  chat in the same queue, which the agent takes beside calls):
    http://{host}:{settings.web_port}/agent     agent webagent   password {secrets['webagent_password']}
  (browsers send their media to {settings.browser_media_address}: Asterisk offers them no loopback address)
  The queues and agents, live (`ivrpowers wallboard` prints a new address):
    {wallboard_url(settings)[0]}

  Health: http://{host}:{settings.web_port}/health      The API: http://{host}:{settings.web_port}/
  State (secrets, logs, database): {settings.state_dir}      Ctrl-C stops everything.
""",
        err=False,
    )
