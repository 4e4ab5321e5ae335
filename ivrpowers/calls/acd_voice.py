"""A voice call's side of the ACD: its place in a queue (`Ticket`, the flow's `QueueTicket`, and the
call's desk for the router's offers) and the `Acd` service a call's flow is given (`SessionAcd`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ivrpowers.acd import Task
from ivrpowers.acd.definitions import QueueDef
from ivrpowers.acd.events import AcdEvent
from ivrpowers.calls.acd_events import customer_facts
from ivrpowers.flows.services import QueueRequest, QueueUpdate

if TYPE_CHECKING:
    from ivrpowers.calls.acd_service import AcdService
    from ivrpowers.calls.session import Session


class Ticket:
    """A call's place in a queue (`flows.services.QueueTicket`), and where its offers ring (a `Desk`)."""

    def __init__(self, service: AcdService, task_id: str, queue: QueueDef, session: Session) -> None:
        self.service, self.task_id, self.queue, self.session = service, task_id, queue, session
        self.updates: asyncio.Queue[QueueUpdate] = asyncio.Queue()
        self.done = False
        self.video = False  # the caller sends and receives a picture

    # -- the flow's side -----------------------------------------------------------------------
    @property
    def hold(self) -> str:
        if self.video and self.queue.video_hold is not None:
            return self.queue.video_hold
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
        self.service.callbacks.park(self.task_id, number, self.session)

    # -- the router's side (a Desk) ------------------------------------------------------------
    def ring(self, task_id: str, agent_id: str, expires: float) -> None:
        self.updates.put_nowait(QueueUpdate("ringing", agent_id))
        if self.service.offers is not None:
            self.service.offers.ring(self, agent_id, expires)

    def cancel(self, task_id: str, agent_id: str) -> None:
        if self.service.offers is not None:
            self.service.offers.cancel(task_id, agent_id)

    def closed(self, task_id: str, outcome: str) -> None:
        self.done = True
        self.updates.put_nowait(QueueUpdate("timeout" if outcome == "timeout" else "no_agents"))

    def noted(self, event: AcdEvent) -> None:
        """The call's CDR timeline gets what only the ACD knows: how each offer to an agent ended."""
        if event.kind == "offer_ended":
            self.session.journal.write("queue_offer_ended", self.session.journal.last_node,
                                       {"queue": event.queue, "agent": event.agent, **event.detail})


class SessionAcd:
    """The `flows.services.Acd` of one call."""

    def __init__(self, service: AcdService, session: Session) -> None:
        self.service, self.session = service, session

    async def join(self, request: QueueRequest) -> Ticket:
        return await self.service.join(self.session, request)


async def join_queue(service: AcdService, session: Session, request: QueueRequest) -> Ticket:
    """A call enters a queue (or comes back to it, adopted after a restart, keeping its place)."""
    queue = await service.queue_def(request.queue)
    task_id = session.call_id
    ticket = Ticket(service, task_id, queue, session)
    ticket.video = await session.call.video_codec() is not None  # the caller sends a picture
    if task_id in service.router.task_ids():  # adopted: it kept its place (or its agent)
        known = service.router.task(task_id)
        service.desks[task_id] = ticket
        if known.status == "active" and service.offers is not None and known.agent is not None:
            service.offers.resume_conversation(ticket, known.agent)
        else:
            service.ring_pending(task_id)
        return ticket
    # A caller with a picture waits as a video task (for agents who take video) where the queue
    # takes video; otherwise as a voice one, talking without a picture.
    video = ticket.video and "video" in queue.channels
    service.submit(Task(task_id, request.queue, "video" if video else "voice", arrived=service.clock(),
                        priority=request.priority, skills=dict(request.skills)), ticket,
                   customer=customer_facts(session.call.caller_number, session.call.caller_name, request.data))
    return ticket
