"""The Stasis application: every channel that enters it becomes a session running a flow.

Call state that matters after a crash lives in the database (the CDR and its timeline), not here:
after an events outage or a controller restart, channels still in the Stasis app are adopted
again and their flow resumes at the last node entered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from ivrpowers.ari import (
    AriClient,
    AriError,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
    event_channel_id,
)
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.calls.journal import CallJournal
from ivrpowers.calls.routing import Router, RoutingError
from ivrpowers.config import Settings
from ivrpowers.flows import run_flow
from ivrpowers.flows.call import CallerHungUp
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.models import CallRecord
from ivrpowers.store.writer import CdrWriter

log = logging.getLogger("ivrpowers.calls")

# How long to wait for ChannelDestroyed (it carries the hangup cause) once a call is over.
DESTROY_GRACE = 5.0

DISPOSITIONS = {"hangup_by_flow": "completed", "caller_hangup": "caller_hangup"}


@dataclass
class Session:
    call_id: str
    call: AriCall
    journal: CallJournal
    task: asyncio.Task[None] | None = None


def _stasis_args(channel: Channel) -> list[str]:
    """The Stasis() arguments of a channel found by listing (no StasisStart to read them from)."""
    data = channel.dialplan.app_data if channel.dialplan else ""
    return data.split(",")[1:] if data else []


class CallController:
    def __init__(self, client: AriClient, settings: Settings, router: Router, cdrs: CdrRepository, writer: CdrWriter) -> None:
        self.client = client
        self.settings = settings
        self.router = router
        self.cdrs = cdrs
        self.writer = writer
        self.sessions: dict[str, Session] = {}
        self._adoption: asyncio.Task[None] | None = None

    def install(self) -> None:
        self.client.subscribe("StasisStart", self._on_stasis_start)
        self.client.subscribe("ChannelDtmfReceived", self._on_dtmf)
        self.client.subscribe("PlaybackFinished", self._on_playback_finished)
        self.client.subscribe("ChannelHangupRequest", self._on_hangup_request)
        self.client.subscribe("StasisEnd", self._on_stasis_end)
        self.client.subscribe("ChannelDestroyed", self._on_destroyed)
        self.client.on_resync(self._on_resync)

    async def shutdown(self) -> None:
        """Stop driving calls without hanging them up: the next controller adopts them."""
        tasks = [s.task for s in self.sessions.values() if s.task]
        if self._adoption is not None:
            tasks.append(self._adoption)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- events --------------------------------------------------------------------------------
    def _on_stasis_start(self, event: StasisStart) -> None:
        if event.channel.id in self.sessions:
            return
        self._spawn(event.channel, list(event.args), adopted=None)

    def _on_dtmf(self, event: ChannelDtmfReceived) -> None:
        if session := self.sessions.get(event.channel.id):
            session.call.feed_dtmf(event.digit)

    def _on_playback_finished(self, event: PlaybackFinished) -> None:
        if session := self.sessions.get(event_channel_id(event) or ""):
            session.call.feed_playback_finished(event.playback.id)

    def _on_hangup_request(self, event: ChannelHangupRequest) -> None:
        if session := self.sessions.get(event.channel.id):
            session.call.feed_hangup(event.cause)

    def _on_stasis_end(self, event: StasisEnd) -> None:
        if session := self.sessions.get(event.channel.id):
            session.call.feed_hangup()

    def _on_destroyed(self, event: ChannelDestroyed) -> None:
        if session := self.sessions.get(event.channel.id):
            session.call.feed_destroyed(event.cause, event.cause_txt, event.timestamp)

    async def _on_resync(self, channels: list[Channel], reconnected: bool) -> None:
        present = {c.id for c in channels}
        for channel_id, session in list(self.sessions.items()):
            if channel_id in present:
                await session.call.resync()
            else:
                session.call.feed_destroyed(None, None, None)  # it left while we weren't listening
        if not reconnected or any(c.id not in self.sessions for c in channels):
            if self._adoption is None or self._adoption.done():
                self._adoption = asyncio.create_task(self._adopt(close_lost=not reconnected), name="adopt-calls")

    async def _adopt(self, *, close_lost: bool) -> None:
        """Take over the channels in our Stasis app that no session drives, resuming their flows.

        Needs the database (where each call's flow version and last node are), so during an outage
        it waits and retries: the callers wait in the call, they are not dropped.
        """
        delay = 0.5
        while True:
            try:
                # Writes replayed from the log may hold these calls' CDRs: let them land first.
                if self.writer.backlog:
                    log.info("adoption waits for %d pending CDR writes", self.writer.backlog)
                await self.writer.flush()
                records = {r.channel_id: r for r in await self.cdrs.unfinished()}
                channels = [c for c in await self.client.list_channels() if c.in_stasis_app(self.settings.ari_app)]
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot adopt calls yet (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        present = {c.id for c in channels}
        for channel in channels:
            if channel.id not in self.sessions:
                record = records.get(channel.id)
                log.info("adopting channel %s (%s)", channel.id, "resuming its flow" if record else "new to us")
                self._spawn(channel, _stasis_args(channel), adopted=record)
        if close_lost:
            # A fresh controller: calls it has no channel for ended while no controller watched.
            now = datetime.now(UTC)
            for channel_id, record in records.items():
                if channel_id not in present and channel_id not in self.sessions:
                    self.writer.add_event(record.id, "ended_unobserved", now, None, {})
                    self.writer.update_call(record.id, ended_at=now, disposition="ended_unobserved")

    # -- sessions ------------------------------------------------------------------------------
    def _spawn(self, channel: Channel, args: list[str], adopted: CallRecord | None) -> None:
        dialed = args[0] if args else (channel.dialplan.exten if channel.dialplan else "")
        call_id = adopted.id if adopted else str(uuid.uuid4())

        def answered(at: datetime) -> None:
            self.writer.update_call(call_id, answered_at=at)
            journal.write("answered")

        call = AriCall(self.client, channel, dialed, on_answer=answered)
        journal = CallJournal(self.writer, call_id)
        session = Session(call_id=call_id, call=call, journal=journal)
        self.sessions[channel.id] = session
        if adopted is None:
            self.writer.start_call(
                id=call_id, channel_id=channel.id,
                caller_number=channel.caller.number if channel.caller else "",
                caller_name=channel.caller.name if channel.caller else "",
                dialed=dialed, started_at=channel.creationtime or datetime.now(UTC),
            )
        session.task = asyncio.create_task(self._run(session, channel, adopted), name=f"call-{channel.id}")

    async def _run(self, session: Session, channel: Channel, adopted: CallRecord | None) -> None:
        call, journal = session.call, session.journal
        disposition = "failed"
        try:
            try:
                # Without an explicit subscription the app stops hearing of the channel at StasisEnd,
                # and ChannelDestroyed, the one event that carries the hangup cause, never arrives.
                await self.client.subscribe_app(f"channel:{channel.id}")
                disposition = await self._drive(session, adopted)
            except CallerHungUp:
                disposition = "caller_hangup"
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("call %s failed", session.call_id)
                journal.write("error", journal.last_node, {"message": "controller error, see logs"})
            if not call.gone:
                try:
                    await call.hangup()
                except AriError as exc:  # ARI unreachable right now: still close the CDR
                    log.warning("call %s: hangup request failed: %s", session.call_id, exc)
            try:
                await asyncio.wait_for(call.destroyed.wait(), DESTROY_GRACE)
            except TimeoutError:
                pass
            by = "router" if disposition == "unrouted" else "flow" if call.hung_up_by_flow else "caller"
            journal.write("hangup", journal.last_node, {
                "by": by,
                "cause": call.cause, "cause_txt": call.cause_txt,
            })
            self.writer.update_call(
                session.call_id, ended_at=call.ended_at or datetime.now(UTC), disposition=disposition,
                hangup_cause=call.cause, hangup_cause_text=call.cause_txt,
            )
            log.info("call %s ended: %s, hung up by %s (cause %s %s)", session.call_id, disposition, by,
                     call.cause, call.cause_txt or "")
        finally:
            self.sessions.pop(call.channel_id, None)

    async def _drive(self, session: Session, adopted: CallRecord | None) -> str:
        call, journal = session.call, session.journal
        start_at = None
        if adopted is not None:
            start_at = next((e.node for e in reversed(adopted.events) if e.type == "node_entered"), None)
            journal.last_node = start_at
            journal.write("adopted", start_at, {})
        try:
            if adopted is not None and adopted.flow_name and adopted.flow_version:
                flow, version = await self.router.flow_version(adopted.flow_name, adopted.flow_version)
            else:
                flow, version = await self.router.resolve(call.dialed)
        except RoutingError as exc:
            log.info("call %s from %r to %s: unrouted (%s)", session.call_id, call.caller_number, call.dialed, exc)
            journal.write("unrouted", None, {"dialed": call.dialed, "reason": str(exc)})
            await call.progress()
            await call.play(self.settings.unknown_number_media, barge_in=False)
            await call.hangup("unallocated")
            return "unrouted"
        log.info("call %s from %r to %s: flow %s v%d%s", session.call_id, call.caller_number, call.dialed,
                 flow.name, version, f", resumed at {start_at}" if adopted else "")
        if adopted is None:
            self.writer.update_call(session.call_id, flow_name=flow.name, flow_version=version)
        result = await run_flow(flow, call, journal, start_at=start_at)
        return DISPOSITIONS.get(result.outcome, "failed")
