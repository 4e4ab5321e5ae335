"""`ivrpowers queue ...`: the ACD's queues (`acd.definitions.QueueDef`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import click
from pydantic import BaseModel, ValidationError

from ivrpowers.acd.definitions import CHANNELS, STRATEGIES, QueueDef, Relaxation
from ivrpowers.cli import controller_api
from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import CliError, Invalid, NotFound
from ivrpowers.store.acd import AcdRepository, NoSuchQueue, QueueInUse
from ivrpowers.store.db import Database
from ivrpowers.yamlfile import describe


def stored(ctx: click.Context, definition: BaseModel, as_json: bool, show: Callable[[Any], None]) -> None:
    """After a create or update: the running controller takes the definition at once; it is printed."""
    controller_api.reload_quietly(settings_from(ctx))
    if as_json:
        emit_json(definition.model_dump(mode="json"))
    else:
        show(definition)


# A definition's field -> the option that sets it, as the operator typed it ({key}: the mapping's
# key under the field, {input}: the value refused).
QUEUE_OPTIONS = {
    ("ring_timeout",): "--ring-timeout {input}", ("wrapup_seconds",): "--wrapup {input}",
    ("max_wait",): "--max-wait {input}", ("sla_seconds",): "--sla {input}", ("hold",): "--hold {input}",
    ("video_hold",): "--video-hold {input}", ("announce", "every"): "--announce-every {input}",
    ("skill_relaxation",): "--relax", ("chat_idle_timeout",): "--chat-idle-timeout {input}",
}


def invalid(exc: ValidationError, what: str, options: dict[tuple[str, ...], str] | None = None) -> Invalid:
    """A definition the options make invalid, in one line: the first problem, named by the option
    that set it (`options`), else by its field."""
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    for prefix, option in (options or {}).items():
        if loc[:len(prefix)] == prefix:
            key = loc[len(prefix)] if len(loc) > len(prefix) else ""
            return Invalid(f"{what}: {option.format(key=key, input=error.get('input'))}: {error['msg']}")
    _, message = describe(error)
    return Invalid(f"{what}: {message}")


def _relaxation(values: tuple[str, ...]) -> list[dict[str, int]] | None:
    steps = []
    for value in values:
        after, _, lower = value.partition(":")
        if not (after.isdigit() and lower.isdigit()):
            raise Invalid(f"--relax {value!r}: write AFTER_SECONDS:LOWER_BY, e.g. 30:1")
        steps.append(Relaxation(after=int(after), lower_by=int(lower)).model_dump())
    return steps or None


def queue_options(f: Any) -> Any:
    for option in reversed([
        click.option("--strategy", type=click.Choice(STRATEGIES),
                     help="How an agent is chosen (default longest-idle)."),
        click.option("--channel", "channels", multiple=True, type=click.Choice(CHANNELS),
                     help="A channel the queue takes (repeat; default voice). On update the channels given "
                          "replace the queue's: give every one it should take."),
        click.option("--ring-timeout", type=int, help="Seconds an offer rings before it goes to the next agent."),
        click.option("--wrapup", "wrapup_seconds", type=int, help="Seconds an agent gets after each task."),
        click.option("--max-wait", type=int, help="Seconds a caller waits at most (0: no limit)."),
        click.option("--sla", "sla_seconds", type=int, help="Answered within this many seconds counts as in SLA."),
        click.option("--hold", help="Music on hold while waiting: moh:CLASS (default moh:default) or sound:NAME."),
        click.option("--video-hold", help="What video callers see while waiting, looped: video:NAME "
                                          "(`ivrpowers media import`; default: the --hold audio, no picture)."),
        click.option("--no-agents", type=click.Choice(["refuse", "wait"]),
                     help="With nobody logged in: refuse (the flow's on_no_agents) or wait."),
        click.option("--rna-pause/--no-rna-pause", default=None, help="Pause an agent who lets an offer ring out."),
        click.option("--record/--no-record", default=None,
                     help="Record answered calls (mixed audio; with a browser agent, video calls with both pictures)."),
        click.option("--announce-every", type=int, help="Seconds between position/wait announcements (0: never)."),
        click.option("--chat-idle-timeout", type=int,
                     help="Seconds an answered chat may stay silent before it is closed (0: never; default 1800)."),
        click.option("--relax", multiple=True, metavar="AFTER:LOWER_BY",
                     help="skills strategy: after AFTER seconds, required levels LOWER_BY lower (repeat)."),
        click.option("--description"),
    ]):
        f = option(f)
    return f


def _changes(options: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    given = {key: value for key, value in options.items() if value not in (None, ())}
    if "channels" in given:
        given["channels"] = list(given["channels"])
    if given.get("max_wait") == 0:
        given["max_wait"] = None
    if "relax" in given:
        given["skill_relaxation"] = _relaxation(given.pop("relax"))
    if "announce_every" in given:
        given["announce"] = {**current.get("announce", {}), "every": given.pop("announce_every")}
    return {**current, **given}


def show_queue(queue: QueueDef) -> None:
    announce = "never" if not queue.announce.every else f"every {queue.announce.every}s"
    click.echo(f"{queue.name}: {queue.strategy}, {'+'.join(queue.channels)}, ring {queue.ring_timeout}s, "
               f"wrap-up {queue.wrapup_seconds}s, max wait {_seconds(queue.max_wait)}, SLA {queue.sla_seconds}s, "
               f"hold {queue.hold}, video hold {queue.video_hold or '-'}, no agents: {queue.no_agents}, "
               f"announce {announce}, record {'yes' if queue.record else 'no'}"
               + (f", chat idle timeout {_seconds(queue.chat_idle_timeout)}" if "chat" in queue.channels else ""))


def _seconds(value: int | None) -> str:
    return f"{value}s" if value else "none"


@click.group()
def queue() -> None:
    """ACD queues: where callers and chats wait for an agent."""


@queue.command()
@click.argument("name")
@queue_options
@json_option
@click.pass_context
def create(ctx: click.Context, /, name: str, as_json: bool, **options: Any) -> None:
    """Create queue NAME (the options' defaults are in the README)."""
    try:
        definition = QueueDef.model_validate(_changes(options, {"name": name}))
    except ValidationError as exc:
        raise invalid(exc, f"queue {name}", QUEUE_OPTIONS) from None

    async def work(db: Database) -> None:
        repo = AcdRepository(db)
        if name in await repo.queues():
            raise CliError(f"queue {name!r} already exists", f"change it with `ivrpowers queue update {name}`")
        await repo.put_queue(definition)

    with_db(settings_from(ctx), work)
    stored(ctx, definition, as_json, show_queue)


@queue.command()
@click.argument("name")
@queue_options
@json_option
@click.pass_context
def update(ctx: click.Context, /, name: str, as_json: bool, **options: Any) -> None:
    """Change some of queue NAME's settings (the others stay)."""

    async def work(db: Database) -> QueueDef:
        repo = AcdRepository(db)
        try:
            current = await repo.queue(name)
        except NoSuchQueue as exc:
            raise NotFound(str(exc), "see `ivrpowers queue list`") from None
        try:
            definition = QueueDef.model_validate(_changes(options, current.model_dump(mode="json")))
        except ValidationError as exc:
            raise invalid(exc, f"queue {name}", QUEUE_OPTIONS) from None
        await repo.put_queue(definition)
        if dropped := [channel for channel in current.channels if channel not in definition.channels]:
            keep = " ".join(f"--channel {channel}" for channel in [*definition.channels, *dropped])
            click.echo(f"warning: queue {name} no longer takes {', '.join(dropped)} (--channel replaces the "
                       f"queue's channels; to keep them: {keep})", err=True)
        return definition

    definition = with_db(settings_from(ctx), work)
    stored(ctx, definition, as_json, show_queue)


@queue.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete it although agents are in it (they leave it).")
@click.pass_context
def delete(ctx: click.Context, name: str, force: bool) -> None:
    """Delete queue NAME."""

    async def work(db: Database) -> list[str]:
        try:
            return await AcdRepository(db).delete_queue(name, force=force)
        except NoSuchQueue as exc:
            raise NotFound(str(exc), "see `ivrpowers queue list`") from None
        except QueueInUse as exc:
            raise CliError(str(exc), "move them first, or delete anyway with --force") from None

    left = with_db(settings_from(ctx), work)
    controller_api.reload_quietly(settings_from(ctx))
    click.echo(f"deleted queue {name}" + (f" (agents left it: {', '.join(left)})" if left else ""))


@queue.command(name="list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Queues, with their strategy, channels and how many agents are in each."""

    async def work(db: Database) -> list[dict[str, Any]]:
        repo = AcdRepository(db)
        agents = (await repo.agents()).values()
        return [{**q.model_dump(mode="json"), "agents": sorted(a.id for a in agents if q.name in a.queues)}
                for q in (await repo.queues()).values()]

    rows = with_db(settings_from(ctx), work)
    if as_json:
        emit_json(rows)
        return
    click.echo(f"{'QUEUE':<24} {'STRATEGY':<13} {'CHANNELS':<17} {'AGENTS':>6}")
    for row in rows:
        click.echo(f"{row['name']:<24} {row['strategy']:<13} {'+'.join(row['channels']):<17} {len(row['agents']):>6}")


@queue.command()
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Queue NAME's settings and its agents (with penalties)."""

    async def work(db: Database) -> tuple[QueueDef, dict[str, int]]:
        repo = AcdRepository(db)
        try:
            definition = await repo.queue(name)
        except NoSuchQueue as exc:
            raise NotFound(str(exc), "see `ivrpowers queue list`") from None
        return definition, {a.id: a.queues[name] for a in (await repo.agents()).values() if name in a.queues}

    definition, members = with_db(settings_from(ctx), work)
    if as_json:
        emit_json({**definition.model_dump(mode="json"), "agents": members})
        return
    show_queue(definition)
    for agent_id, penalty in sorted(members.items(), key=lambda item: (item[1], item[0])):
        click.echo(f"  {agent_id} (penalty {penalty})")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def _period_label(seconds: float) -> str:
    return f"last {seconds / 60:g}m" if seconds % 60 == 0 else f"last {seconds:g}s"


def stats_table(queues: dict[str, dict[str, Any]]) -> list[str]:
    """Two lines a queue: now and today, then the last minutes (`--json` has every figure)."""
    lines = [f"{'QUEUE':<20} {'WAITING':>7} {'LONGEST':>7} {'FREE/IN':>7}  {'PERIOD':<9} {'OFFERED':>7} "
             f"{'ANSWERED':>8} {'ABANDONED':>9} {'ABANDON':>7} {'IN SLA':>7} {'ASA':>6} {'AHT':>6}"]
    for name, q in queues.items():
        agents = q["agents"]
        logged_in = sum(n for state, n in agents.items() if state != "logged_out")
        now = (f"{name:<20} {q['waiting']:>7} {_duration(q['longest_wait']):>7} "
               f"{str(agents.get('available', 0)) + '/' + str(logged_in):>7}")
        for period, label in (("day", "today"), ("window", _period_label(q["window"]["seconds"]))):
            p = q[period]
            lines.append(f"{now}  {label:<9} {p['offered']:>7} {p['answered']:>8} {p['abandoned']:>9} "
                         f"{_percent(p['abandon_rate']):>7} {_percent(p['service_level']):>7} "
                         f"{_duration(p['asa']):>6} {_duration(p['aht']):>6}")
            now = " " * 44
    return lines


@queue.command()
@click.argument("name", required=False)
@json_option
@click.pass_context
def stats(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Live statistics of queue NAME, or of every queue, from the running controller: waiting now,
    agents free of those logged in, and today's and the last minutes' offered, answered, abandoned,
    abandon rate, service level (answered within the queue's SLA), ASA and AHT."""
    settings = settings_from(ctx)
    if name is None:
        found = controller_api.call(settings, "GET", "/api/stats")
        queues = found["queues"]
    else:
        found = controller_api.call(settings, "GET", f"/api/queues/{quote(name, safe='')}/stats",
                                    not_found="see `ivrpowers queue list`")
        queues = {name: found}
    if as_json:
        emit_json(found)
        return
    for line in stats_table(queues):
        click.echo(line)
