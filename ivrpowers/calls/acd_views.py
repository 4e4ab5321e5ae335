"""What the ACD looks like now, for the REST API: an agent's state, a queue's waiting callers."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ivrpowers.acd import Router
from ivrpowers.acd.definitions import AgentDef


def agent_state(router: Router, agent_id: str) -> dict[str, Any]:
    """What the agent is doing now (raises AcdError for an unknown agent)."""
    agent = router.agent(agent_id)
    return {"agent": agent_id, "state": agent.state, "reason": agent.reason, "logged_in": agent.logged_in,
            "reachable": agent.reachable, "answered": agent.answered, "offers": list(agent.offers),
            "tasks": list(agent.active),
            "wrap_up_until": _iso(agent.wrap_until) if agent.wrap_until is not None else None}


def queue_now(router: Router, agents: Mapping[str, AgentDef], queue: str, now: float) -> dict[str, Any]:
    """The queue this moment: tasks waiting in order (and the longest wait), agents by state."""
    waiting = [router.task(task_id) for task_id in router.waiting(queue)]
    states: dict[str, int] = {}
    for agent_id, agent in agents.items():
        if queue in agent.queues and agent_id in router.agent_ids():
            state = router.agent(agent_id).state
            states[state] = states.get(state, 0) + 1
    return {"queue": queue, "waiting": len(waiting),
            "longest_wait": round(max((now - t.task.arrived for t in waiting), default=0.0), 3),
            "tasks": [t.task.id for t in waiting], "agents": states}


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat()


# "Recent" for the estimated wait: the answers of the last half hour.
RATE_WINDOW = 1800.0


def position(router: Router, answers: Mapping[str, deque[float]], task_id: str,
             now: float) -> tuple[int | None, float | None]:
    """A task's 1-based place among its queue's waiting tasks, and the estimated seconds to an answer
    at the pace of `answers` (when the queue's recent calls were answered; older ones are dropped)."""
    if task_id not in router.task_ids():
        return None, None
    queue = router.task(task_id).task.queue
    waiting = router.waiting(queue)
    if task_id not in waiting:
        return None, None
    place = waiting.index(task_id) + 1
    recent = answers.get(queue, deque())
    cutoff = now - RATE_WINDOW
    while recent and recent[0] < cutoff:
        recent.popleft()
    # Callers ahead, at the pace the queue's agents have answered lately (not a day's average).
    estimate = place * RATE_WINDOW / len(recent) if recent else None
    return place, estimate
