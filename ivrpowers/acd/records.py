"""The router's live view of each agent and task: mutable, internal, rebuilt from a `Snapshot`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .model import EXCLUSIVE_CHANNELS, AgentConfig, AgentState, Channel, Task
from .waiting import Key, Requirement

__all__ = ["TASK_STATUSES", "AgentRecord", "Standing", "TaskRecord", "TaskStatus"]

# waiting: in its queue's line, offerable; parked: keeps its place, not offered (a callback);
# ringing: offered, to one agent (several for ringall); active: answered by `agent`.
TaskStatus = Literal["waiting", "parked", "ringing", "active"]
TASK_STATUSES: tuple[TaskStatus, ...] = get_args(TaskStatus)

# What the strategies weigh that changes as an agent works: (tasks held, idle since, answered).
Standing = tuple[int, float, int]

_VOICE_VIDEO_CHAT: tuple[Channel, ...] = ("voice", "video", "chat")
_CHAT: tuple[Channel, ...] = ("chat",)


@dataclass(slots=True, eq=False)
class AgentRecord:
    config: AgentConfig
    rank: int
    logged_in: bool = False
    paused: str | None = None  # the reason, while paused
    reachable: bool = True  # voice and video only: its phone is registered
    wrap_until: float | None = None
    idle_since: float = 0.0
    answered: int = 0  # since login
    offers: dict[str, None] = field(default_factory=dict)  # ringing task ids, in offer order
    active: dict[str, None] = field(default_factory=dict)  # answered task ids
    declined: set[str] = field(default_factory=set)  # ids of live tasks it declined: never offered again
    exclusive: int = 0  # voice and video tasks held, ringing or answered
    chats: int = 0  # chat tasks held, ringing or answered
    free: tuple[Channel, ...] = ()  # the channels it is indexed as free on
    indexed: Standing = (0, 0.0, 0)  # its standing when last indexed
    entries: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # queue -> its entry in the free index
    id: str = field(init=False)  # the config's, as a plain attribute: read on every hot path
    state: AgentState = "logged_out"  # as last reported
    reason: str | None = None

    def __post_init__(self) -> None:
        self.id = self.config.id

    @property
    def standing(self) -> Standing:
        return self.exclusive + self.chats, self.idle_since, self.answered

    def free_channels(self) -> tuple[Channel, ...]:
        """The channels it may be offered a task on now. Voice and video are exclusive, and an
        agent holding chats gets no voice or video (Amazon Connect's default), unless blended
        (chats beside a call, a call beside chats); wrap-up holds all."""
        if not self.logged_in or self.paused is not None or self.wrap_until is not None:
            return ()
        capacity = self.config.capacity
        if self.exclusive:
            return _CHAT if self.config.blended and self.chats < capacity["chat"] else ()
        if self.chats and not self.config.blended:
            return _CHAT if self.chats < capacity["chat"] else ()
        if self.chats >= capacity["chat"]:
            return tuple(c for c in _VOICE_VIDEO_CHAT if c != "chat" and capacity[c] and self.reachable)
        if self.reachable and capacity["voice"] and capacity["video"] and capacity["chat"]:
            return _VOICE_VIDEO_CHAT
        return tuple(c for c in _VOICE_VIDEO_CHAT if capacity[c] and (self.reachable or c == "chat"))

    def hold(self, channel: Channel) -> None:
        if channel in EXCLUSIVE_CHANNELS:
            self.exclusive += 1
        else:
            self.chats += 1

    def release(self, channel: Channel) -> None:
        if channel in EXCLUSIVE_CHANNELS:
            self.exclusive -= 1
        else:
            self.chats -= 1

    def display(self) -> tuple[AgentState, str | None]:
        """What it is doing, work first: a task in hand is busy (even with another offer ringing
        beside it), an offer ringing reserved; a paused agent still on a call is busy, then paused.
        An agent whose phone cannot ring and who takes no chats can be offered nothing: unreachable,
        not available (a wallboard counting it ready would promise an answer nobody can give)."""
        if not self.logged_in:
            return "logged_out", None
        if self.active:  # an offer ringing beside a task in hand (chats, blended) does not make it reserved
            return "busy", None
        if self.offers:
            return "reserved", None
        if self.wrap_until is not None:
            return "wrap_up", None
        if self.paused is not None:
            return "paused", self.paused
        if not self.reachable and not self.config.capacity["chat"]:
            return "unreachable", None
        return "available", None


@dataclass(slots=True, eq=False)
class TaskRecord:
    task: Task
    seq: int  # the order the router heard of it: the last tie-break
    key: Key  # its place in line: (-priority, arrived, seq, id)
    requirement: Requirement  # the skills it requires now (relaxation applied)
    wait_start: float  # max_wait counts from here: joining, or the last resume
    stage: int = 0  # relaxation steps applied
    status: TaskStatus = "waiting"
    offers: dict[str, float] = field(default_factory=dict)  # agent -> when the offer rings out
    agent: str | None = None  # who answered
    declined: set[str] = field(default_factory=set)  # agents who declined it
    # Agents whose offer of it rang out (queues without rna_pause): the others ring before they do
    # again, as app_queue goes round its members.
    passed: set[str] = field(default_factory=set)
    id: str = field(init=False)

    def __post_init__(self) -> None:
        self.id = self.task.id
