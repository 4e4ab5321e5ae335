"""The ACD's offers on ARI: ring an agent's endpoint (a `leg` of the caller's interaction, showing
the caller's number), and when the agent answers, bridge them; when either hangs up, tell the
router (the agent wraps up) and the caller's queue node (its flow goes on at `next`).

An offer's leg is rung by `calls.legs.ring_leg`, as a transfer's is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ivrpowers.acd.model import AcdError
from ivrpowers.ari import AriError, Channel
from ivrpowers.calls.acd_hold import Conversation, end_hold, set_hold, transfer
from ivrpowers.calls.acd_recording import offer_variables, record_conversation
from ivrpowers.calls.legs import BUSY, GRACE, ring_leg, shown_caller
from ivrpowers.calls.roles import LEG, StasisArgs
from ivrpowers.calls.video import video_settled
from ivrpowers.flows.services import QueueUpdate

if TYPE_CHECKING:
    from ivrpowers.calls.acd_service import AcdService
    from ivrpowers.calls.acd_voice import Ticket
    from ivrpowers.calls.ari_call import AriCall
    from ivrpowers.calls.session import CallContext

log = logging.getLogger("ivrpowers.acd")

PAGE_CLOSED = "page_closed"  # the pause reason of a browser agent whose page went away


class Offers:
    def __init__(self, service: AcdService, ctx: CallContext) -> None:
        self.service, self.ctx = service, ctx
        self.ringing: dict[tuple[str, str], str] = {}  # (task, agent) -> the leg's channel id
        self.cancelled: set[tuple[str, str]] = set()
        self.talking: dict[str, Conversation] = {}  # agent -> the conversation it is in
        self._tasks: set[asyncio.Task[None]] = set()

    async def hold(self, agent_id: str, on: bool) -> None:
        """The agent puts its caller on hold (`on`) or takes them back. Raises AcdError."""
        conversation = self.talking.get(agent_id)
        if conversation is None:
            raise AcdError(f"agent {agent_id!r} is in no call")
        await set_hold(self.ctx, conversation, agent_id, on)

    def browser_gone(self, endpoint: str) -> None:
        """A browser agent's page went away (its SIP websocket closed): the agent's side of its
        conversation is dead; end it (the caller's flow goes on). And pause the agent
        (`page_closed`): calls already skip an agent no phone answers for, but a chat would still be
        offered to it, and ring out, until its page is back and it presses Ready."""
        for agent_id, agent in self.service.agents.items():
            if agent.endpoint != endpoint:
                continue
            if (conversation := self.talking.get(agent_id)) is not None:
                log.info("agent %s's page went away: its call %s ends", agent_id, conversation.ticket.task_id)
                self._spawn(self._hang_up(conversation.leg_id), f"gone-{conversation.leg_id}")
            state = self.service.router.agent(agent_id) if agent_id in self.service.router.agent_ids() else None
            if state is not None and state.logged_in and state.paused is None:
                with contextlib.suppress(AcdError):
                    self.service.agent_event(agent_id, "pause", PAGE_CLOSED)

    async def transfer(self, agent_id: str, queue: str) -> None:
        """The agent sends its caller to `queue`, where they wait again. Raises AcdError."""
        conversation = self.talking.get(agent_id)
        if conversation is None:
            raise AcdError(f"agent {agent_id!r} is in no call")
        if queue not in self.service.queues:
            raise AcdError(f"there is no queue named {queue!r}")
        if queue == conversation.ticket.queue.name:
            raise AcdError(f"the call is from queue {queue!r} already")
        await transfer(self.ctx, conversation, agent_id, queue)

    def ring(self, ticket: Ticket, agent_id: str, expires: float) -> None:
        self._spawn(self._ring(ticket, agent_id, expires), f"offer-{ticket.task_id}-{agent_id}")

    def cancel(self, task_id: str, agent_id: str) -> None:
        key = (task_id, agent_id)
        self.cancelled.add(key)
        leg_id = self.ringing.get(key)
        if leg_id is not None:
            self._spawn(self._hang_up(leg_id), f"cancel-{leg_id}")

    def resume_conversation(self, ticket: Ticket, agent_id: str) -> None:
        """An adopted call that was talking to its agent: watch the bridge it is still in."""
        leg = next(iter(ticket.session.legs.values()), None)
        ticket.session.call.with_agent = True
        self.service.notify(ticket.task_id, QueueUpdate("connected", agent_id))
        self._spawn(self._talk(ticket, agent_id, leg, None, None), f"talk-{ticket.task_id}")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ring(self, ticket: Ticket, agent_id: str, expires: float) -> None:
        key, session, service = (ticket.task_id, agent_id), ticket.session, self.service
        endpoint = service.endpoint_of(agent_id)
        if endpoint is None:
            service.not_answered(ticket.task_id, agent_id, declined=True)
            return
        leg_id = f"{session.call_id}-q{os.urandom(4).hex()}"
        self.ringing[key] = leg_id
        ring = max(1.0, expires - service.clock())
        args = StasisArgs(LEG, {"interaction": session.call_id, "purpose": "queue", "agent": agent_id})
        # A video caller's agent is offered the caller's own codecs, video included (without an
        # originator Asterisk offers audio only, and a browser then never starts its camera). Only
        # those: browser endpoints offer what is asked of them and nothing more
        # (`outgoing_call_offer_pref`), since video passes through untranscoded.
        originator = session.channel.id if await session.call.video_codec() is not None else None

        async def withdrawn_meanwhile() -> None:  # withdrawn while the originate was on its way
            if key in self.cancelled:
                await self._hang_up(leg_id)

        try:
            # The router withdraws the offer when it rings out: Asterisk's own limit is a backstop.
            waiter = await ring_leg(self.ctx, f"PJSIP/{endpoint}", leg_id, args, ring + GRACE,
                                    caller_id=shown_caller(session), originator=originator,
                                    variables=offer_variables(session, ticket.queue.record),
                                    originated=withdrawn_meanwhile)
        finally:
            self.ringing.pop(key, None)
        if waiter.error is not None:
            log.info("call %s: offer to %s failed: %s", session.call_id, agent_id, waiter.error)
            self.cancelled.discard(key)
            service.not_answered(ticket.task_id, agent_id, declined=True)
            return
        if key in self.cancelled:  # the router withdrew it (rang out, answered elsewhere, caller gone)
            self.cancelled.discard(key)
            if waiter.channel is not None:
                await self._hang_up(waiter.channel.id)
            return
        if waiter.channel is None:
            service.not_answered(ticket.task_id, agent_id, declined=waiter.cause in BUSY)
            return
        if ticket.done or not service.answered(ticket.task_id, agent_id):
            await self._hang_up(waiter.channel.id)
            return
        await self._connect(ticket, agent_id, waiter.channel)

    async def _connect(self, ticket: Ticket, agent_id: str, channel: Channel) -> None:
        session, client = ticket.session, self.ctx.client
        leg = session.add_leg(channel)
        bridge_id = f"{session.call_id}-b{os.urandom(3).hex()}"
        try:
            await video_settled(session.call, leg)
            await session.call.join_agent()
            sfu = await session.call.video_codec() is not None and await leg.video_codec() is not None
            await client.create_bridge("mixing,video_sfu" if sfu else "mixing", bridge_id=bridge_id)
            await client.add_to_bridge(bridge_id, [session.channel_id, channel.id])
        except AriError as exc:
            session.call.left_agent()
            log.warning("call %s: could not bridge with agent %s: %s", session.call_id, agent_id, exc)
            await self._hang_up(channel.id)
            self.service.notify(ticket.task_id, QueueUpdate("ended", agent_id, detail={"problem": str(exc)}))
            self.service.end(ticket.task_id, "bridge_failed")
            return
        session.bridged(bridge_id, leg, datetime.now(UTC))
        over = asyncio.Event()
        if ticket.queue.record:
            self._spawn(record_conversation(session, bridge_id, over), f"record-{bridge_id}")
        self.service.notify(ticket.task_id, QueueUpdate("connected", agent_id))
        conversation = self.talking[agent_id] = Conversation(ticket, bridge_id, channel.id)
        try:
            await self._talk(ticket, agent_id, leg, bridge_id, datetime.now(UTC))
        finally:
            over.set()
            if self.talking.get(agent_id) is conversation:
                del self.talking[agent_id]
            await end_hold(conversation)

    async def _talk(self, ticket: Ticket, agent_id: str, leg: AriCall | None, bridge_id: str | None,
                    since: datetime | None) -> None:
        session = ticket.session
        caller_gone = asyncio.ensure_future(session.call.destroyed.wait())
        waits = [caller_gone]
        if leg is not None:
            waits.append(asyncio.ensure_future(leg.destroyed.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        caller_hung_up = session.call.gone
        session.call.left_agent()
        talk = round((datetime.now(UTC) - since).total_seconds(), 3) if since is not None else None
        # The agent is free from now: the router's next offer goes out while this conversation is
        # torn down, not after the bridge's round trip.
        self.service.end(ticket.task_id, "caller_hangup" if caller_hung_up else "conversation_ended")
        if leg is not None and caller_hung_up:
            with contextlib.suppress(AriError):
                await leg.hangup()
        if (bridge := bridge_id or session.bridge_id) is not None:
            if not caller_hung_up:
                # Out of the bridge before the flow goes on: removeChannel answers once the channel
                # has left (a destroyed bridge ejects it later, and a prompt asked for meanwhile was
                # seen lost, the caller left in silence).
                with contextlib.suppress(AriError):
                    await self.ctx.client.remove_from_bridge(bridge, session.channel_id)
            with contextlib.suppress(AriError):  # the caller leaves it for the rest of the flow
                await self.ctx.client.destroy_bridge(bridge)
        # end() made the service forget the ticket: the caller's queue node hears from it directly.
        detail: dict[str, Any] = {"caller_hung_up": caller_hung_up, "talk": talk}
        conversation = self.talking.get(agent_id)
        if conversation is not None and conversation.transferred_to is not None and not caller_hung_up:
            detail["transferred_to"] = conversation.transferred_to
        ticket.updates.put_nowait(QueueUpdate("ended", agent_id, detail=detail))

    async def _hang_up(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ctx.client.hangup(channel_id)
