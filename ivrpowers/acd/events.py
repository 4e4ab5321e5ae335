"""What happened in the ACD, as the run time saw it: the one stream that statistics, the `/api/events`
websocket, reports and CDRs read.

The router's decisions say what to do; these say what was done, with the facts only the run time
knows (how an offer ended, how long it rang, whether a caller left or was served). Each task ends
with exactly one `task_ended`, whose `outcome` says how:

- `handled`: answered by `agent` and over (`talk` seconds), `abandoned`: the caller hung up while
  waiting or ringing (`wait`), `timeout`: `max_wait` passed (the queue's or the flow's), `left`:
  the caller chose to leave, `no_agents`: nobody logged in, `failed`: it could not be connected.

A caller who asks for a callback is `task_parked` (keeping their place, not ended); the callback
ends the task later like any other.

Times are epoch seconds (the wall clock: the same meaning after a restart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .model import Channel

__all__ = ["EVENT_KINDS", "OFFER_OUTCOMES", "TASK_OUTCOMES", "AcdEvent", "EventKind", "OfferOutcome",
           "TaskOutcome"]

EventKind = Literal[
    "task_joined",  # queue, task, channel; detail: priority, skills
    "task_offered",  # queue, task, agent; detail: expires
    "offer_ended",  # queue, task, agent; detail: outcome (OfferOutcome), ring (seconds)
    "task_answered",  # queue, task, agent; detail: wait (seconds from joining)
    "task_parked",  # queue, task; detail: wait (a callback was asked for: the task keeps its place)
    "task_ended",  # queue, task, agent (who handled it, if any); detail: outcome (TaskOutcome), wait, talk
    "agent_state",  # agent; detail: old, new, reason
]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

OfferOutcome = Literal["answered", "declined", "no_answer", "withdrawn"]
OFFER_OUTCOMES: tuple[OfferOutcome, ...] = get_args(OfferOutcome)

TaskOutcome = Literal["handled", "abandoned", "timeout", "left", "no_agents", "failed"]
TASK_OUTCOMES: tuple[TaskOutcome, ...] = get_args(TaskOutcome)


@dataclass(frozen=True, slots=True)
class AcdEvent:
    kind: EventKind
    at: float
    queue: str | None = None
    task: str | None = None
    agent: str | None = None
    channel: Channel | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, "queue": self.queue, "task": self.task, "agent": self.agent,
                "channel": self.channel, "detail": dict(self.detail)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AcdEvent:
        return cls(kind=data["kind"], at=float(data["at"]), queue=data.get("queue"), task=data.get("task"),
                   agent=data.get("agent"), channel=data.get("channel"), detail=dict(data.get("detail") or {}))
