"""The router's whole state as plain frozen dataclasses, and as JSON-ready dicts for SQL.

`Router.snapshot()` gives a `Snapshot`; `Router.restore(snapshot)` rebuilds a router that makes the
same decisions from the same events as the one snapshotted: the indexes and deadlines are derived
again from what is here, and the order of anything that could break a tie is kept (offers in the
order they were made, round-robin positions, the random generator's state). `AgentSnapshot` and
`TaskSnapshot` are also what `Router.agent()` and `Router.task()` report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from .model import AgentConfig, AgentState, Channel, QueueConfig, Strategy, Task
from .records import TaskStatus

__all__ = ["AgentSnapshot", "Snapshot", "TaskSnapshot"]


@dataclass(frozen=True)
class AgentSnapshot:
    config: AgentConfig
    rank: int  # its order in the configuration: the strategies' last tie-break
    logged_in: bool = False
    paused: str | None = None  # the reason, while paused
    reachable: bool = True
    wrap_until: float | None = None
    idle_since: float = 0.0
    answered: int = 0  # tasks answered since login
    offers: tuple[str, ...] = ()  # tasks ringing it, in offer order
    active: tuple[str, ...] = ()  # tasks it answered and has not finished
    state: AgentState = "logged_out"  # as last reported in `AgentStateChanged`
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"config": _agent_config(self.config), "rank": self.rank, "logged_in": self.logged_in,
                "paused": self.paused, "reachable": self.reachable, "wrap_until": self.wrap_until,
                "idle_since": self.idle_since, "answered": self.answered, "offers": list(self.offers),
                "active": list(self.active), "state": self.state, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentSnapshot:
        config = data["config"]
        wrap = data.get("wrap_until")
        return cls(
            config=AgentConfig(id=config["id"], skills=config.get("skills", {}), queues=config.get("queues", {}),
                               capacity=config.get("capacity", {}), blended=bool(config.get("blended", False))),
            rank=int(data["rank"]), logged_in=bool(data.get("logged_in")), paused=data.get("paused"),
            reachable=bool(data.get("reachable", True)), wrap_until=None if wrap is None else float(wrap),
            idle_since=float(data.get("idle_since", 0.0)), answered=int(data.get("answered", 0)),
            offers=tuple(data.get("offers", ())), active=tuple(data.get("active", ())),
            state=data.get("state", "logged_out"), reason=data.get("reason"))


@dataclass(frozen=True)
class TaskSnapshot:
    task: Task
    seq: int  # the order the router heard of it
    status: TaskStatus
    wait_start: float  # max_wait counts from here
    stage: int = 0  # relaxation steps applied
    offers: tuple[tuple[str, float], ...] = ()  # (agent, when it rings out), in offer order
    agent: str | None = None  # who answered
    declined: tuple[str, ...] = ()  # agents who declined it, sorted
    passed: tuple[str, ...] = ()  # agents whose offer of it rang out this round, sorted

    def to_dict(self) -> dict[str, Any]:
        task = self.task
        return {"task": {"id": task.id, "queue": task.queue, "channel": task.channel, "arrived": task.arrived,
                         "priority": task.priority, "skills": dict(task.skills)},
                "seq": self.seq, "status": self.status, "wait_start": self.wait_start, "stage": self.stage,
                "offers": [[agent, expires] for agent, expires in self.offers], "agent": self.agent,
                "declined": list(self.declined), "passed": list(self.passed)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskSnapshot:
        task = data["task"]
        return cls(
            task=Task(id=task["id"], queue=task["queue"], channel=task["channel"], arrived=float(task["arrived"]),
                      priority=int(task.get("priority", 0)), skills=task.get("skills", {})),
            seq=int(data["seq"]), status=data["status"], wait_start=float(data["wait_start"]),
            stage=int(data.get("stage", 0)), offers=tuple((str(a), float(e)) for a, e in data.get("offers", ())),
            agent=data.get("agent"), declined=tuple(data.get("declined", ())), passed=tuple(data.get("passed", ())))


@dataclass(frozen=True)
class Snapshot:
    queues: tuple[QueueConfig, ...]
    agents: tuple[AgentSnapshot, ...]  # by rank
    tasks: tuple[TaskSnapshot, ...]  # by seq
    round_robin: Mapping[str, int] = field(default_factory=dict)  # queue -> rank of the agent served last
    next_seq: int = 0
    next_rank: int = 0
    random_state: tuple[Any, ...] | None = None  # `random.Random.getstate()`

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: only dicts, lists, strings, numbers, booleans and None."""
        state = self.random_state
        return {
            "queues": [_queue_config(q) for q in self.queues],
            "agents": [a.to_dict() for a in self.agents],
            "tasks": [t.to_dict() for t in self.tasks],
            "round_robin": dict(self.round_robin),
            "next_seq": self.next_seq,
            "next_rank": self.next_rank,
            "random_state": None if state is None else [state[0], list(state[1]), state[2]],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        state = data.get("random_state")
        return cls(
            queues=tuple(_queue_from(q) for q in data.get("queues", ())),
            agents=tuple(AgentSnapshot.from_dict(a) for a in data.get("agents", ())),
            tasks=tuple(TaskSnapshot.from_dict(t) for t in data.get("tasks", ())),
            round_robin={str(k): int(v) for k, v in dict(data.get("round_robin") or {}).items()},
            next_seq=int(data.get("next_seq", 0)),
            next_rank=int(data.get("next_rank", 0)),
            random_state=None if state is None else (state[0], tuple(state[1]), state[2]),
        )


def _queue_config(queue: QueueConfig) -> dict[str, Any]:
    return {"name": queue.name, "strategy": queue.strategy, "channels": sorted(queue.channels),
            "ring_timeout": queue.ring_timeout, "wrapup_seconds": queue.wrapup_seconds, "max_wait": queue.max_wait,
            "sla_seconds": queue.sla_seconds, "relaxation": [list(step) for step in queue.relaxation],
            "rna_pause": queue.rna_pause, "join_empty": queue.join_empty}


def _queue_from(data: Mapping[str, Any]) -> QueueConfig:
    # Absent keys take QueueConfig's defaults; present ones are converted from what JSON gives.
    convert: dict[str, Any] = {
        "strategy": lambda v: cast(Strategy, v), "channels": lambda v: frozenset(cast(list[Channel], v)),
        "ring_timeout": float, "wrapup_seconds": float, "sla_seconds": float,
        "max_wait": lambda v: None if v is None else float(v),
        "relaxation": lambda v: tuple((float(a), int(d)) for a, d in v), "rna_pause": bool, "join_empty": bool,
    }
    return QueueConfig(name=data["name"], **{k: f(data[k]) for k, f in convert.items() if k in data})


def _agent_config(agent: AgentConfig) -> dict[str, Any]:
    return {"id": agent.id, "skills": dict(agent.skills), "queues": dict(agent.queues),
            "capacity": dict(agent.capacity), "blended": agent.blended}
