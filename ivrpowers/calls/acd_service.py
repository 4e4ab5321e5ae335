"""The ACD at run time: the pure router (`ivrpowers.acd`) fed with what happens on calls, chats and
by agents, its decisions carried out by each task's desk (a call's `acd_voice.Ticket` ringing agents
over ARI, a chat's desk), what happened told as `AcdEvent`s (`acd_events`), its state saved.

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
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from ivrpowers.acd import (
    AcdError,
    AgentStateChanged,
    CancelOffer,
    Decision,
    NoAgents,
    Offer,
    Router,
    Snapshot,
    Task,
    TaskTimedOut,
)
from ivrpowers.acd.definitions import AgentDef, QueueDef, agent_config, queue_config
from ivrpowers.acd.events import AcdEvent, OfferOutcome, TaskOutcome
from ivrpowers.acd.stats import Stats
from ivrpowers.calls import acd_views
from ivrpowers.calls.acd_callbacks import Callbacks
from ivrpowers.calls.acd_events import Happenings
from ivrpowers.calls.acd_voice import Ticket, join_queue
from ivrpowers.flows.services import QueueRefused, QueueRequest, QueueUpdate
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.acd_state import AcdStateRepository

if TYPE_CHECKING:
    from ivrpowers.calls.acd_offers import Offers
    from ivrpowers.calls.session import Session

log = logging.getLogger("ivrpowers.acd")

SAVE_EVERY = 1.0  # seconds

# How a task's end, as its desk tells it, counts (a task answered first always counts as handled).
_OUTCOMES: dict[str, TaskOutcome] = {"caller_hangup": "abandoned", "conversation_ended": "handled",
                                     "timeout": "timeout", "left": "left", "bridge_failed": "failed",
                                     "callback_failed": "failed", "lost": "failed"}


class Desk(Protocol):
    """Who carries out the router's decisions for one task: a call's ticket, a chat, a callback."""

    def ring(self, task_id: str, agent_id: str, expires: float) -> None:
        """Offer the task to the agent; its answer comes back by `answered`/`not_answered`."""

    def cancel(self, task_id: str, agent_id: str) -> None:
        """The offer is withdrawn (rang out, answered elsewhere, the task ended)."""

    def closed(self, task_id: str, outcome: str) -> None:
        """The router sent the task away: `timeout` (max_wait) or `no_agents`."""


class AcdService:
    def __init__(self, definitions: AcdRepository, state: AcdStateRepository, owner: str,
                 clock: Callable[[], float] = time.time, timezone: str = "UTC") -> None:
        self.definitions, self.state, self.owner, self.clock = definitions, state, owner, clock
        self.tz = ZoneInfo(timezone)
        self.router = Router()
        self.queues: dict[str, QueueDef] = {}
        self.agents: dict[str, AgentDef] = {}
        self.desks: dict[str, Desk] = {}  # task -> who carries out its offers
        self.pending: dict[str, dict[str, float]] = {}  # offers made while their task had no desk yet
        self.callbacks = Callbacks(self)
        self.offers: Offers | None = None  # set by the composition root (ARI side)
        # Whether an endpoint can ring now (`endpoints.Presence.reachable`); None: take them all as able.
        self.reachable: Callable[[str], bool] | None = None
        self.answers: dict[str, deque[float]] = {}  # queue -> when its recent calls were answered
        self.decisions = 0  # how many the router made: health and tests wait on it
        self.happenings = Happenings(clock)
        self.stats = Stats()
        self.day = self._day_start(clock())
        self.happenings.subscribe(self._noted)
        self._dirty = asyncio.Event()
        self._wake = asyncio.Event()
        self._agent_changes: list[tuple[str, datetime, str, str, str | None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- life ---------------------------------------------------------------------------------
    async def start(self) -> None:
        saved = await self.state.load()
        if saved is not None:
            self.router = Router.restore(Snapshot.from_dict(saved))
        tasks = [self.router.task(task_id) for task_id in self.router.task_ids()]
        since = min([self.day, *(t.task.arrived for t in tasks)])
        self.stats.new_day(self.day)
        for event in await self.state.events_since(since):
            self.happenings.replay([event])
            if event.at >= self.day:
                self.stats.feed(event)
        for task in tasks:  # joined before what was replayed: its facts from the router's
            self.happenings.adopt(task.task, task.agent)
        await self.reload()
        now = self.clock()
        for agent_id in self.router.agent_ids():  # one whose state has not changed today shows as it is
            self._feed_state(agent_id, now)
        self.callbacks.restore()
        for name, coro in (("acd-timer", self._timer()), ("acd-saver", self._saver())):
            self._tasks.add(asyncio.create_task(coro, name=name))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.callbacks.close()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._dirty.is_set():
            await self._save()

    def subscribe(self, subscriber: Callable[[AcdEvent], None]) -> Callable[[], None]:
        """Every `AcdEvent` as it happens (called on the event loop: keep it quick). Returns the
        function that unsubscribes."""
        return self.happenings.subscribe(subscriber)

    async def reload(self) -> None:
        """Take the queues and agents as now defined (after `acd apply`, a CLI or REST change)."""
        queues, agents = await self.definitions.queues(), await self.definitions.agents()
        now = self.clock()
        for name, queue in queues.items():
            if self.queues.get(name) != queue:
                self.apply(self.router.set_queue(queue_config(queue), now))
        for agent_id, agent in agents.items():
            if self.agents.get(agent_id) != agent or agent_id not in self.router.agent_ids():
                self.apply(self.router.set_agent(agent_config(agent), now))
        for agent_id in set(self.router.agent_ids()) - set(agents):
            with contextlib.suppress(AcdError):  # still logged in or busy: removed when it can be
                self.apply(self.router.logout(agent_id, now))
                self.router.remove_agent(agent_id)
        for config in self.router.queues:
            if config.name not in queues:
                with contextlib.suppress(AcdError):  # tasks still in it: removed when they are gone
                    self.router.remove_queue(config.name)
        for agent_id, agent in agents.items():
            if agent.auto_login and not self.router.agent(agent_id).logged_in:
                self.apply(self.router.login(agent_id, now))
            if self.reachable is not None:
                able = agent.endpoint is not None and self.reachable(agent.endpoint)
                self.apply(self.router.set_reachable(agent_id, able, now))
        self.queues, self.agents = queues, agents
        for agent_id in self.router.agent_ids():
            if not self.stats.knows(agent_id):  # new since start: its page must learn its state too
                self._feed_state(agent_id, now)
        self.stats.configure(sla={name: float(q.sla_seconds) for name, q in queues.items()},
                             members={name: [a for a, agent in agents.items() if name in agent.queues]
                                      for name in queues})
        self._changed()

    def _feed_state(self, agent_id: str, now: float) -> None:
        agent = self.router.agent(agent_id)
        self.stats.feed(AcdEvent("agent_state", now, agent=agent_id,
                                 detail={"old": agent.state, "new": agent.state, "reason": agent.reason}))

    # -- tasks --------------------------------------------------------------------------------
    async def join(self, session: Session, request: QueueRequest) -> Ticket:
        """A call enters a queue (or comes back to it, adopted after a restart): `acd_voice.join_queue`."""
        return await join_queue(self, session, request)

    def submit(self, task: Task, desk: Desk, customer: dict[str, Any] | None = None) -> None:
        """A new task (a call, a chat) enters its queue. Raises QueueRefused. `customer`: what its
        offers show the agent (who, what the IVR learnt: `customer_facts`)."""
        if task.queue not in self.queues:
            raise QueueRefused("unknown_queue", f"there is no queue named {task.queue!r}")
        now = self.clock()
        decisions = self.router.arrive(task, now)
        if any(isinstance(d, NoAgents) and d.task == task.id for d in decisions):
            self.apply([d for d in decisions if not isinstance(d, NoAgents)])
            raise QueueRefused("no_agents", f"no agent logged in to queue {task.queue!r} takes {task.channel}")
        self.desks[task.id] = desk
        self.happenings.joined(task, customer)
        self.apply(decisions)

    def attach(self, task_id: str, desk: Desk) -> None:
        """After a restart: a task the router kept has its desk again; its offers (made before the
        restart, or since) ring now. (A call's ticket rings only those made since: its agent's
        phone may still be ringing from before.)"""
        self.desks[task_id] = desk
        if task_id in self.router.task_ids():
            for agent_id, expires in self.router.task(task_id).offers:
                self.pending.setdefault(task_id, {})[agent_id] = expires
        self.ring_pending(task_id)

    def end(self, task_id: str, reason: str) -> None:
        """The task is over: the caller left, hung up, or the conversation ended."""
        desk = self.desks.get(task_id)
        if isinstance(desk, Ticket):
            desk.done = True
        self.pending.pop(task_id, None)
        if task_id in self.router.task_ids():
            log.debug("task %s ends: %s", task_id, reason)
            self.happenings.ended(task_id, _OUTCOMES.get(reason, "failed"))
            # Its desk still here: the offers this withdraws (CancelOffer) stop ringing.
            self.apply(self.router.end_task(task_id, self.clock()))
        self.desks.pop(task_id, None)

    def position(self, task_id: str) -> tuple[int | None, float | None]:
        """(1-based place among the queue's waiting tasks, estimated seconds to an answer)."""
        return acd_views.position(self.router, self.answers, task_id, self.clock())

    # -- offers, from the desks ----------------------------------------------------------------
    def answered(self, task_id: str, agent_id: str) -> bool:
        """The agent answered: False if the offer was withdrawn meanwhile (hang that leg up)."""
        try:
            decisions = self.router.answer(task_id, agent_id, self.clock())
        except AcdError:
            return False
        self.happenings.offer_ended(task_id, agent_id, "answered")
        self.happenings.answered(task_id, agent_id)
        self.apply(decisions)
        queue = self.router.task(task_id).task.queue
        self.answers.setdefault(queue, deque()).append(self.clock())
        return True

    def not_answered(self, task_id: str, agent_id: str, declined: bool) -> None:
        with contextlib.suppress(AcdError):  # withdrawn by the router first: nothing to tell it
            now = self.clock()
            decisions = (self.router.decline(task_id, agent_id, now) if declined else
                         self.router.offer_timed_out(task_id, agent_id, now))
            self.happenings.offer_ended(task_id, agent_id, "declined" if declined else "no_answer")
            self.apply(decisions)

    def notify(self, task_id: str, update: QueueUpdate) -> None:
        """Tell a call's queue node what happened with its agent (connected, ended)."""
        desk = self.desks.get(task_id)
        if isinstance(desk, Ticket):
            desk.updates.put_nowait(update)

    # -- agents --------------------------------------------------------------------------------
    def agent_event(self, agent_id: str, event: str, reason: str | None = None) -> None:
        """`login`, `logout`, `pause` (with a reason), `unpause`, `end_wrap_up`. Raises AcdError."""
        now = self.clock()
        if event == "pause":
            decisions = self.router.pause(agent_id, reason or "break", now)
        else:
            decisions = getattr(self.router, event)(agent_id, now)
        self.apply(decisions)

    async def hold_call(self, agent_id: str, on: bool) -> None:
        """The agent puts its caller on hold, or takes them back. Raises AcdError."""
        if self.offers is None:
            raise AcdError("this controller rings no agents")
        await self.offers.hold(agent_id, on)

    async def transfer_call(self, agent_id: str, queue: str) -> None:
        """The agent sends its caller to `queue`. Raises AcdError."""
        if self.offers is None:
            raise AcdError("this controller rings no agents")
        await self.offers.transfer(agent_id, queue)

    def agent_state(self, agent_id: str) -> dict[str, Any]:
        return acd_views.agent_state(self.router, agent_id)

    def queue_now(self, queue: str) -> dict[str, Any]:
        return acd_views.queue_now(self.router, self.agents, queue, self.clock())

    def set_reachable(self, agent_id: str, reachable: bool) -> None:
        with contextlib.suppress(AcdError):
            self.apply(self.router.set_reachable(agent_id, reachable, self.clock()))

    def endpoint_changed(self, endpoint: str, reachable: bool) -> None:
        """An endpoint's phone registered (and answers) or went away: its agents follow."""
        for agent_id, agent in self.agents.items():
            if agent.endpoint == endpoint:
                self.set_reachable(agent_id, reachable)

    def endpoint_of(self, agent_id: str) -> str | None:
        agent = self.agents.get(agent_id)
        return agent.endpoint if agent is not None else None

    # -- decisions ----------------------------------------------------------------------------
    def apply(self, decisions: Sequence[Decision]) -> None:
        self.decisions += len(decisions)
        for decision in decisions:
            if isinstance(decision, Offer):
                self.happenings.offered(decision.task, decision.agent, decision.expires)
                desk = self.desks.get(decision.task)
                if desk is not None:
                    desk.ring(decision.task, decision.agent, decision.expires)
                else:  # its call is not back yet (a restart adopts it in a moment): ring when it is
                    self.pending.setdefault(decision.task, {})[decision.agent] = decision.expires
            elif isinstance(decision, CancelOffer):
                self.pending.get(decision.task, {}).pop(decision.agent, None)
                rang_out: OfferOutcome = "no_answer" if decision.reason == "ring_no_answer" else "withdrawn"
                self.happenings.offer_ended(decision.task, decision.agent, rang_out)
                if (desk := self.desks.get(decision.task)) is not None:
                    desk.cancel(decision.task, decision.agent)
            elif isinstance(decision, NoAgents | TaskTimedOut):
                outcome: TaskOutcome = "no_agents" if isinstance(decision, NoAgents) else "timeout"
                self.happenings.ended(decision.task, outcome)
                self.pending.pop(decision.task, None)
                if (desk := self.desks.pop(decision.task, None)) is not None:
                    desk.closed(decision.task, outcome)
            elif isinstance(decision, AgentStateChanged):
                self.happenings.agent_state(decision)
                at = datetime.fromtimestamp(decision.at, UTC)
                self._agent_changes.append((decision.agent, at, decision.old, decision.new, decision.reason))
        self._changed()

    def ring_pending(self, task_id: str) -> None:
        desk = self.desks.get(task_id)
        for agent_id, expires in (self.pending.pop(task_id, None) or {}).items():
            if desk is not None:
                desk.ring(task_id, agent_id, expires)

    def _noted(self, event: AcdEvent) -> None:
        if (day := self._day_start(event.at)) > self.day:
            self.day = day
            self.stats.new_day(day)
        self.stats.feed(event)
        desk = self.desks.get(event.task) if event.task is not None else None
        noted = getattr(desk, "noted", None)
        if noted is not None:
            noted(event)

    def _day_start(self, at: float) -> float:
        local = datetime.fromtimestamp(at, self.tz)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def tick(self) -> None:
        """Whatever is due now: ring-outs, wrap-up ends, relaxation steps, max_wait, callbacks to retry."""
        now = self.clock()
        self.apply(self.router.tick(now))
        self.callbacks.tick(now)

    def _next_deadline(self) -> float | None:
        deadlines = [d for d in (self.router.next_deadline(), self.callbacks.next_deadline()) if d is not None]
        return min(deadlines, default=None)


    def _changed(self) -> None:
        self._dirty.set()
        self._wake.set()

    def chat_idle_timeout(self, queue: str) -> float | None:
        """`chats.service.ChatAcd`: how long an answered chat of `queue` may stay silent (None: ever)."""
        definition = self.queues.get(queue)
        return float(definition.chat_idle_timeout) if definition and definition.chat_idle_timeout else None

    async def queue_def(self, name: str) -> QueueDef:
        queue = self.queues.get(name)
        if queue is None:
            await self.reload()  # created a moment ago?
            queue = self.queues.get(name)
            if queue is None:
                raise QueueRefused("unknown_queue", f"there is no queue named {name!r}")
        return queue

    async def _timer(self) -> None:
        while True:
            deadline = self._next_deadline()
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
        changes, self._agent_changes = self._agent_changes, []
        events, self.happenings.unsaved = self.happenings.unsaved, []
        try:
            await self.state.save(self.router.snapshot().to_dict(), self.owner, changes, acd_events=events)
        except Exception as exc:  # the database is away: keep them, try again with the next change
            self._agent_changes[:0] = changes
            self.happenings.unsaved[:0] = events
            self._dirty.set()
            log.warning("ACD state not saved (%s: %s); retrying", type(exc).__name__, exc)
            await asyncio.sleep(1.0)
