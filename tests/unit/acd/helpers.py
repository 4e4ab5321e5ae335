"""Small builders for the router's tests: routers with everyone logged in, tasks, and what decisions say."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ivrpowers.acd import (
    AgentConfig,
    AgentStateChanged,
    CancelOffer,
    Channel,
    Decision,
    Offer,
    QueueConfig,
    Router,
    Task,
)


def router(queues: Iterable[QueueConfig], agents: Iterable[AgentConfig], login: bool = True, **kw: Any) -> Router:
    """A router whose agents all logged in at 0 (in configuration order)."""
    agents = list(agents)
    r = Router(queues, agents, **kw)
    if login:
        for agent in agents:
            r.login(agent.id, 0.0)
    return r


def agent(agent_id: str, *queues: str, **kw: Any) -> AgentConfig:
    """An agent in `queues` (penalty 0 unless `queues=` says otherwise)."""
    return AgentConfig(agent_id, queues=kw.pop("queues", None) or dict.fromkeys(queues, 0), **kw)


def task(task_id: str, queue: str = "q", at: float = 0.0, channel: Channel = "voice", **kw: Any) -> Task:
    return Task(task_id, queue, channel, arrived=at, **kw)


def offers(decisions: Sequence[Decision]) -> list[tuple[str, str]]:
    return [(d.task, d.agent) for d in decisions if isinstance(d, Offer)]


def cancels(decisions: Sequence[Decision]) -> list[tuple[str, str, str]]:
    return [(d.task, d.agent, d.reason) for d in decisions if isinstance(d, CancelOffer)]


def states(decisions: Sequence[Decision]) -> list[tuple[str, str, str]]:
    return [(d.agent, d.old, d.new) for d in decisions if isinstance(d, AgentStateChanged)]


def ring(r: Router, task_id: str) -> list[str]:
    """The agents `task_id` is ringing."""
    return [a for a, _ in r.task(task_id).offers]
