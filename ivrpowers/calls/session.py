"""One interaction driven by this controller: its caller's channel, its flow run and its CDR.

The session owns the first channel (the caller's) and any leg that joins it later; it ends when the
caller's channel is gone. What must survive a crash is in the CDR (start, owner, timeline); the
rest is rebuilt by `ivrpowers.calls.reconciler` when another controller adopts the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ivrpowers.ari import AriClient, AriError, Channel
from ivrpowers.calls.acd_service import AcdService
from ivrpowers.calls.acd_voice import SessionAcd
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.calls.events import EventRouter
from ivrpowers.calls.journal import CallJournal
from ivrpowers.calls.media_facts import MeasuredCall, MediaFacts, is_browser, leg_role
from ivrpowers.calls.recorder import SessionRecorder
from ivrpowers.calls.roles import StasisArgs
from ivrpowers.calls.routing import Router, RoutingError
from ivrpowers.calls.transfer import SessionTransfer
from ivrpowers.calls.video import VideoLibrary
from ivrpowers.config import Settings
from ivrpowers.flows import run_flow
from ivrpowers.flows.call import CallerHungUp
from ivrpowers.flows.services import Services
from ivrpowers.flows.state import resume_state
from ivrpowers.store.models import CallRecord
from ivrpowers.store.writer import CdrWriter

log = logging.getLogger("ivrpowers.calls")

# How long to wait for the channel to leave the app (StasisEnd) once its flow is over.
DESTROY_GRACE = 5.0

DISPOSITIONS = {"hangup_by_flow": "completed", "caller_hangup": "caller_hangup", "handed_off": "handed_off"}
HANDED_OFF = frozenset({"handed_off", "transferred"})  # the call goes on without its flow


@dataclass
class CallContext:
    """What every session needs from the controller (one instance, shared)."""

    client: AriClient
    settings: Settings
    router: Router
    writer: CdrWriter
    events: EventRouter
    controller_id: str
    services: Services
    acd: AcdService | None = None  # the ACD's run time, when this controller runs one
    video: VideoLibrary | None = None  # where `video:NAME` prompts are (the media library)
    media: MediaFacts | None = None  # codecs and RTP figures of browser channels, for the timeline


def _answered(writer: CdrWriter, call_id: str, journal: CallJournal, at: datetime) -> None:
    """The caller's channel was answered: its CDR says when.

    A function, not a method: a call holding its session's bound method would make a reference
    cycle of each session, freed only by a full garbage collection (which then paused the event
    loop, and every call's digits, for tens of ms, `make bench-calls`)."""
    writer.update_call(call_id, answered_at=at)
    journal.write("answered")


@dataclass
class Session:
    ctx: CallContext
    call_id: str
    channel: Channel
    args: StasisArgs
    adopted: CallRecord | None = None
    legs: dict[str, AriCall] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._watchers: set[asyncio.Task[None]] = set()
        self._flow = "no flow"
        self.bridge_id: str | None = None
        self._bridged_leg: AriCall | None = None
        self._bridged_at: datetime | None = None
        self.journal = CallJournal(self.ctx.writer, self.call_id)
        browser = self.args.source == "browser"
        dialed = self.args.dialed or self.channel.dialplan.exten
        # Not a method of the session: the call must not refer back to it (see `_answered`).
        answered = functools.partial(_answered, self.ctx.writer, self.call_id, self.journal)
        self.call = MeasuredCall(self.ctx.client, self.channel, dialed, on_answer=answered,
                                          video=self.ctx.video, browser=browser)
        if self.ctx.media is not None:
            self.ctx.media.watch(self.call, "caller", browser=browser)

    @property
    def channel_id(self) -> str:
        return self.channel.id

    def channels(self) -> list[dict[str, Any]]:
        out = [{"id": self.channel.id, "role": self.args.role}]
        out += [{"id": leg_id, "role": "leg"} for leg_id in self.legs]
        return out

    # -- legs ----------------------------------------------------------------------------------
    def add_leg(self, channel: Channel) -> AriCall:
        """A channel originated for this interaction entered the app: track it and its events."""
        leg = MeasuredCall(self.ctx.client, channel, "", on_answer=lambda at: None)
        if self.ctx.media is not None:
            self.ctx.media.watch(leg, leg_role(channel), browser=is_browser(channel))
        self.legs[channel.id] = leg
        self.ctx.events.attach(channel.id, leg)
        self.journal.write("leg_joined", self.journal.last_node, {"channel": channel.id})
        self.ctx.writer.update_call(self.call_id, channels=self.channels())
        watcher = asyncio.create_task(self._leg_ends(channel.id, leg), name=f"leg-{channel.id}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return leg

    async def _leg_ends(self, channel_id: str, leg: AriCall) -> None:
        await leg.destroyed.wait()
        self.drop_leg(channel_id)

    def drop_leg(self, channel_id: str) -> None:
        leg = self.legs.pop(channel_id, None)
        if leg is not None:
            self.ctx.events.detach(channel_id, leg)
            self._media_ended(channel_id)
            self.journal.write("leg_left", self.journal.last_node, {"channel": channel_id, "cause": leg.cause})

    def _media_ended(self, channel_id: str) -> None:
        if self.ctx.media is not None:  # what the channel negotiated and what flowed, as last read
            self.journal.write("media", self.journal.last_node, self.ctx.media.ended(channel_id))

    def bridged(self, bridge_id: str, leg: AriCall, at: datetime) -> None:
        """A transfer connected the caller to `leg` in `bridge_id`."""
        self.bridge_id, self._bridged_leg, self._bridged_at = bridge_id, leg, at
        self.ctx.writer.update_call(self.call_id, bridge_id=bridge_id)

    def _resume_talk(self, adopted: CallRecord) -> None:
        """An adopted transferred call: its bridge and when it was made come from its CDR; its leg
        joins as the reconciler finds it (callers are adopted before legs)."""
        self.bridge_id = adopted.bridge_id
        self._bridged_at = next((e.at for e in reversed(adopted.events) if e.type == "transfer_answered"), None)

    async def _talk(self) -> None:
        """A transferred call: until either side hangs up; then the other is hung up too."""
        call, leg = self.call, self._bridged_leg or next(iter(self.legs.values()), None)
        if leg is not None:
            ends = [asyncio.ensure_future(call.destroyed.wait()), asyncio.ensure_future(leg.destroyed.wait())]
            try:
                await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for end in ends:
                    end.cancel()
            by = "caller" if call.gone else "target"
        # Whoever is left is hung up (adopted with no leg: the other side had gone, nobody to talk to).
        for side in (call,) if leg is None else (call, leg):
            with contextlib.suppress(AriError):  # a hangup of a gone channel is a no-op
                await side.hangup()
        if leg is not None:
            talk = (datetime.now(UTC) - self._bridged_at).total_seconds() if self._bridged_at else None
            self.journal.write("transfer_ended", self.journal.last_node, {"hung_up_by": by, "talk_seconds": talk})
        if self.bridge_id is not None:
            try:
                await self.ctx.client.destroy_bridge(self.bridge_id)
            except AriError:
                pass  # gone with its last channel
        await call.destroyed.wait()

    # -- the caller's run ----------------------------------------------------------------------
    async def run(self) -> None:
        call, journal = self.call, self.journal
        disposition = "failed"
        try:
            try:
                disposition = await self._drive()
            except CallerHungUp:
                disposition = "caller_hangup"
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("call %s failed", self.call_id)
                journal.write("error", journal.last_node, {"message": "controller error, see logs"})
            if disposition == "transferred":
                await self._talk()
            elif disposition in HANDED_OFF:
                await call.destroyed.wait()  # the interaction goes on without the flow
            elif not call.gone:
                try:
                    await call.hangup()
                except AriError as exc:  # ARI unreachable right now: still close the CDR
                    log.warning("call %s: hangup request failed: %s", self.call_id, exc)
            await self._close(disposition)
        finally:
            self.ctx.events.detach(self.channel.id, call)
            for watcher in list(self._watchers):
                watcher.cancel()
            for leg_id in list(self.legs):
                self.drop_leg(leg_id)

    async def _close(self, disposition: str) -> None:
        call = self.call
        try:
            await asyncio.wait_for(call.destroyed.wait(), DESTROY_GRACE)
        except TimeoutError:
            pass
        by = ("router" if disposition == "unrouted" else "media" if call.silent
              else "flow" if call.hung_up_by_flow else "caller")
        self._media_ended(self.channel.id)
        self.journal.write("hangup", self.journal.last_node, {"by": by, "cause": call.cause,
                                                              "cause_txt": call.cause_txt})
        self.ctx.writer.update_call(
            self.call_id, ended_at=call.ended_at or datetime.now(UTC), disposition=disposition,
            hangup_cause=call.cause, hangup_cause_text=call.cause_txt,
        )
        # One line a call, at its end: a line at each start too costs more than the rest of the logging.
        log.info("call %s from %r to %s (%s) ended: %s, hung up by %s (cause %s %s)", self.call_id,
                 call.caller_number, call.dialed, self._flow, disposition, by, call.cause, call.cause_txt or "")

    async def _drive(self) -> str:
        call, journal, adopted = self.call, self.journal, self.adopted
        state = None
        if adopted is not None:
            ended = [e.detail or {} for e in adopted.events if e.type == "flow_ended"]
            state = resume_state(adopted.events)
            journal.last_node = state.node if state else None
            journal.write("adopted", journal.last_node, {"by": self.ctx.controller_id})
            # Its StasisEnd may have come between the channel list and now, to no owner.
            try:
                await call.resync()
            except AriError as exc:
                log.warning("call %s: could not check its channel after adoption: %s", self.call_id, exc)
            if ended and state is None:
                # Its flow had already ended: don't run it again.
                if ended[-1].get("reason") != "handed_off":
                    return "completed"
                if (ended[-1].get("handoff") or {}).get("kind") == "transfer":
                    self._resume_talk(adopted)
                    return "transferred"
                return "handed_off"
        try:
            if adopted is not None and adopted.flow_name and adopted.flow_version:
                flow, version = await self.ctx.router.flow_version(adopted.flow_name, adopted.flow_version)
            else:
                flow, version = await self.ctx.router.resolve(call.dialed)
        except RoutingError as exc:
            log.info("call %s from %r to %s: unrouted (%s)", self.call_id, call.caller_number, call.dialed, exc)
            journal.write("unrouted", None, {"dialed": call.dialed, "reason": str(exc)})
            await call.progress()
            await call.play(self.ctx.settings.unknown_number_media, barge_in=False)
            await call.hangup("unallocated")
            return "unrouted"
        self._flow = f"flow {flow.name} v{version}" + (f", resumed at {state.node}" if state else "")
        log.debug("call %s from %r to %s: %s", self.call_id, call.caller_number, call.dialed, self._flow)
        if adopted is None or not adopted.flow_name:
            self.ctx.writer.update_call(self.call_id, flow_name=flow.name, flow_version=version)
        services = dataclasses.replace(
            self.ctx.services, transfer=SessionTransfer(self), recorder=SessionRecorder(self),
            acd=SessionAcd(self.ctx.acd, self) if self.ctx.acd is not None else None)
        result = await run_flow(flow, call, journal, services=services, state=state)
        if result.handoff is not None and result.handoff.get("kind") == "transfer":
            return "transferred"
        return DISPOSITIONS.get(result.outcome, "failed")
