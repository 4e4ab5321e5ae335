"""What the router routes, as it is configured: queues, agents and tasks, and the errors it raises.

All three are frozen dataclasses, checked when built (`ConfigError`). Their mappings are copied
into plain dicts on construction and must be treated as read-only: the router indexes them.
Skill levels run from 1 to 10; a skill an agent does not list is level 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal, get_args

__all__ = [
    "AcdError", "ConfigError", "InvalidEvent", "NotFound",
    "AGENT_STATES", "CHANNELS", "DEFAULT_CAPACITY", "EXCLUSIVE_CHANNELS", "MAX_SKILL_LEVEL", "STRATEGIES",
    "AgentConfig", "AgentState", "Channel", "QueueConfig", "Strategy", "Task",
]

Channel = Literal["voice", "video", "chat"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
# An agent with a task on one of these (ringing or answered) takes nothing else, on any channel.
EXCLUSIVE_CHANNELS: frozenset[Channel] = frozenset({"voice", "video"})
DEFAULT_CAPACITY: Mapping[Channel, int] = {"voice": 1, "video": 1, "chat": 3}

Strategy = Literal["ringall", "round-robin", "longest-idle", "fewest-calls", "random", "linear", "skills"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)

AgentState = Literal["logged_out", "available", "reserved", "busy", "wrap_up", "paused", "unreachable"]
AGENT_STATES: tuple[AgentState, ...] = get_args(AgentState)

MAX_SKILL_LEVEL = 10


class AcdError(Exception):
    """Anything the router refuses. It refuses before changing anything: its state stays as it was."""


class ConfigError(AcdError, ValueError):
    """A queue, agent or task that cannot be: a bad strategy, a level out of range..."""


class NotFound(AcdError, LookupError):
    """No such queue, agent or task (a task is forgotten once it ended or timed out)."""


class InvalidEvent(AcdError):
    """The event does not apply now: answering an offer that is not ringing, a task id in use..."""


def _skills(skills: Mapping[str, int], owner: str) -> dict[str, int]:
    for name, level in skills.items():
        if not name or type(level) is not int or not 1 <= level <= MAX_SKILL_LEVEL:
            raise ConfigError(f"{owner}: skill {name!r} must have a level from 1 to {MAX_SKILL_LEVEL}, not {level!r}")
    return dict(skills)


@dataclass(frozen=True)
class QueueConfig:
    """A queue. `relaxation` is a list of `(after_seconds, level_delta)`: once a task has waited
    `after_seconds` since it arrived, the levels it requires drop by `level_delta` (cumulatively);
    a requirement that drops to 0 is gone. It applies whatever the strategy.

    `max_wait`: a task still waiting (or ringing) that long after it arrived or was resumed leaves
    with `TaskTimedOut`; None waits forever. `rna_pause`: an agent who lets an offer ring out is
    paused (reason "ring_no_answer"); ringall queues usually want it off, or one unanswered call
    pauses the whole team. `join_empty`: a task may join, and stay, while no member is logged in
    (otherwise it is turned away with `NoAgents`, and so are the waiting ones when the last member
    logs out). `sla_seconds` is carried for the runtime's reports.
    """

    name: str
    strategy: Strategy = "longest-idle"
    channels: frozenset[Channel] = frozenset({"voice"})
    ring_timeout: float = 20.0
    wrapup_seconds: float = 0.0
    max_wait: float | None = None
    sla_seconds: float = 20.0
    relaxation: tuple[tuple[float, int], ...] = ()
    rna_pause: bool = True
    join_empty: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a queue needs a name")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"queue {self.name}: unknown strategy {self.strategy!r} (one of {', '.join(STRATEGIES)})")
        channels = frozenset(self.channels)
        if not channels or not channels <= set(CHANNELS):
            raise ConfigError(f"queue {self.name}: channels are some of {', '.join(CHANNELS)}, not {self.channels!r}")
        object.__setattr__(self, "channels", channels)
        if not self.ring_timeout > 0:
            raise ConfigError(f"queue {self.name}: ring_timeout must be positive")
        if not self.wrapup_seconds >= 0 or not self.sla_seconds >= 0:
            raise ConfigError(f"queue {self.name}: wrapup_seconds and sla_seconds cannot be negative")
        if self.max_wait is not None and not self.max_wait > 0:
            raise ConfigError(f"queue {self.name}: max_wait must be positive (or None: no limit)")
        steps = tuple((float(after), int(delta)) for after, delta in self.relaxation)
        if any(after <= 0 or delta < 1 for after, delta in steps) or \
                any(a >= b for (a, _), (b, _) in pairwise(steps)):
            raise ConfigError(f"queue {self.name}: relaxation steps are (after_seconds > 0, level_delta >= 1), "
                              "by increasing after_seconds")
        object.__setattr__(self, "relaxation", steps)

    def requirements(self, skills: Mapping[str, int], stage: int) -> tuple[tuple[str, int], ...]:
        """What a task needing `skills` requires once `stage` relaxation steps applied, sorted by skill."""
        drop = sum(delta for _, delta in self.relaxation[:stage])
        return tuple(sorted((name, level - drop) for name, level in skills.items() if level > drop))

    def stage_at(self, arrived: float, now: float) -> int:
        """How many relaxation steps apply at `now` to a task that arrived at `arrived`."""
        # `arrived + after`, never `now - arrived`: the very sum the step's deadline is set at.
        return sum(1 for after, _ in self.relaxation if arrived + after <= now)


@dataclass(frozen=True)
class AgentConfig:
    """An agent. `queues` maps each of the agent's queues to its penalty there (0 is best): the
    `linear` and `skills` strategies prefer lower penalties, and a free agent in several queues
    takes the best task across them (priority, then longest wait, then penalty). `capacity` says
    how many tasks of each channel the agent may hold at once; channels it omits keep the default
    (voice 1, video 1, chat 3); 0 is never. Voice and video, being exclusive, are 0 or 1.
    A `blended` agent also takes chats while on a call, and a call while in chats (each within
    its capacity); otherwise a call is all an agent does, and chats keep calls away.
    """

    id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    queues: Mapping[str, int] = field(default_factory=dict)
    capacity: Mapping[Channel, int] = field(default_factory=dict)
    blended: bool = False

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigError("an agent needs an id")
        object.__setattr__(self, "skills", _skills(self.skills, f"agent {self.id}"))
        for queue, penalty in self.queues.items():
            if type(penalty) is not int or penalty < 0:
                raise ConfigError(f"agent {self.id}: the penalty in queue {queue!r} must be an int >= 0")
        object.__setattr__(self, "queues", dict(self.queues))
        capacity = dict(DEFAULT_CAPACITY)
        for channel, count in self.capacity.items():
            if channel not in CHANNELS or type(count) is not int or count < 0:
                raise ConfigError(f"agent {self.id}: bad capacity {channel!r}: {count!r}")
            if channel in EXCLUSIVE_CHANNELS and count > 1:
                raise ConfigError(f"agent {self.id}: {channel} is exclusive, its capacity is 0 or 1")
            capacity[channel] = count
        object.__setattr__(self, "capacity", capacity)


@dataclass(frozen=True)
class Task:
    """Something to route: a call (voice, video) or a web chat. Higher `priority` is served first;
    within a priority, earlier `arrived` first, then the order the router heard of them. A callback
    or a task moved from another queue may arrive with an `arrived` from the past: it keeps its place.
    """

    id: str
    queue: str
    channel: Channel
    arrived: float
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id or not self.queue:
            raise ConfigError("a task needs an id and a queue")
        if self.channel not in CHANNELS:
            raise ConfigError(f"task {self.id}: unknown channel {self.channel!r}")
        if type(self.priority) is not int:
            raise ConfigError(f"task {self.id}: priority must be an int")
        object.__setattr__(self, "skills", _skills(self.skills, f"task {self.id}"))


def meets(skills: Mapping[str, int], required: Iterable[tuple[str, int]]) -> bool:
    """Whether an agent with `skills` has every `required` skill at or above its level."""
    return all(skills.get(name, 0) >= level for name, level in required)
