"""Callbacks: a caller who asked to be called back keeps their place in the queue; when their turn
comes and an agent takes it, the agent's phone rings first, then the customer's number through the
outbound trunk, and the two are bridged.

A callback is an interaction of its own, with its own CDR (role `callback`, the customer's number,
`callback_of` the call that asked for it): every attempt, how it ended and its timings are on its
timeline. A customer who does not answer is tried again, keeping their place, up to the queue's
`callback_attempts`, `callback_retry` seconds apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ivrpowers.acd import AcdError
from ivrpowers.ari import AriError, Channel
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.calls.identity import call_id_for
from ivrpowers.calls.legs import BUSY, GRACE, caller_id, ring_leg
from ivrpowers.calls.media_facts import MeasuredCall
from ivrpowers.calls.roles import LEG, StasisArgs
from ivrpowers.flows.services import QueueRefused

if TYPE_CHECKING:
    from ivrpowers.calls.acd_service import AcdService
    from ivrpowers.calls.session import CallContext, Session

log = logging.getLogger("ivrpowers.acd")

CUSTOMER_RING = 30.0  # how long the customer's phone rings


class Callback:
    """The desk of one callback task (`acd_service.Desk`)."""

    def __init__(self, service: AcdService, ctx: CallContext, task_id: str, number: str, *,
                 caller_name: str = "", attempt: int = 1) -> None:
        self.service, self.ctx, self.task_id, self.number = service, ctx, task_id, number
        self.caller_name, self.attempt = caller_name, attempt
        self.call_id: str | None = None  # its CDR, made at the first attempt
        self.ringing: dict[str, str] = {}  # agent -> the agent leg's channel id
        self.cancelled: set[str] = set()
        self.started: datetime | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the router's side ---------------------------------------------------------------------
    def ring(self, task_id: str, agent_id: str, expires: float) -> None:
        self.cancelled.discard(agent_id)
        self._spawn(self._attempt(agent_id, expires), f"callback-{task_id}-{agent_id}")

    def cancel(self, task_id: str, agent_id: str) -> None:
        self.cancelled.add(agent_id)
        if (leg_id := self.ringing.get(agent_id)) is not None:
            self._spawn(self._hang_up(leg_id), f"cancel-{leg_id}")

    def closed(self, task_id: str, outcome: str) -> None:
        self._event("callback_closed", {"outcome": outcome})
        self._finish("callback_" + outcome)

    async def close(self) -> None:
        """The controller stops: its attempts stop with it (a restart gives the desk back)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one attempt ---------------------------------------------------------------------------
    async def _attempt(self, agent_id: str, expires: float) -> None:
        endpoint = self.service.endpoint_of(agent_id)
        if endpoint is None:
            self.service.not_answered(self.task_id, agent_id, declined=True)
            return
        leg_id = f"cb-{self.task_id[:20]}-{os.urandom(4).hex()}"
        self._open(leg_id)
        self._event("callback_agent_ringing", {"agent": agent_id, "attempt": self.attempt})
        ring = max(1.0, expires - self.service.clock())
        label = caller_id(f"Callback {self.caller_name}".rstrip(), self.number)
        agent = await self._dial(f"PJSIP/{endpoint}", leg_id, label, ring, agent_id)
        if agent is None or agent_id in self.cancelled:
            if agent is not None:
                await self._hang_up(agent.id)
            return
        if not self.service.answered(self.task_id, agent_id):
            await self._hang_up(agent.id)
            return
        self._event("callback_agent_answered", {"agent": agent_id, "attempt": self.attempt})
        agent_leg = self._leg(agent, "agent")
        await self._reach_customer(agent_id, agent_leg)

    async def _dial(self, dial: str, leg_id: str, caller_id: str | None, ring: float,
                    agent_id: str | None) -> Channel | None:
        """Originate a leg and wait for it to answer (its channel) or not (None; the router is told
        for an agent's leg)."""
        if agent_id is not None:
            self.ringing[agent_id] = leg_id
        args = StasisArgs(LEG, {"interaction": self.call_id or "", "purpose": "callback"})
        try:
            waiter = await ring_leg(self.ctx, dial, leg_id, args, ring + GRACE, caller_id=caller_id)
        finally:
            if agent_id is not None:
                self.ringing.pop(agent_id, None)
        if waiter.channel is None:
            detail = {"cause": waiter.cause, "cause_txt": waiter.cause_txt}
            if agent_id is not None:
                self._event("callback_agent_not_answered", {"agent": agent_id, **detail})
                if agent_id not in self.cancelled:
                    self.service.not_answered(self.task_id, agent_id, declined=waiter.cause in BUSY)
            else:
                self._event("callback_customer_not_answered", {"number": self.number, **detail})
        return waiter.channel

    async def _reach_customer(self, agent_id: str, agent_leg: AriCall) -> None:
        client, trunk = self.ctx.client, self.ctx.settings.outbound_trunk
        ringback = f"ring-{agent_leg.channel_id}"
        with contextlib.suppress(AriError):  # the agent hears ringing while the customer's phone rings
            await client.play(agent_leg.channel_id, "tone:ring", playback_id=ringback)
        self._event("callback_dialing", {"number": self.number, "attempt": self.attempt})
        leg_id = f"cb-{self.task_id[:20]}-{os.urandom(4).hex()}"
        customer = None
        if trunk:
            dial = self._dial(f"PJSIP/{self.number}@{trunk}", leg_id, None, CUSTOMER_RING, None)
            gone = asyncio.ensure_future(agent_leg.destroyed.wait())
            dialing = asyncio.ensure_future(dial)
            await asyncio.wait({gone, dialing}, return_when=asyncio.FIRST_COMPLETED)
            gone.cancel()
            if dialing.done():
                customer = dialing.result()
            else:  # the agent hung up first: stop ringing the customer
                await self._hang_up(leg_id)
                customer = await dialing
        with contextlib.suppress(AriError):
            await client.stop_playback(ringback)
        if customer is None or agent_leg.gone:
            if customer is not None:
                await self._hang_up(customer.id)
            await self._end(agent_leg)
            self.ctx.events.detach(agent_leg.channel_id, agent_leg)
            self._retry()
            return
        customer_leg = self._leg(customer, "customer")
        self._update(channels=[{"id": agent_leg.channel_id, "role": "agent"}, {"id": customer.id, "role": "customer"}])
        await self._talk(agent_id, agent_leg, customer_leg)
        for leg in (agent_leg, customer_leg):
            self.ctx.events.detach(leg.channel_id, leg)

    async def _talk(self, agent_id: str, agent_leg: AriCall, customer: AriCall) -> None:
        client = self.ctx.client
        bridge_id = f"cb-{self.task_id[:20]}-b{os.urandom(3).hex()}"
        try:
            await client.create_bridge("mixing", bridge_id=bridge_id)
            await client.add_to_bridge(bridge_id, [agent_leg.channel_id, customer.channel_id])
        except AriError as exc:
            self._event("callback_failed", {"problem": str(exc)})
            for leg in (agent_leg, customer):
                await self._end(leg)
            self.service.end(self.task_id, "bridge_failed")
            self._finish("failed")
            return
        since = datetime.now(UTC)
        self._update(answered_at=since, bridge_id=bridge_id)
        self._event("callback_connected", {"agent": agent_id, "number": self.number, "attempt": self.attempt})
        waits = [asyncio.ensure_future(leg.destroyed.wait()) for leg in (agent_leg, customer)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        customer_hung_up = customer.destroyed.is_set()
        for leg in (agent_leg, customer):
            await self._end(leg)
        with contextlib.suppress(AriError):
            await client.destroy_bridge(bridge_id)
        talk = round((datetime.now(UTC) - since).total_seconds(), 3)
        self._event("callback_ended", {"talk": talk, "by": "customer" if customer_hung_up else "agent"})
        self.service.end(self.task_id, "conversation_ended")
        self._finish("completed")

    def _retry(self) -> None:
        if self.service.callbacks.not_reached(self.task_id):
            self.attempt += 1
            self._event("callback_retry_scheduled", {"next_attempt": self.attempt})
        else:
            self._event("callback_given_up", {"attempts": self.attempt})
            self._finish("callback_failed")

    # -- the callback's CDR --------------------------------------------------------------------
    def _open(self, leg_id: str) -> None:
        if self.call_id is not None:
            return
        settings = self.ctx.settings
        self.call_id = call_id_for(settings.asterisk_id, leg_id)
        self.started = datetime.now(UTC)
        self.ctx.writer.start_call(
            id=self.call_id, asterisk_id=settings.asterisk_id, channel_id=leg_id, owner=self.ctx.controller_id,
            role="callback", source="callback", channels=[], caller_number=self.number,
            caller_name=self.caller_name, dialed=self.number, started_at=self.started)
        self._event("callback_started", {"callback_of": self.task_id, "number": self.number})

    def _event(self, type: str, detail: dict[str, Any]) -> None:
        if self.call_id is not None:
            self.ctx.writer.add_event(self.call_id, type, datetime.now(UTC), None, detail)

    def _update(self, **fields: Any) -> None:
        if self.call_id is not None:
            self.ctx.writer.update_call(self.call_id, **fields)

    def _finish(self, disposition: str) -> None:
        self._update(ended_at=datetime.now(UTC), disposition=disposition[:32])

    def _leg(self, channel: Channel, role: str) -> AriCall:
        media = self.ctx.media
        leg = media.track(channel, role) if media else AriCall(self.ctx.client, channel, "", on_answer=lambda at: None)
        self.ctx.events.attach(channel.id, leg)
        return leg

    async def _end(self, leg: AriCall) -> None:
        """Hang up a leg that answered; its `media` event on the callback's timeline."""
        if self.ctx.media is not None and isinstance(leg, MeasuredCall):
            self._event("media", await self.ctx.media.finish(leg))
        else:
            await self._hang_up(leg.channel_id)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hang_up(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ctx.client.hangup(channel_id)


class Callbacks:
    """The service's callbacks: asked for, tried again when the customer was not reached, and
    given their desks back after a restart (from the day's `task_parked` events)."""

    def __init__(self, service: AcdService) -> None:
        self.service = service
        self.ctx: CallContext | None = None  # set by the composition root (ARI side)
        self.resumes: dict[str, float] = {}  # callbacks to try again: task -> when

    def park(self, task_id: str, number: str, session: Session) -> None:
        """The caller asked to be called back at `number`: they hang up, the task keeps its place,
        and a callback desk takes its offers. Raises QueueRefused("callback_refused")."""
        service, settings, caller = self.service, session.ctx.settings, session.channel.caller
        own = session.args.source == "trunk" and caller is not None and caller.number == number
        if self.ctx is None or not settings.outbound_trunk or not (own or settings.number_allowed(number)):
            raise QueueRefused("callback_refused", f"no outbound trunk may call {number} back")
        name = caller.name if caller is not None else ""
        now = service.clock()
        service.apply(service.router.park(task_id, now))  # an agent ringing for the call stops
        service.desks[task_id] = Callback(service, self.ctx, task_id, number, caller_name=name)
        service.happenings.parked(task_id, {"number": number, "caller_name": name, "attempt": 1})
        service.apply(service.router.resume(task_id, now))

    def not_reached(self, task_id: str) -> bool:
        """The customer did not answer: True if the callback is tried again later (it keeps its
        place, the agent wraps up), False if that was its last attempt (the task ends)."""
        service = self.service
        if task_id not in service.router.task_ids():
            return False
        queue = service.queues.get(service.router.task(task_id).task.queue)
        callback = service.happenings.callbacks.get(task_id, {})
        attempt = int(callback.get("attempt", 1))
        if queue is None or attempt >= queue.callback_attempts:
            service.end(task_id, "callback_failed")
            return False
        now = service.clock()
        resume_at = now + queue.callback_retry
        decisions = service.router.release(task_id, now)
        service.happenings.parked(task_id, {"number": callback.get("number"), "attempt": attempt + 1,
                                            "resume_at": resume_at})
        self.resumes[task_id] = resume_at
        service.apply(decisions)
        return True

    def tick(self, now: float) -> None:
        for task_id, when in list(self.resumes.items()):
            if when <= now:
                del self.resumes[task_id]
                with contextlib.suppress(AcdError):  # ended meanwhile
                    self.service.apply(self.service.router.resume(task_id, now))

    def next_deadline(self) -> float | None:
        return min(self.resumes.values(), default=None)

    async def close(self) -> None:
        await asyncio.gather(*(desk.close() for desk in self.service.desks.values() if isinstance(desk, Callback)))

    def restore(self) -> None:
        """After a restart: callbacks waiting get their desks back (and their retry times). One
        that was talking cannot be watched again: it ends (its legs stay up in Asterisk)."""
        service = self.service
        for task_id, callback in list(service.happenings.callbacks.items()):
            if task_id not in service.router.task_ids() or self.ctx is None or task_id in service.desks:
                continue
            known = service.router.task(task_id)
            if known.status == "active":
                service.end(task_id, "conversation_ended")
                continue
            desk = Callback(service, self.ctx, task_id, str(callback.get("number")),
                            caller_name=str(callback.get("caller_name", "")), attempt=int(callback.get("attempt", 1)))
            if known.status == "parked" and "resume_at" in callback:
                self.resumes[task_id] = float(callback["resume_at"])
            service.attach(task_id, desk)
