"""`ivrpowers agent ...`: the ACD's agents (`acd.definitions.AgentDef`)."""

from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from ivrpowers.acd.definitions import AgentDef
from ivrpowers.cli import controller_api
from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import CliError, Invalid, NotFound
from ivrpowers.cli.queues import invalid, stored
from ivrpowers.store.acd import AcdRepository, NoSuchAgent, NoSuchQueue
from ivrpowers.store.db import Database
from ivrpowers.store.endpoints import EndpointRepository


def _pairs(values: tuple[str, ...], option: str, separator: str, default: int | None) -> dict[str, int]:
    found = {}
    for value in values:
        name, sep, number = value.partition(separator)
        if not sep and default is not None:
            number = str(default)
        if not name or not number.isdigit():
            example = f"NAME{separator}N" if default is None else f"NAME or NAME{separator}N"
            raise Invalid(f"{option} {value!r}: write {example}")
        found[name] = int(number)
    return found


AGENT_OPTIONS = {
    ("capacity", "voice"): "--voice {input}", ("capacity", "video"): "--video {input}",
    ("capacity", "chat"): "--chat {input}", ("skills",): "--skill {key}={input}", ("queues",): "--queue {key}:{input}",
    ("name",): "--name {input!r}", ("endpoint",): "--endpoint {input!r}",
}


def agent_options(f: Any) -> Any:
    for option in reversed([
        click.option("--name", "display_name", help="The agent's name, as people read it."),
        click.option("--endpoint", help="The phone or browser endpoint their calls ring (`ivrpowers endpoint list`)."),
        click.option("--skill", "skills", multiple=True, metavar="SKILL=LEVEL",
                     help="A skill and its level, 1-10 (repeat); level 0 removes it."),
        click.option("--queue", "queues", multiple=True, metavar="QUEUE[:PENALTY]",
                     help="A queue the agent serves, with a penalty (0 first; repeat)."),
        click.option("--leave-queue", "leave", multiple=True, metavar="QUEUE", help="A queue the agent leaves."),
        click.option("--voice", type=int, help="Calls at once (0 or 1)."),
        click.option("--video", type=int, help="Video calls at once (0 or 1)."),
        click.option("--chat", type=int, help="Chats at once."),
        click.option("--auto-login/--no-auto-login", default=None,
                     help="Logged in whenever the controller runs (a desk always staffed)."),
        click.option("--blended/--no-blended", default=None,
                     help="Takes chats while on a call, and a call while in chats (within capacity)."),
        click.option("--supervisor/--no-supervisor", default=None,
                     help="May listen to, whisper to, barge into and watch agents' calls (`ivrpowers supervise`)."),
    ]):
        f = option(f)
    return f


def _changes(options: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    wanted = dict(current)
    if options["display_name"] is not None:
        wanted["name"] = options["display_name"]
    if options["endpoint"] is not None:
        wanted["endpoint"] = options["endpoint"] or None  # --endpoint "": none
    skills = {**wanted.get("skills", {}), **_pairs(options["skills"], "--skill", "=", None)}
    wanted["skills"] = {skill: level for skill, level in skills.items() if level}
    queues = {**wanted.get("queues", {}), **_pairs(options["queues"], "--queue", ":", 0)}
    if strangers := [queue for queue in options["leave"] if queue not in queues]:
        raise NotFound(f"--leave-queue {strangers[0]}: the agent is not in that queue",
                       f"its queues: {', '.join(queues) or 'none'}")
    wanted["queues"] = {queue: penalty for queue, penalty in queues.items() if queue not in options["leave"]}
    for flag in ("auto_login", "blended", "supervisor"):
        if options[flag] is not None:
            wanted[flag] = options[flag]
    capacity = {channel: options[channel] for channel in ("voice", "video", "chat") if options[channel] is not None}
    wanted["capacity"] = {**wanted.get("capacity", {}), **capacity}
    return wanted


def _summary(agent: AgentDef) -> str:
    queues = ", ".join(f"{q}:{p}" if p else q for q, p in agent.queues.items()) or "no queue"
    skills = ", ".join(f"{s}={lvl}" for s, lvl in agent.skills.items()) or "no skills"
    cap = agent.capacity
    return (f"{agent.id} ({agent.name}): endpoint {agent.endpoint or '-'}; queues {queues}; skills {skills}; "
            f"capacity voice {cap.voice}, video {cap.video}, chat {cap.chat}"
            + ("; supervisor" if agent.supervisor else ""))


async def _store(db: Database, agent: AgentDef) -> None:
    try:
        await AcdRepository(db).put_agent(agent)
    except NoSuchQueue as exc:
        raise NotFound(str(exc), "create it first: `ivrpowers queue create NAME`") from None


async def _endpoint_known(db: Database, agent: AgentDef) -> bool:
    """Whether the agent's endpoint is one ivrpowers knows (`ivrpowers endpoint list`), or it has none."""
    return agent.endpoint is None or await EndpointRepository(db).get(agent.endpoint) is not None


def _warn_unknown_endpoint(agent: AgentDef, known: bool) -> None:
    # A warning, not a refusal: the endpoint may be made next, or live in Asterisk's own pjsip.conf.
    if not known:
        click.echo(f"warning: no endpoint {agent.endpoint!r} in `ivrpowers endpoint list`: {agent.id}'s calls will "
                   f"not ring until it exists (`ivrpowers endpoint create {agent.endpoint}`)", err=True)


@click.group()
def agent() -> None:
    """ACD agents: who answers queued calls and chats, with their skills and capacity."""


@agent.command()
@click.argument("agent_id", metavar="ID")
@agent_options
@json_option
@click.pass_context
def create(ctx: click.Context, /, agent_id: str, as_json: bool, **options: Any) -> None:
    """Create agent ID (--name is required)."""
    if options["display_name"] is None:
        raise Invalid("an agent needs a --name")
    try:
        definition = AgentDef.model_validate(_changes(options, {"id": agent_id}))
    except ValidationError as exc:
        raise invalid(exc, f"agent {agent_id}", AGENT_OPTIONS) from None

    async def work(db: Database) -> bool:
        if agent_id in await AcdRepository(db).agents():
            raise CliError(f"agent {agent_id!r} already exists", f"change it with `ivrpowers agent update {agent_id}`")
        await _store(db, definition)
        return await _endpoint_known(db, definition)

    known = with_db(settings_from(ctx), work)
    stored(ctx, definition, as_json, lambda agent: click.echo(_summary(agent)))
    _warn_unknown_endpoint(definition, known)


@agent.command()
@click.argument("agent_id", metavar="ID")
@agent_options
@json_option
@click.pass_context
def update(ctx: click.Context, /, agent_id: str, as_json: bool, **options: Any) -> None:
    """Change some of agent ID's settings (the others stay)."""

    async def work(db: Database) -> tuple[AgentDef, bool]:
        try:
            current = await AcdRepository(db).agent(agent_id)
        except NoSuchAgent as exc:
            raise NotFound(str(exc), "see `ivrpowers agent list`") from None
        try:
            definition = AgentDef.model_validate(_changes(options, current.model_dump(mode="json")))
        except ValidationError as exc:
            raise invalid(exc, f"agent {agent_id}", AGENT_OPTIONS) from None
        await _store(db, definition)
        return definition, await _endpoint_known(db, definition)

    definition, known = with_db(settings_from(ctx), work)
    stored(ctx, definition, as_json, lambda agent: click.echo(_summary(agent)))
    if options["endpoint"]:  # said again only when it is being set
        _warn_unknown_endpoint(definition, known)


@agent.command()
@click.argument("agent_id", metavar="ID")
@click.pass_context
def delete(ctx: click.Context, agent_id: str) -> None:
    """Delete agent ID."""

    async def work(db: Database) -> None:
        try:
            await AcdRepository(db).delete_agent(agent_id)
        except NoSuchAgent as exc:
            raise NotFound(str(exc), "see `ivrpowers agent list`") from None

    with_db(settings_from(ctx), work)
    controller_api.reload_quietly(settings_from(ctx))
    click.echo(f"deleted agent {agent_id}")


@agent.command(name="list")
@click.option("--queue", "queue_name", help="Only the agents of this queue.")
@json_option
@click.pass_context
def list_(ctx: click.Context, queue_name: str | None, as_json: bool) -> None:
    """Agents, with their endpoint, queues and skills."""

    async def work(db: Database) -> list[AgentDef]:
        agents = (await AcdRepository(db).agents()).values()
        return [a for a in agents if queue_name is None or queue_name in a.queues]

    agents = with_db(settings_from(ctx), work)
    if as_json:
        emit_json([a.model_dump(mode="json") for a in agents])
        return
    click.echo(f"{'AGENT':<20} {'NAME':<24} {'ENDPOINT':<16} QUEUES")
    for a in agents:
        click.echo(f"{a.id:<20} {a.name[:24]:<24} {a.endpoint or '-':<16} {', '.join(a.queues) or '-'}")


@agent.command()
@click.argument("agent_id", metavar="ID")
@json_option
@click.pass_context
def show(ctx: click.Context, agent_id: str, as_json: bool) -> None:
    """Agent ID's settings."""

    async def work(db: Database) -> AgentDef:
        try:
            return await AcdRepository(db).agent(agent_id)
        except NoSuchAgent as exc:
            raise NotFound(str(exc), "see `ivrpowers agent list`") from None

    definition = with_db(settings_from(ctx), work)
    if as_json:
        emit_json(definition.model_dump(mode="json"))
    else:
        click.echo(_summary(definition))


def _state_line(state: dict[str, Any]) -> str:
    reason = f" ({state['reason']})" if state.get("reason") else ""
    return f"{state['agent']}: {state['state']}{reason}"


def _action(ctx: click.Context, agent_id: str, action: str, as_json: bool, body: dict[str, Any] | None = None) -> None:
    state = controller_api.call(settings_from(ctx), "POST", f"/api/agents/{agent_id}/{action}", body,
                                not_found="see `ivrpowers agent list`")
    if as_json:
        emit_json(state)
    else:
        click.echo(_state_line(state))


def _action_command(action: str, doc: str) -> None:
    @agent.command(name=action, help=doc)
    @click.argument("agent_id", metavar="ID")
    @json_option
    @click.pass_context
    def command(ctx: click.Context, agent_id: str, as_json: bool) -> None:
        _action(ctx, agent_id, action, as_json)


for _name, _doc in (
    ("login", "Agent ID starts taking tasks (the running controller's ACD)."),
    ("logout", "Agent ID stops taking tasks; what rings goes to someone else, what is answered carries on."),
    ("unpause", "Agent ID takes offers again."),
):
    _action_command(_name, _doc)


@agent.command()
@click.argument("agent_id", metavar="ID")
@click.option("--reason", default="break", show_default=True, help="Why (reports show it).")
@json_option
@click.pass_context
def pause(ctx: click.Context, agent_id: str, reason: str, as_json: bool) -> None:
    """Agent ID gets no new offers until unpaused."""
    if not reason.strip():
        raise Invalid("--reason cannot be empty: reports show why an agent paused")
    _action(ctx, agent_id, "pause", as_json, {"reason": reason})


@agent.command()
@click.argument("agent_id", metavar="ID")
@json_option
@click.pass_context
def state(ctx: click.Context, agent_id: str, as_json: bool) -> None:
    """What agent ID is doing now: logged_out, available, reserved, busy, wrap_up, paused (why) or
    unreachable (its phone cannot ring and it takes no chats)."""
    found = controller_api.call(settings_from(ctx), "GET", f"/api/agents/{agent_id}/state",
                                not_found="see `ivrpowers agent list`")
    if as_json:
        emit_json(found)
    else:
        click.echo(_state_line(found))
