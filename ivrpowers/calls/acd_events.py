"""The ACD's `AcdEvent`s as the run time makes them: each once, kept until saved, given to the
statistics and to every subscriber (the `/api/events` websocket, chat desks) as they happen.

What an event needs to know from earlier ones (when a task joined, when an offer started ringing,
who answered) is tracked from the events themselves, so replaying the day's stored events after a
restart puts it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ivrpowers.acd import AgentStateChanged, Task
from ivrpowers.acd.events import AcdEvent, EventKind, OfferOutcome, TaskOutcome
from ivrpowers.acd.model import Channel

log = logging.getLogger("ivrpowers.acd")

Subscriber = Callable[[AcdEvent], None]


# What an offer shows of the caller's variables: the first few, each value cut short.
MAX_VARS, MAX_VALUE = 20, 200


def customer_facts(number: str, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Who is waiting, for the agent's offer: caller number and name, and the flow's variables
    (the account typed in, a CRM lookup's result) as short text."""
    shown = {str(k)[:64]: (v if isinstance(v, int | float | bool) or v is None else str(v)[:MAX_VALUE])
             for k, v in list(data.items())[:MAX_VARS]}
    return {"number": number, "name": name, "vars": shown}


@dataclass(slots=True)
class TaskFacts:
    queue: str
    channel: Channel
    joined: float
    answered: float | None = None
    agent: str | None = None
    customer: dict[str, Any] | None = None


class Happenings:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.tasks: dict[str, TaskFacts] = {}
        self.callbacks: dict[str, dict[str, Any]] = {}  # task -> its callback (number, attempt, resume_at)
        self.rings: dict[tuple[str, str], float] = {}  # (task, agent) -> when its offer started ringing
        self.unsaved: list[AcdEvent] = []
        self.subscribers: list[Subscriber] = []
        self.count = 0  # events made: tests and health wait on it

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self.subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self.subscribers:
                self.subscribers.remove(subscriber)
        return unsubscribe

    def replay(self, events: Iterable[AcdEvent]) -> None:
        """Stored events (the day's, in order): what later events need to know comes back."""
        for event in events:
            self._track(event)

    # -- what happened ------------------------------------------------------------------------
    def joined(self, task: Task, customer: dict[str, Any] | None = None) -> None:
        detail: dict[str, Any] = {"priority": task.priority, "skills": dict(task.skills)}
        if customer is not None:
            detail["customer"] = customer
        self.emit("task_joined", task.id, queue=task.queue, channel=task.channel, detail=detail)

    def offered(self, task_id: str, agent: str, expires: float) -> None:
        """An offer, with what the agent is shown: when the task joined (its wait), who it is."""
        detail: dict[str, Any] = {"expires": expires}
        if (facts := self.tasks.get(task_id)) is not None:
            detail["joined"] = facts.joined
            if facts.customer is not None:
                detail["customer"] = facts.customer
        self.emit("task_offered", task_id, agent=agent, detail=detail)

    def offer_ended(self, task_id: str, agent: str, outcome: OfferOutcome) -> AcdEvent | None:
        """Once per offer: None if this offer's end was told already."""
        started = self.rings.get((task_id, agent))
        if started is None:
            return None
        ring = round(max(0.0, self.clock() - started), 3)
        return self.emit("offer_ended", task_id, agent=agent, detail={"outcome": outcome, "ring": ring})

    def answered(self, task_id: str, agent: str) -> None:
        facts = self.tasks.get(task_id)
        wait = round(self.clock() - facts.joined, 3) if facts is not None else None
        self.emit("task_answered", task_id, agent=agent, detail={"wait": wait})

    def parked(self, task_id: str, callback: dict[str, Any]) -> None:
        """A callback: asked for (`number`, `caller_name`, `attempt` 1), or a customer not reached
        and tried again at `resume_at` (`attempt` the next one)."""
        facts = self.tasks.get(task_id)
        wait = round(self.clock() - facts.joined, 3) if facts is not None else None
        self.emit("task_parked", task_id, detail={"wait": wait, **callback})

    def ended(self, task_id: str, outcome: TaskOutcome) -> AcdEvent | None:
        """Once per task; a caller who hangs up after an agent answered was handled, not abandoned."""
        facts = self.tasks.get(task_id)
        if facts is None:
            return None
        now = self.clock()
        if facts.answered is not None and outcome == "abandoned":
            outcome = "handled"
        detail: dict[str, Any] = {"outcome": outcome, "wait": round((facts.answered or now) - facts.joined, 3)}
        if facts.answered is not None:
            detail["talk"] = round(now - facts.answered, 3)
        return self.emit("task_ended", task_id, agent=facts.agent, detail=detail)

    def agent_state(self, change: AgentStateChanged) -> None:
        self.emit("agent_state", None, agent=change.agent, at=change.at,
                  detail={"old": change.old, "new": change.new, "reason": change.reason})

    # -- the stream ---------------------------------------------------------------------------
    def emit(self, kind: EventKind, task_id: str | None, *, agent: str | None = None, queue: str | None = None,
             channel: Channel | None = None, detail: dict[str, Any] | None = None,
             at: float | None = None) -> AcdEvent:
        facts = self.tasks.get(task_id) if task_id is not None else None
        if facts is not None:
            queue, channel = queue or facts.queue, channel or facts.channel
        event = AcdEvent(kind, self.clock() if at is None else at, queue=queue, task=task_id, agent=agent,
                         channel=channel, detail=detail or {})
        self._track(event)
        self.unsaved.append(event)
        self.count += 1
        for subscriber in list(self.subscribers):
            try:
                subscriber(event)
            except Exception:  # one bad listener must not stop the ACD or the others
                log.exception("ACD event subscriber failed on %s", event.kind)
        return event

    def _track(self, event: AcdEvent) -> None:
        task = event.task
        if task is None:
            return
        if event.kind == "task_joined" and event.queue is not None and event.channel is not None:
            self.tasks[task] = TaskFacts(event.queue, event.channel, event.at, customer=event.detail.get("customer"))
        elif event.kind == "task_offered" and event.agent is not None:
            self.rings[(task, event.agent)] = event.at
        elif event.kind == "offer_ended" and event.agent is not None:
            self.rings.pop((task, event.agent), None)
        elif event.kind == "task_answered" and (facts := self.tasks.get(task)) is not None:
            facts.answered, facts.agent = event.at, event.agent
        elif event.kind == "task_parked" and "number" in event.detail:
            self.callbacks[task] = {**self.callbacks.get(task, {}), **event.detail}
            if (facts := self.tasks.get(task)) is not None:  # a customer not reached: not answered yet
                facts.answered = facts.agent = None
        elif event.kind == "task_ended":
            self.tasks.pop(task, None)
            self.callbacks.pop(task, None)
            for key in [key for key in self.rings if key[0] == task]:
                del self.rings[key]

    def adopt(self, task: Task, agent: str | None) -> None:
        """A task the router restored that no stored event describes (it joined before the day's
        events replayed): its facts from the router's."""
        if task.id not in self.tasks:
            self.tasks[task.id] = TaskFacts(task.queue, task.channel, task.arrived,
                                            answered=None, agent=agent)
