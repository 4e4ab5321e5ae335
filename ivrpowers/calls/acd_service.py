"""The ACD at run time: the pure router (`ivrpowers.acd`) fed with what happens on calls and by
agents, its decisions carried out on ARI (`acd_offers`), its state saved after every change.

Everything the router does happens on the event loop between two awaits, so its calls need no
lock; what takes time (ringing an agent, bridging, saving) runs in tasks of its own. Time is the
wall clock (`time.time()`): the saved state means the same after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ivrpowers.acd import (
    AcdError,
    AgentConfig,
    AgentStateChanged,
    CancelOffer,
    Decision,
    NoAgents,
    Offer,
    QueueConfig,
    Router,
    Snapshot,
    Task,
    TaskTimedOut,
)
from ivrpowers.acd.definitions import AgentDef, QueueDef
from ivrpowers.flows.services import QueueRefused, QueueRequest, QueueUpdate
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.acd_state import AcdStateRepository

if TYPE_CHECKING:
    from ivrpowers.calls.acd_offers import Offers
    from ivrpowers.calls.session import Session

log = logging.getLogger("ivrpowers.acd")

# "Recent" for the estimated wait: the answers of the last half hour.
RATE_WINDOW = 1800.0
SAVE_EVERY = 1.0  # seconds


def queue_config(queue: QueueDef) -> QueueConfig:
    return QueueConfig(name=queue.name, strategy=queue.strategy, channels=frozenset(queue.channels),
                       ring_timeout=float(queue.ring_timeout), wrapup_seconds=float(queue.wrapup_seconds),
                       max_wait=float(queue.max_wait) if queue.max_wait else None,
                       sla_seconds=float(queue.sla_seconds),
                       relaxation=tuple((float(s.after), s.lower_by) for s in queue.skill_relaxation),
                       rna_pause=queue.rna_pause, join_empty=queue.no_agents == "wait")


def agent_config(agent: AgentDef) -> AgentConfig:
    capacity = agent.capacity
    return AgentConfig(id=agent.id, skills=dict(agent.skills), queues=dict(agent.queues),
                       capacity={"voice": capacity.voice, "video": capacity.video, "chat": capacity.chat})


class Ticket:
    """A call's place in a queue (`flows.services.QueueTicket`), fed by the service."""

    def __init__(self, service: AcdService, task_id: str, queue: QueueDef, session: Session) -> None:
        self.service, self.task_id, self.queue, self.session = service, task_id, queue, session
        self.updates: asyncio.Queue[QueueUpdate] = asyncio.Queue()
        self.done = False

    @property
    def hold(self) -> str:
        return self.queue.hold

    @property
    def announce(self) -> dict[str, Any]:
        return self.queue.announce.model_dump()

    async def update(self) -> QueueUpdate:
        return await self.updates.get()

    async def status(self) -> QueueUpdate:
        position, estimate = self.service.position(self.task_id)
        return QueueUpdate("waiting", position=position, estimated_wait=estimate)

    async def leave(self, reason: str) -> None:
        self.service.end(self.task_id, reason)

    async def park(self, number: str) -> None:
        self.service.park(self.task_id, number)


class SessionAcd:
    """The `flows.services.Acd` of one call."""

    def __init__(self, service: AcdService, session: Session) -> None:
        self.service, self.session = service, session

    async def join(self, request: QueueRequest) -> Ticket:
        return await self.service.join(self.session, request)


class AcdService:
    def __init__(self, definitions: AcdRepository, state: AcdStateRepository, owner: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.definitions, self.state, self.owner, self.clock = definitions, state, owner, clock
        self.router = Router()
        self.queues: dict[str, QueueDef] = {}
        self.agents: dict[str, AgentDef] = {}
        self.tickets: dict[str, Ticket] = {}
        self.callbacks: dict[str, str] = {}  # parked task -> the number to call back
        self.pending: dict[str, tuple[str, float]] = {}  # offers made before their call came back
        self.offers: Offers | None = None  # set by the composition root (ARI side)
        # Whether an endpoint can ring now (`endpoints.Presence.reachable`); None: take them all as able.
        self.reachable: Callable[[str], bool] | None = None
        self.answers: dict[str, deque[float]] = {}  # queue -> when its recent calls were answered
        self.decisions = 0  # how many the router made: health and tests wait on it
        self._dirty = asyncio.Event()
        self._wake = asyncio.Event()
        self._events: list[tuple[str, datetime, str, str, str | None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- life ---------------------------------------------------------------------------------
    async def start(self) -> None:
        saved = await self.state.load()
        if saved is not None:
            self.router = Router.restore(Snapshot.from_dict(saved))
        await self.reload()
        for name, coro in (("acd-timer", self._timer()), ("acd-saver", self._saver())):
            task = asyncio.create_task(coro, name=name)
            self._tasks.add(task)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._dirty.is_set():
            await self._save()

    async def reload(self) -> None:
        """Take the queues and agents as now defined (after `acd apply`, a CLI or REST change)."""
        queues, agents = await self.definitions.queues(), await self.definitions.agents()
        now = self.clock()
        for name, queue in queues.items():
            if self.queues.get(name) != queue:
                self._apply(self.router.set_queue(queue_config(queue), now))
        for agent_id, agent in agents.items():
            if self.agents.get(agent_id) != agent or agent_id not in self.router.agent_ids():
                self._apply(self.router.set_agent(agent_config(agent), now))
        for agent_id in set(self.router.agent_ids()) - set(agents):
            with contextlib.suppress(AcdError):  # still logged in or busy: removed when it can be
                self._apply(self.router.logout(agent_id, now))
                self.router.remove_agent(agent_id)
        for config in self.router.queues:
            if config.name not in queues:
                with contextlib.suppress(AcdError):  # tasks still in it: removed when they are gone
                    self.router.remove_queue(config.name)
        for agent_id, agent in agents.items():
            if agent.auto_login and not self.router.agent(agent_id).logged_in:
                self._apply(self.router.login(agent_id, now))
            if self.reachable is not None:
                able = agent.endpoint is not None and self.reachable(agent.endpoint)
                self._apply(self.router.set_reachable(agent_id, able, now))
        self.queues, self.agents = queues, agents
        self._changed()

    # -- calls --------------------------------------------------------------------------------
    async def join(self, session: Session, request: QueueRequest) -> Ticket:
        queue = self.queues.get(request.queue)
        if queue is None:
            await self.reload()  # created a moment ago?
            queue = self.queues.get(request.queue)
            if queue is None:
                raise QueueRefused("unknown_queue", f"there is no queue named {request.queue!r}")
        task_id = session.call_id
        ticket = self.tickets[task_id] = Ticket(self, task_id, queue, session)
        if task_id in self.router.task_ids():  # adopted: it kept its place (or its agent)
            known = self.router.task(task_id)
            if known.status == "active" and self.offers is not None and known.agent is not None:
                self.offers.resume_conversation(ticket, known.agent)
            elif (offer := self.pending.pop(task_id, None)) is not None and self.offers is not None:
                self.offers.ring(ticket, *offer)
            return ticket
        now = self.clock()
        task = Task(task_id, request.queue, "voice", arrived=now, priority=request.priority,
                    skills=dict(request.skills))
        decisions = self.router.arrive(task, now)
        if any(isinstance(d, NoAgents) for d in decisions):
            del self.tickets[task_id]
            raise QueueRefused("no_agents", f"nobody is logged in to queue {request.queue!r}")
        self._apply(decisions)
        return ticket

    def end(self, task_id: str, reason: str) -> None:
        """The task is over: the caller left, hung up, or the conversation ended."""
        ticket = self.tickets.pop(task_id, None)
        if ticket is not None:
            ticket.done = True
        if task_id in self.router.task_ids():
            log.debug("task %s ends: %s", task_id, reason)
            self._apply(self.router.end_task(task_id, self.clock()))

    def park(self, task_id: str, number: str) -> None:
        self.callbacks[task_id] = number
        self.tickets.pop(task_id, None)
        self._apply(self.router.park(task_id, self.clock()))

    def position(self, task_id: str) -> tuple[int | None, float | None]:
        """(1-based place among the queue's waiting tasks, estimated seconds to an answer)."""
        if task_id not in self.router.task_ids():
            return None, None
        queue = self.router.task(task_id).task.queue
        waiting = self.router.waiting(queue)
        if task_id not in waiting:
            return None, None
        place = waiting.index(task_id) + 1
        recent = self.answers.get(queue, deque())
        cutoff = self.clock() - RATE_WINDOW
        while recent and recent[0] < cutoff:
            recent.popleft()
        # Callers ahead, at the pace the queue's agents have answered lately (not a day's average).
        estimate = place * RATE_WINDOW / len(recent) if recent else None
        return place, estimate

    # -- offers, from the ARI side -------------------------------------------------------------
    def answered(self, task_id: str, agent_id: str) -> bool:
        """The agent answered: False if the offer was withdrawn meanwhile (hang that leg up)."""
        try:
            self._apply(self.router.answer(task_id, agent_id, self.clock()))
        except AcdError:
            return False
        queue = self.router.task(task_id).task.queue
        self.answers.setdefault(queue, deque()).append(self.clock())
        return True

    def not_answered(self, task_id: str, agent_id: str, declined: bool) -> None:
        with contextlib.suppress(AcdError):  # withdrawn by the router first: nothing to tell it
            now = self.clock()
            self._apply(self.router.decline(task_id, agent_id, now) if declined else
                        self.router.offer_timed_out(task_id, agent_id, now))

    def notify(self, task_id: str, update: QueueUpdate) -> None:
        ticket = self.tickets.get(task_id)
        if ticket is not None:
            ticket.updates.put_nowait(update)

    # -- agents --------------------------------------------------------------------------------
    def agent_event(self, agent_id: str, event: str, reason: str | None = None) -> None:
        """`login`, `logout`, `pause` (with a reason), `unpause`, `end_wrap_up`. Raises AcdError."""
        now = self.clock()
        if event == "pause":
            decisions = self.router.pause(agent_id, reason or "break", now)
        else:
            decisions = getattr(self.router, event)(agent_id, now)
        self._apply(decisions)

    def agent_state(self, agent_id: str) -> dict[str, Any]:
        """What the agent is doing now (raises AcdError for an unknown agent)."""
        agent = self.router.agent(agent_id)
        return {"agent": agent_id, "state": agent.state, "reason": agent.reason, "logged_in": agent.logged_in,
                "reachable": agent.reachable, "answered": agent.answered, "offers": list(agent.offers),
                "tasks": list(agent.active),
                "wrap_up_until": _iso(agent.wrap_until) if agent.wrap_until is not None else None}

    def queue_now(self, queue: str) -> dict[str, Any]:
        """The queue this moment: callers waiting (and the longest wait), agents by state."""
        now = self.clock()
        waiting = [self.router.task(task_id) for task_id in self.router.waiting(queue)]
        states: dict[str, int] = {}
        for agent_id, agent in self.agents.items():
            if queue in agent.queues and agent_id in self.router.agent_ids():
                state = self.router.agent(agent_id).state
                states[state] = states.get(state, 0) + 1
        return {"queue": queue, "waiting": len(waiting),
                "longest_wait": round(max((now - t.task.arrived for t in waiting), default=0.0), 3),
                "agents": states}

    def set_reachable(self, agent_id: str, reachable: bool) -> None:
        with contextlib.suppress(AcdError):
            self._apply(self.router.set_reachable(agent_id, reachable, self.clock()))

    def endpoint_changed(self, endpoint: str, reachable: bool) -> None:
        """An endpoint's phone registered (and answers) or went away: its agents follow."""
        for agent_id, agent in self.agents.items():
            if agent.endpoint == endpoint:
                self.set_reachable(agent_id, reachable)

    def endpoint_of(self, agent_id: str) -> str | None:
        agent = self.agents.get(agent_id)
        return agent.endpoint if agent is not None else None

    # -- decisions ----------------------------------------------------------------------------
    def _apply(self, decisions: Sequence[Decision]) -> None:
        self.decisions += len(decisions)
        for decision in decisions:
            if isinstance(decision, Offer):
                self.notify(decision.task, QueueUpdate("ringing", decision.agent))
                ticket = self.tickets.get(decision.task)
                if self.offers is not None and ticket is not None:
                    self.offers.ring(ticket, decision.agent, decision.expires)
                else:  # its call is not back yet (a restart adopts it in a moment): ring when it is
                    self.pending[decision.task] = (decision.agent, decision.expires)
            elif isinstance(decision, CancelOffer):
                self.pending.pop(decision.task, None)
                if self.offers is not None:
                    self.offers.cancel(decision.task, decision.agent)
            elif isinstance(decision, NoAgents):  # a waiting caller, when the last agent logged out
                self.notify(decision.task, QueueUpdate("no_agents"))
                self.tickets.pop(decision.task, None)
            elif isinstance(decision, TaskTimedOut):
                self.notify(decision.task, QueueUpdate("timeout"))
                self.tickets.pop(decision.task, None)
            elif isinstance(decision, AgentStateChanged):
                at = datetime.fromtimestamp(decision.at, UTC)
                self._events.append((decision.agent, at, decision.old, decision.new, decision.reason))
        self._changed()

    def tick(self) -> None:
        """Whatever is due now: ring-outs, wrap-up ends, relaxation steps, max_wait."""
        self._apply(self.router.tick(self.clock()))

    def _changed(self) -> None:
        self._dirty.set()
        self._wake.set()

    async def _timer(self) -> None:
        while True:
            deadline = self.router.next_deadline()
            self._wake.clear()
            delay = None if deadline is None else max(0.0, deadline - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if deadline is not None and self.clock() >= deadline:
                self.tick()

    async def _saver(self) -> None:
        # At most one save a second: a snapshot of thousands of agents costs tens of milliseconds of
        # this event loop; the router's changes in between go in the next one.
        while True:
            await self._dirty.wait()
            await self._save()
            await asyncio.sleep(SAVE_EVERY)

    async def _save(self) -> None:
        self._dirty.clear()
        events, self._events = self._events, []
        try:
            await self.state.save(self.router.snapshot().to_dict(), self.owner, events)
        except Exception as exc:  # the database is away: keep the events, try again with the next change
            self._events[:0] = events
            self._dirty.set()
            log.warning("ACD state not saved (%s: %s); retrying", type(exc).__name__, exc)
            await asyncio.sleep(1.0)


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat()
