"""The ACD's live statistics, from its one event stream (`acd.events.AcdEvent`): pure, no I/O, no
clock (every question says what time it is).

    stats = Stats(window=900.0)
    stats.configure(sla={"support": 20.0}, members={"support": ["ana", "bo"]})
    stats.new_day(midnight)          # the day's counters start again (the controller's time zone)
    for event in events: stats.feed(event)
    stats.queue("support", now)      # {"waiting": 2, "longest_wait": 31.5, "agents": {...}, "day": {...}, ...}

Per queue, for the day and for the last `window` seconds (both reset by `new_day`, so the window
never reaches into yesterday and holds no more than the day), counted when it happens:

- `offered`: tasks that joined (and, at `new_day`, the tasks still in progress: they carry over).
- A task's wait ends once, in exactly one of: `answered`, `abandoned` (the caller hung up waiting
  or ringing), `timeouts` (max_wait), `left` (the caller chose to), `no_agents`, `failed`,
  `callbacks` (`task_parked`: the caller asked to be called back); `waits_ended` is their sum. A
  parked task's later answer is an agent's work (`handled`, AHT), not a queue answer (answered,
  ASA, service level); it ending otherwise counts nowhere.
- `service_level`: answered within the queue's `sla_seconds` (wait <= sla) / `waits_ended`, i.e. of
  the tasks whose wait is over, the share answered in time; tasks still waiting are not counted
  either way, every abandon counts (however short). `abandon_rate`: abandoned / waits_ended.
- `asa`: average wait of the answered; `aht`: (talk + wrap-up) / handled, wrap-up being the agent's
  time in `wrap_up` after the queue's task, counted when it ends; `abandoned_wait_avg|max`.

Live: `waiting` (joined, not answered, not ended, not parked), `longest_wait`, `talking`,
`callbacks_waiting`, and `agents` (the queue's members by state). Per agent: state, reason, since
and time in state, and over the day tasks handled, talk and wrap-up time, offers, declined and
not answered offers.

Memory is bounded: the day is counters, the window holds the events of the last `window` seconds,
tasks are kept while in progress (forgotten after a day without news: an event was lost).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import TASK_OUTCOMES, AcdEvent
from .model import AGENT_STATES
from .stats_periods import Period, Window, figures

__all__ = ["DEFAULT_SLA", "Stats"]

DEFAULT_SLA = 20.0  # a queue's sla_seconds when it was not configured (QueueDef's default)
_FORGET_AFTER = 86400.0
_AGENT_COUNTS = ("handled", "talk", "wrap_up", "offers", "answered", "declined", "not_answered")
_WAIT_OUTCOMES = {"abandoned": "abandoned", "timeout": "timeouts", "left": "left", "no_agents": "no_agents",
                  "failed": "failed"}


@dataclass(slots=True)
class _Task:
    queue: str
    joined: float
    answered: float | None = None
    agent: str | None = None
    parked: bool = False
    seen: float = 0.0  # its last event: a task without news for a day is forgotten


@dataclass(slots=True)
class _Agent:
    state: str = "logged_out"
    reason: str | None = None
    since: float | None = None
    last_queue: str | None = None  # whose task the agent handled last: its wrap-up counts there
    day: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_AGENT_COUNTS, 0))



class _Queue:
    __slots__ = ("day", "window")

    def __init__(self, window: float) -> None:
        self.day, self.window = Period(), Window(window)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _number(detail: Mapping[str, Any], key: str) -> float | None:
    value = detail.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return None
    return float(value)


class Stats:
    def __init__(self, window: float = 900.0) -> None:
        self.window = window
        self.day_start: float | None = None
        self.sla: dict[str, float] = {}
        self.members: dict[str, list[str]] = {}
        self._queues: dict[str, _Queue] = {}
        self._tasks: dict[str, _Task] = {}
        self._agents: dict[str, _Agent] = {}

    # -- input ---------------------------------------------------------------------------------
    def configure(self, *, sla: Mapping[str, float], members: Mapping[str, Iterable[str]]) -> None:
        """The queues (with their sla_seconds) and their agents, as now defined."""
        self.sla = {name: float(seconds) for name, seconds in sla.items()}
        self.members = {name: sorted(set(agents)) for name, agents in members.items()}
        for name in self.sla:
            self._queue(name)
        for agents in self.members.values():
            for agent_id in agents:
                self._agent(agent_id)

    def new_day(self, start: float, *, carry_over: bool = True) -> None:
        """The day begins at `start`: day and window start again; tasks in progress carry over (are
        `offered` again), unless not `carry_over` (a report's intervals: offered where it arrived)."""
        self.day_start = start
        self._tasks = {k: t for k, t in self._tasks.items() if t.seen >= start - _FORGET_AFTER}
        busy = {t.queue for t in self._tasks.values()}
        self._queues = {name: _Queue(self.window) for name in self._queues if name in self.sla or name in busy}
        for task in self._tasks.values() if carry_over else ():
            self._count(task.queue, start, ("offered", 1))
        members = {a for agents in self.members.values() for a in agents}
        self._agents = {k: a for k, a in self._agents.items() if k in members or a.state != "logged_out"}
        for agent in self._agents.values():
            agent.day = dict.fromkeys(_AGENT_COUNTS, 0)

    def feed(self, event: AcdEvent) -> None:
        """One event, in the order they happened."""
        if event.kind == "agent_state":
            self._agent_state(event)
        elif event.task is not None:
            known = self._tasks.get(event.task)
            queue = event.queue or (known.queue if known is not None else None)
            handler = getattr(self, f"_{event.kind}", None)
            if handler is not None and queue is not None:
                handler(event, queue, event.task)

    def _task_joined(self, event: AcdEvent, queue: str, task_id: str) -> None:
        if task_id not in self._tasks:  # a task adopted again after a restart keeps its first join
            self._tasks[task_id] = _Task(queue, event.at, seen=event.at)
            self._count(queue, event.at, ("offered", 1))

    def _task_offered(self, event: AcdEvent, queue: str, task_id: str) -> None:
        self._task(event, queue, task_id)
        if event.agent is not None:
            self._agent(event.agent).day["offers"] += 1

    def _offer_ended(self, event: AcdEvent, queue: str, task_id: str) -> None:
        outcome = event.detail.get("outcome")
        if event.agent is not None and outcome in ("answered", "declined", "no_answer"):
            key = "not_answered" if outcome == "no_answer" else str(outcome)
            self._agent(event.agent).day[key] += 1

    def _task_answered(self, event: AcdEvent, queue: str, task_id: str) -> None:
        task = self._task(event, queue, task_id)
        if task.answered is not None:
            return
        task.answered, task.agent = event.at, event.agent
        if event.agent is not None:
            self._agent(event.agent).last_queue = task.queue
        if task.parked:  # a callback being served: the agent's work, not a queue answer
            return
        wait = _number(event.detail, "wait")
        wait = event.at - task.joined if wait is None else wait
        in_sla = int(wait <= self.sla.get(task.queue, DEFAULT_SLA))
        self._count(task.queue, event.at, ("answered", 1), ("waits_ended", 1), ("answered_in_sla", in_sla),
                    ("answer_wait", _ms(wait)))

    def _task_parked(self, event: AcdEvent, queue: str, task_id: str) -> None:
        task = self._task(event, queue, task_id)
        if task.answered is None and not task.parked:
            self._count(task.queue, event.at, ("callbacks", 1), ("waits_ended", 1))
        task.parked = True

    def _task_ended(self, event: AcdEvent, queue: str, task_id: str) -> None:
        task = self._task(event, queue, task_id)
        outcome = event.detail.get("outcome")
        if outcome not in TASK_OUTCOMES:
            outcome = "failed"
        waiting = task.answered is None and not task.parked
        del self._tasks[task_id]
        if outcome == "handled":
            talk = _number(event.detail, "talk")
            if talk is None:
                talk = event.at - task.answered if task.answered is not None else 0.0
            self._count(task.queue, event.at, ("handled", 1), ("talk", _ms(talk)))
            if (agent_id := event.agent or task.agent) is not None:
                agent = self._agent(agent_id)
                agent.day["handled"] += 1
                agent.day["talk"] += _ms(talk)
                agent.last_queue = task.queue
        elif waiting:  # otherwise the wait had ended already, counted then
            wait = _number(event.detail, "wait")
            wait = event.at - task.joined if wait is None else wait
            extra = (("abandon_wait", _ms(wait)),) if outcome == "abandoned" else ()
            self._count(task.queue, event.at, (_WAIT_OUTCOMES[str(outcome)], 1), ("waits_ended", 1), *extra)

    def _agent_state(self, event: AcdEvent) -> None:
        if event.agent is None:
            return
        agent = self._agent(event.agent)
        new = str(event.detail.get("new") or agent.state)
        if agent.state == "wrap_up" and new != "wrap_up" and agent.since is not None:
            wrap = _ms(event.at - agent.since)
            agent.day["wrap_up"] += wrap
            if agent.last_queue is not None:
                self._count(agent.last_queue, event.at, ("wrap_up", wrap))
        if new != agent.state or agent.since is None:
            agent.since = event.at
        reason = event.detail.get("reason")
        agent.state, agent.reason = new, str(reason) if reason is not None else None

    # -- output --------------------------------------------------------------------------------
    def knows_queue(self, name: str) -> bool:
        return name in self.sla or name in self._queues

    def knows_agent(self, agent_id: str) -> bool:
        return agent_id in self._agents

    def queue(self, name: str, now: float) -> dict[str, Any]:
        """The figures of queue `name` at `now` (zeros for a queue it never heard of)."""
        return self._queue_figures(name, now, [t for t in self._tasks.values() if t.queue == name])

    def queues(self, now: float) -> dict[str, dict[str, Any]]:
        by_queue: dict[str, list[_Task]] = {name: [] for name in sorted(self._queues)}
        for task in self._tasks.values():
            by_queue.setdefault(task.queue, []).append(task)
        return {name: self._queue_figures(name, now, tasks) for name, tasks in by_queue.items()}

    def agent(self, agent_id: str, now: float) -> dict[str, Any]:
        """The figures of agent `agent_id` at `now` (logged out, zeros, for one it never heard of)."""
        agent = self._agents.get(agent_id) or _Agent()
        day = agent.day
        return {
            "agent": agent_id, "state": agent.state, "reason": agent.reason, "since": agent.since,
            "time_in_state": round(max(0.0, now - agent.since), 3) if agent.since is not None else None,
            "queues": sorted(q for q, agents in self.members.items() if agent_id in agents),
            "day": {"since": self.day_start, "handled": day["handled"], "talk_time": round(day["talk"] / 1000, 3),
                    "wrap_up_time": round(day["wrap_up"] / 1000, 3), "offers": day["offers"],
                    "answered": day["answered"], "declined": day["declined"], "not_answered": day["not_answered"]},
        }

    def agents(self, now: float) -> dict[str, dict[str, Any]]:
        return {agent_id: self.agent(agent_id, now) for agent_id in sorted(self._agents)}

    def knows(self, agent_id: str) -> bool:
        return agent_id in self._agents

    # -- inside --------------------------------------------------------------------------------
    def _queue(self, name: str) -> _Queue:
        found = self._queues.get(name)
        if found is None:
            found = self._queues[name] = _Queue(self.window)
        return found

    def _agent(self, agent_id: str) -> _Agent:
        found = self._agents.get(agent_id)
        if found is None:
            found = self._agents[agent_id] = _Agent()
        return found

    def _task(self, event: AcdEvent, queue: str, task_id: str) -> _Task:
        """The task, or one first heard of now: it joined before these statistics began (before the
        stored events, or yesterday): it counts as offered now, having joined `wait` ago if known."""
        task = self._tasks.get(task_id)
        if task is None:
            wait = _number(event.detail, "wait")
            task = self._tasks[task_id] = _Task(queue, event.at - (wait or 0.0))
            self._count(queue, event.at, ("offered", 1))
        task.seen = max(task.seen, event.at)
        return task

    def _count(self, queue: str, at: float, *entry: tuple[str, int]) -> None:
        found = self._queue(queue)
        found.day.add(entry)
        found.window.add_at(at, entry)

    def _queue_figures(self, name: str, now: float, tasks: list[_Task]) -> dict[str, Any]:
        found = self._queues.get(name) or _Queue(self.window)
        found.window.prune(now)
        waiting = [t.joined for t in tasks if t.answered is None and not t.parked]
        states: dict[str, int] = dict.fromkeys(AGENT_STATES, 0)
        for agent_id in self.members.get(name, ()):
            state = self._agents[agent_id].state if agent_id in self._agents else "logged_out"
            states[state] = states.get(state, 0) + 1
        return {
            "queue": name, "sla_seconds": self.sla.get(name, DEFAULT_SLA), "at": now,
            "waiting": len(waiting), "longest_wait": round(max(0.0, now - min(waiting)), 3) if waiting else 0.0,
            "talking": sum(1 for t in tasks if t.answered is not None),
            "callbacks_waiting": sum(1 for t in tasks if t.parked and t.answered is None),
            "agents": states,
            "day": {"since": self.day_start, **figures(found.day)},
            "window": {"seconds": self.window, **figures(found.window)},
        }
