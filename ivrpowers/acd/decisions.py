"""What the router asks the runtime to do: every event returns a list of these, in the order they happened.

Every `Offer` ends in exactly one way: the runtime reports it answered, declined or timed out
(`Router.answer`, `decline`, `offer_timed_out`), or the router withdraws it with a `CancelOffer`
(its ring timeout passed at a `tick`, another agent answered, the task ended...). An agent's state
changes come as `AgentStateChanged`, once per change, for the runtime to store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .model import AgentState

__all__ = ["AgentStateChanged", "CancelOffer", "CancelReason", "Decision", "NoAgents", "Offer", "TaskTimedOut"]

CancelReason = Literal[
    "answered_elsewhere",  # ringall: another agent answered
    "ring_no_answer",  # the offer's ring timeout passed (seen at a tick)
    "task_ended",  # the caller hung up, the chat was closed
    "task_parked",  # the task was parked (a callback keeps its place)
    "max_wait",  # the task waited too long: it leaves the queue (a `TaskTimedOut` follows)
    "agent_logged_out",
    "agent_unreachable",  # the agent's phone is gone: voice and video offers are withdrawn
]


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring `agent` with `task` (ringall: one per agent rung); the router withdraws it at `expires`."""

    task: str
    agent: str
    expires: float


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing `agent` with `task`. The task keeps its place unless it is leaving."""

    task: str
    agent: str
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class TaskTimedOut:
    """The task left its queue: the flow takes its timeout branch. The router forgot it."""

    task: str
    reason: Literal["max_wait"] = "max_wait"


@dataclass(frozen=True, slots=True)
class NoAgents:
    """No member of the task's queue is logged in (and the queue is not `join_empty`): the task
    was turned away as it arrived, or sent away, waiting, when the last member logged out. The
    flow takes its no-agents branch; the router forgot the task (parked ones it keeps)."""

    task: str


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """`reason` is the pause reason for `paused`, None otherwise."""

    agent: str
    old: AgentState
    new: AgentState
    reason: str | None
    at: float


Decision = Offer | CancelOffer | TaskTimedOut | NoAgents | AgentStateChanged
