"""Queues and agents as admins define them, from the CLI, the REST API or an ACD file
(`acd apply FILE`): validated here, stored by `store.acd`, run by the router.

Strict like flow files: a number written as text, an unknown field or a queue an agent names
that does not exist is an error at its line, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ivrpowers.yamlfile import Document, Loc, Problem, check_file

from .model import AgentConfig, QueueConfig

Channel = Literal["voice", "video", "chat"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
Strategy = Literal["ringall", "round-robin", "longest-idle", "fewest-calls", "random", "linear", "skills"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
# A queue with nobody logged in: `refuse` sends callers (arriving or waiting) to the flow's
# `on_no_agents`; `wait` keeps them, up to `max_wait`.
NoAgents = Literal["refuse", "wait"]

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# Music on hold, or a sound played over and over.
_HOLD = re.compile(r"moh:[A-Za-z0-9_-]+|sound:[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")
# What video callers see and hear instead, over and over: a prompt of the media library.
_VIDEO_HOLD = re.compile(r"video:[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise _error("name", f"{value!r} is not a valid name (lowercase letters, digits, '_' and '-', "
                             "at most 63, e.g. 'billing-es')")
    return value


def _video_hold(value: str | None) -> str | None:
    if value is not None and not _VIDEO_HOLD.fullmatch(value):
        raise _error("video_hold", f"{value!r} is not video hold media (a video prompt of the media library, "
                                   "e.g. 'video:hold-loop': `ivrpowers media list`)")
    return value


def _hold(value: str) -> str:
    if not _HOLD.fullmatch(value):
        raise _error("hold", f"{value!r} is not hold media (a music-on-hold class, e.g. 'moh:default', or a "
                             "sound played over and over, e.g. 'sound:queue-periodic-announce')")
    return value


def _unique_channels(value: list[str]) -> list[str]:
    if not value:
        raise _error("channels", "a queue takes at least one channel (voice, video, chat)")
    if len(set(value)) != len(value):
        raise _error("channels", "a channel is listed twice")
    return value


def _queue_list(value: Any) -> Any:
    # `queues: [sales, support]` is `queues: {sales: 0, support: 0}`: penalty 0 in each.
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return dict.fromkeys(value, 0)
    return value


Name = Annotated[str, AfterValidator(_name)]
Seconds = Annotated[int, Field(ge=1, le=86_400)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Announce(_Model):
    """What a waiting caller is told, every `every` seconds (0: never)."""

    every: Annotated[int, Field(ge=0, le=3600)] = 30
    position: bool = True
    wait_time: bool = True


class Relaxation(_Model):
    """After `after` seconds of waiting, every required skill level is `lower_by` lower."""

    after: Seconds
    lower_by: Annotated[int, Field(ge=1, le=10)]


class QueueDef(_Model):
    name: Name
    description: str | None = None
    strategy: Strategy = "longest-idle"
    channels: Annotated[list[Channel], AfterValidator(_unique_channels)] = ["voice"]
    ring_timeout: Annotated[int, Field(ge=5, le=600)] = 20
    wrapup_seconds: Annotated[int, Field(ge=0, le=3600)] = 10
    max_wait: Seconds | None = None  # None: as long as the caller stays
    sla_seconds: Annotated[int, Field(ge=1, le=3600)] = 20
    hold: Annotated[str, AfterValidator(_hold)] = "moh:default"
    # Video callers see (and hear) this while they wait, looped; audio callers get `hold`.
    video_hold: Annotated[str | None, AfterValidator(_video_hold)] = None
    # Calls answered from this queue are recorded: the conversation's mixed audio on the server, and a
    # browser agent's video calls with both pictures (docs/webrtc.md "Recording").
    record: bool = False
    announce: Announce = Announce()
    no_agents: NoAgents = "refuse"
    # An agent who lets an offer ring out is paused (reason `ring_no_answer`) until they unpause.
    rna_pause: bool = True
    skill_relaxation: list[Relaxation] = []
    # A callback whose customer does not answer is tried again, keeping its place, this many times
    # in all, `callback_retry` seconds apart.
    callback_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    callback_retry: Annotated[int, Field(ge=10, le=86400)] = 120
    # An answered chat with no line from either side for this long is closed (`inactive`), and its
    # agent's place freed: a customer who just closes the tab is otherwise never noticed. 0: never.
    chat_idle_timeout: Annotated[int, Field(ge=0, le=86400)] = 1800

    @model_validator(mode="after")
    def _check(self) -> QueueDef:
        if self.skill_relaxation and self.strategy != "skills":
            raise _error("queue", "skill_relaxation is for the 'skills' strategy")
        afters = [step.after for step in self.skill_relaxation]
        if afters != sorted(set(afters)):
            raise _error("queue", "skill_relaxation steps must come in order of 'after', each once")
        return self


class Capacity(_Model):
    """How many tasks at once, per channel. Voice and video are exclusive: one call and nothing else."""

    voice: Annotated[int, Field(ge=0, le=1)] = 1
    video: Annotated[int, Field(ge=0, le=1)] = 1
    chat: Annotated[int, Field(ge=0, le=20)] = 3


class AgentDef(_Model):
    id: Name
    name: Annotated[str, Field(min_length=1, max_length=80)]
    endpoint: Name | None = None  # the SIP phone or browser endpoint calls ring (`endpoint create`)
    skills: dict[Name, Annotated[int, Field(ge=1, le=10)]] = {}
    # queue -> penalty: 0 is first; `linear` offers to lower penalties first.
    queues: Annotated[dict[Name, Annotated[int, Field(ge=0, le=100)]], BeforeValidator(_queue_list)] = {}
    capacity: Capacity = Capacity()
    # Logged in whenever the controller runs (app_queue's static members): a desk that is always staffed.
    auto_login: bool = False
    # Chats beside a call and a call beside chats (each within capacity); otherwise a call is exclusive.
    blended: bool = False
    # May listen to, whisper to, barge into and watch other agents' calls (calls/supervision.py).
    supervisor: bool = False

    @model_validator(mode="after")
    def _check(self) -> AgentDef:
        if self.endpoint is None and (self.capacity.voice or self.capacity.video):
            raise _error("agent", f"agent {self.id!r} takes calls (capacity voice/video) but has no endpoint to "
                                  "ring: set endpoint, or capacity voice: 0 and video: 0 for chat only")
        return self


class AcdFile(_Model):
    """An ACD file: queues and agents, applied together (`acd apply`)."""

    queues: list[QueueDef] = []
    agents: list[AgentDef] = []


def file_issues(acd: AcdFile, document: Document, known_queues: Collection[str] = ()) -> list[tuple[Loc, str]]:
    """Whole-file checks: names given twice, agents in queues that neither the file nor the
    database (`known_queues`) has."""
    issues: list[tuple[Loc, str]] = []
    queues = {q.name for q in acd.queues} | set(known_queues)
    for kind, items in (("queue", [q.name for q in acd.queues]), ("agent", [a.id for a in acd.agents])):
        seen: set[str] = set()
        for index, name in enumerate(items):
            if name in seen:
                issues.append(((f"{kind}s", index), f"{kind} {name!r} is defined twice"))
            seen.add(name)
    for index, agent in enumerate(acd.agents):
        for queue in agent.queues:
            if queue not in queues:
                issues.append((("agents", index, "queues", queue), f"no queue named {queue!r}"))
    return issues


def check_acd_file(text: str, filename: str, known_queues: Collection[str] = ()) -> tuple[AcdFile | None,
                                                                                          list[Problem]]:
    """The file's definitions, or every problem by line (`FILE:LINE: message`)."""
    return check_file(text, filename, AcdFile, what="an ACD file (queues and agents)",
                      extra=lambda acd, document: file_issues(acd, document, known_queues))


def queue_config(queue: QueueDef) -> QueueConfig:
    """What the router needs of a queue's definition."""
    return QueueConfig(name=queue.name, strategy=queue.strategy, channels=frozenset(queue.channels),
                       ring_timeout=float(queue.ring_timeout), wrapup_seconds=float(queue.wrapup_seconds),
                       max_wait=float(queue.max_wait) if queue.max_wait else None,
                       sla_seconds=float(queue.sla_seconds),
                       relaxation=tuple((float(s.after), s.lower_by) for s in queue.skill_relaxation),
                       rna_pause=queue.rna_pause, join_empty=queue.no_agents == "wait")


def agent_config(agent: AgentDef) -> AgentConfig:
    """What the router needs of an agent's definition."""
    capacity = agent.capacity
    return AgentConfig(id=agent.id, skills=dict(agent.skills), queues=dict(agent.queues),
                       capacity={"voice": capacity.voice, "video": capacity.video, "chat": capacity.chat},
                       blended=agent.blended)
