"""The Stasis application: each channel that enters it is handled according to its role.

- `inbound` (a caller from the trunk, a phone or a browser): a new interaction, a `Session` running
  the flow routed to the dialed number;
- `leg` (a channel this controller originated for an interaction): joins that interaction;
- anything else is refused: hung up, logged, recorded.

The parts: `events.EventRouter` (ARI events to the owner of each channel), `reconciler.Reconciler`
(resync and adoption after a (re)connect), `session.Session` (one interaction).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from ivrpowers.ari import AriClient, AriError, Channel, StasisStart
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.calls.events import EventRouter
from ivrpowers.calls.identity import call_id_for
from ivrpowers.calls.liveness import Liveness
from ivrpowers.calls.media_facts import MediaFacts
from ivrpowers.calls.reconciler import Reconciler
from ivrpowers.calls.roles import INBOUND, LEG, SUPERVISOR, StasisArgs, parse_stasis_args
from ivrpowers.calls.routing import Router
from ivrpowers.calls.session import CallContext, Session
from ivrpowers.config import Settings
from ivrpowers.flows.services import Services
from ivrpowers.media.library import MediaLibrary, media_root
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.models import CallRecord
from ivrpowers.store.writer import CdrWriter

log = logging.getLogger("ivrpowers.calls")

# Call ids of sessions run here, so the reconciler never takes one still being written for lost.
_HANDLED_KEPT = 50_000


class CallController:
    def __init__(self, client: AriClient, settings: Settings, router: Router, cdrs: CdrRepository,
                 writer: CdrWriter, liveness: Liveness, services: Services | None = None) -> None:
        self.client = client
        self.settings = settings
        self.writer = writer
        self.asterisk_id = liveness.asterisk_id
        self.events = EventRouter(client, self._on_stasis_start)
        self.media = MediaFacts(client)
        self.ctx = CallContext(client=client, settings=settings, router=router, writer=writer,
                               events=self.events, controller_id=liveness.id, services=services or Services(),
                               video=MediaLibrary(media_root(settings)), media=self.media)
        self.reconciler = Reconciler(client, settings.ari_app, self, cdrs, writer, liveness)
        self.sessions: dict[str, Session] = {}  # by call id
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._other: set[asyncio.Task[None]] = set()
        self._closing = False

    def install(self) -> None:
        self.events.install()
        self.media.install()
        self.client.on_resync(self.reconciler.on_resync)

    async def shutdown(self) -> None:
        """Stop driving calls without hanging them up: the next controller adopts them.

        A StasisStart that arrives meanwhile is left alone for the same reason; tasks started by
        anything already running are collected until none is left.
        """
        self._closing = True
        while tasks := [t for t in self._tasks() if not t.done()]:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.media.close()

    def _tasks(self) -> list[asyncio.Task[None]]:
        tasks = [s.task for s in self.sessions.values() if s.task is not None]
        return tasks + self.reconciler.tasks() + list(self._other)

    # -- what the reconciler asks ----------------------------------------------------------------
    def live_calls(self) -> dict[str, AriCall]:
        calls: dict[str, AriCall] = {s.channel_id: s.call for s in self.sessions.values()}
        for session in self.sessions.values():
            calls.update(session.legs)
        return calls

    def driven(self, channel_id: str) -> bool:
        return channel_id in self.events.owners

    def handled(self, call_id: str) -> bool:
        return call_id in self._handled

    def lost(self, call_id: str) -> None:
        """A call ended while no controller watched it: its place in a queue, or the agent it held
        busy, is freed (a restart would otherwise keep that agent busy for ever)."""
        if self.ctx.acd is not None:
            self.ctx.acd.end(call_id, "lost")

    # -- channels entering the app ---------------------------------------------------------------
    def _on_stasis_start(self, event: StasisStart) -> None:
        self.start_channel(event.channel, list(event.args), None, recovered=False)

    def start_channel(
        self, channel: Channel, args: list[str], adopted: CallRecord | None, *, recovered: bool
    ) -> None:
        if self._closing or self.driven(channel.id):
            return
        parsed = parse_stasis_args(args)
        if parsed.role == INBOUND:
            self._start_session(channel, parsed, adopted, recovered=recovered)
        elif parsed.role == LEG:
            self._join(channel, parsed)
        elif parsed.role == SUPERVISOR:
            # Its supervision waits for it (`calls.supervision`); one that gets here was given up on
            # (answered too late) or outlived its controller: a supervision is not adopted.
            log.info("supervisor channel %s not expected: hung up", channel.id)
            self._spawn_other(self._hang_up(channel.id, "normal"))
        else:
            log.warning("channel %s entered with unknown role %r (args %s): hung up", channel.id, parsed.role, args)
            self._spawn_other(self._hang_up(channel.id, "normal"))

    def _start_session(
        self, channel: Channel, args: StasisArgs, adopted: CallRecord | None, *, recovered: bool
    ) -> None:
        call_id = adopted.id if adopted else call_id_for(self.asterisk_id, channel.id)
        session = Session(self.ctx, call_id, channel, args, adopted)
        if adopted is None and self.ctx.router.answers_first(session.call.dialed):
            # Now rather than when its task first runs, behind the other events and work queued:
            # that wait was most of what this controller added to a call's setup (`make bench-calls`).
            session.call.answer_now()
        self.sessions[call_id] = session
        self.events.attach(channel.id, session.call)
        self._handled[call_id] = None
        if len(self._handled) > _HANDLED_KEPT:
            self._handled.popitem(last=False)
        if adopted is None:
            self.writer.start_call(
                id=call_id, asterisk_id=self.asterisk_id, channel_id=channel.id, owner=self.ctx.controller_id,
                role=args.role, source=args.source, channels=session.channels(), recovered=recovered,
                caller_number=channel.caller.number if channel.caller else "",
                caller_name=channel.caller.name if channel.caller else "",
                dialed=session.call.dialed, started_at=channel.creationtime or datetime.now(UTC),
            )
        elif adopted.owner != self.ctx.controller_id:
            self.writer.update_call(call_id, owner=self.ctx.controller_id)
        session.task = asyncio.create_task(self._run(session), name=f"call-{channel.id}")

    async def _run(self, session: Session) -> None:
        try:
            await session.run()
        finally:
            self.sessions.pop(session.call_id, None)

    def _join(self, channel: Channel, args: StasisArgs) -> None:
        session = self.sessions.get(args.interaction or "")
        if session is None:
            log.warning("leg %s names interaction %r, not driven here: hung up", channel.id, args.interaction)
            self._spawn_other(self._hang_up(channel.id, "normal"))
            return
        session.add_leg(channel)

    async def _hang_up(self, channel_id: str, reason: str) -> None:
        try:
            await self.client.hangup(channel_id, reason=reason)
        except AriError as exc:
            log.info("hanging up %s: %s", channel_id, exc)

    def _spawn_other(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._other.add(task)
        task.add_done_callback(self._other.discard)
