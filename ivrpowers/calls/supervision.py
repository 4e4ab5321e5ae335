"""Supervisors listen to, whisper to, barge into and watch agents' queue conversations over ARI.

The supervisor's own endpoint is rung (a `supervisor` channel, told by a SIP header so a browser
answers it at once); once it answers, where it sits depends on the mode (`plan`):
- listen, whisper: in a bridge of its own with a snoop on the agent's channel that hears both
  directions (the caller and the agent); a whisper's snoop also speaks into what the agent hears,
  and only that. The conversation's bridge is left alone: nobody there can tell.
- barge: in the conversation's bridge, heard by both.
- watch (video conversations): in the conversation's bridge (an SFU: it gets each side's picture
  on a stream of its own), its audio muted. It is rung audio-only, so it has no picture to send:
  an SFU would forward any video stream it had to the caller and the agent as a new picture.
Changing mode moves the channel (ARI's addChannel takes it out of the bridge it was in). A
supervision ends when the supervisor hangs up, it is stopped, or the conversation ends; the call's
CDR timeline says when it started, changed and ended, by whom and how.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ivrpowers.acd.supervision import Plan, SupervisionError, plan
from ivrpowers.ari import AriError, Channel
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.calls.legs import GRACE, LegWaiter, caller_id, ring_leg
from ivrpowers.calls.media_facts import MeasuredCall
from ivrpowers.calls.roles import SUPERVISOR, StasisArgs

if TYPE_CHECKING:
    from ivrpowers.calls.acd_service import AcdService
    from ivrpowers.calls.session import CallContext, Session

log = logging.getLogger("ivrpowers.supervision")

SUPERVISE_HEADER = "X-Ivrpowers-Supervise"  # the call supervised: the supervisor's page answers by itself
RING_SECONDS = 30


@dataclass
class Conversation:
    """A queue call talking with its agent now."""

    call_id: str
    queue: str
    agent: str
    caller: str
    video: bool
    since: float | None  # when the agent answered (Unix time)
    session: Session
    leg: AriCall  # the agent's channel

    def view(self, watch: Watch | None) -> dict[str, Any]:
        since = datetime.fromtimestamp(self.since, UTC).isoformat() if self.since is not None else None
        return {"call_id": self.call_id, "queue": self.queue, "agent": self.agent, "caller": self.caller,
                "media": "video" if self.video else "audio", "since": since,
                "supervision": watch.view() if watch is not None else None}


@dataclass
class Watch:
    """One supervision: who, through which endpoint, how, and the channels and bridge it uses."""

    call_id: str
    by: str  # the supervising agent, or "api"
    endpoint: str
    mode: str
    status: str = "ringing"  # then "live"
    channel: AriCall | None = None
    snoop: AriCall | None = None
    snoop_whisper: str | None = None
    bridge_id: str | None = None  # its own, for listen and whisper
    where: str | None = None  # the bridge the supervisor's channel is in: "own", "conversation"
    muted: bool = False
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def view(self) -> dict[str, Any]:
        return {"by": self.by, "endpoint": self.endpoint, "mode": self.mode, "status": self.status,
                "started": self.started.isoformat()}


class Supervision:
    def __init__(self, ctx: CallContext, sessions: Mapping[str, Session], acd: AcdService) -> None:
        self.ctx, self.sessions, self.acd = ctx, sessions, acd
        self.watches: dict[str, Watch] = {}  # by call id
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what is going on ------------------------------------------------------------------------
    async def conversations(self) -> list[Conversation]:
        router, found = self.acd.router, []
        task_ids = set(router.task_ids())
        for call_id, session in list(self.sessions.items()):
            if call_id not in task_ids or not session.call.with_agent or session.bridge_id is None:
                continue
            task = router.task(call_id)
            leg = next((leg for leg in session.legs.values() if not leg.destroyed.is_set()), None)
            if task.status != "active" or task.agent is None or leg is None:
                continue
            facts = self.acd.happenings.tasks.get(call_id)
            video = await session.call.video_codec() is not None and await leg.video_codec() is not None
            found.append(Conversation(call_id, task.task.queue, task.agent, session.call.caller_number, video,
                                      facts.answered if facts is not None else None, session, leg))
        return sorted(found, key=lambda c: c.since or 0.0)

    async def listing(self) -> list[dict[str, Any]]:
        return [c.view(self.watches.get(c.call_id)) for c in await self.conversations()]

    async def _conversation(self, call_id: str) -> Conversation:
        found = next((c for c in await self.conversations() if c.call_id == call_id), None)
        if found is None:
            raise SupervisionError(404, f"call {call_id[:40]!r} is not talking with an agent here")
        return found

    # -- start, change, stop ---------------------------------------------------------------------
    async def start(self, call_id: str, mode: str, *, by: str, endpoint: str) -> tuple[dict[str, Any], bool]:
        """Supervise `call_id` (ring `endpoint`), or change the mode of its supervision by `by`.
        Returns the conversation's view and whether a new supervision was started."""
        conversation = await self._conversation(call_id)
        wanted = plan(mode, conversation.video)
        if conversation.agent == by:
            raise SupervisionError(409, "an agent does not supervise its own call")
        watch = self.watches.get(call_id)
        if watch is not None:
            if watch.by != by:
                raise SupervisionError(409, f"call {call_id} is supervised by {watch.by} already")
            await self._change(watch, conversation, mode, wanted)
            return conversation.view(watch), False
        if busy := next((w for w in self.watches.values() if w.endpoint == endpoint), None):
            raise SupervisionError(409, f"{endpoint} supervises call {busy.call_id}: stop that first")
        watch = self.watches[call_id] = Watch(call_id, by, endpoint, mode)
        task = asyncio.create_task(self._run(watch, conversation), name=f"supervise-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return conversation.view(watch), True

    async def stop(self, call_id: str, by: str) -> None:
        watch = self.watches.get(call_id)
        if watch is None:
            raise SupervisionError(404, f"call {call_id[:40]!r} is not supervised")
        if by not in ("api", watch.by):
            raise SupervisionError(403, f"call {call_id} is supervised by {watch.by}")
        watch.stop.set()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # -- one supervision ---------------------------------------------------------------------------
    async def _run(self, watch: Watch, conversation: Conversation) -> None:
        session, reason = conversation.session, "stopped"
        try:
            channel = await self._ring(watch, conversation)
            if channel is None:
                return
            media = self.ctx.media
            watch.channel = (media.track(channel, "supervisor") if media
                             else AriCall(self.ctx.client, channel, "", on_answer=lambda at: None))
            self.ctx.events.attach(channel.id, watch.channel)
            async with watch.lock:
                await self._apply(watch, conversation, plan(watch.mode, conversation.video))
                watch.status = "live"
            session.journal.write("supervision_started", session.journal.last_node, {
                "supervisor": watch.by, "endpoint": watch.endpoint, "mode": watch.mode})
            log.info("call %s: %s supervises (%s) from %s", watch.call_id, watch.by, watch.mode, watch.endpoint)
            reason = await self._until_over(watch, conversation)
            session.journal.write("supervision_ended", session.journal.last_node, {
                "supervisor": watch.by, "mode": watch.mode, "reason": reason,
                "seconds": round((datetime.now(UTC) - watch.started).total_seconds(), 3)})
        except (AriError, SupervisionError) as exc:
            log.warning("call %s: supervision by %s failed: %s", watch.call_id, watch.by, exc)
            if watch.status == "live":
                session.journal.write("supervision_ended", session.journal.last_node, {
                    "supervisor": watch.by, "mode": watch.mode, "reason": "failed", "problem": str(exc)})
        finally:
            if self.watches.get(watch.call_id) is watch:
                del self.watches[watch.call_id]
            await self._tear_down(watch)
            if isinstance(watch.channel, MeasuredCall) and self.ctx.media is not None:
                facts = self.ctx.media.ended(watch.channel.channel_id)
                session.journal.write("media", session.journal.last_node, facts)

    async def _ring(self, watch: Watch, conversation: Conversation) -> Channel | None:
        """The supervisor's endpoint rung, audio only; its channel once it answers (None if not)."""
        channel_id = f"{watch.call_id}-s{os.urandom(4).hex()}"
        args = StasisArgs(SUPERVISOR, {"interaction": watch.call_id, "by": watch.by})
        waiter = await ring_leg(
            self.ctx, f"PJSIP/{watch.endpoint}", channel_id, args, RING_SECONDS,
            caller_id=caller_id(f"Supervise {conversation.agent}", conversation.caller or "supervise"),
            variables={f"PJSIP_HEADER(add,{SUPERVISE_HEADER})": watch.call_id},
            until=(watch.stop, conversation.session.call.destroyed, conversation.leg.destroyed))
        if waiter.error is not None:
            raise waiter.error
        if waiter.channel is None or watch.stop.is_set() or conversation.leg.destroyed.is_set() \
                or conversation.session.call.destroyed.is_set():
            if waiter.channel is not None:
                await self._hang_up(waiter.channel.id)
            log.info("call %s: supervision by %s not answered (cause %s)", watch.call_id, watch.by, waiter.cause)
            return None
        return waiter.channel

    async def _until_over(self, watch: Watch, conversation: Conversation) -> str:
        assert watch.channel is not None
        ends = {"stopped": watch.stop, "supervisor_hangup": watch.channel.destroyed,
                "caller_hangup": conversation.session.call.destroyed, "agent_hangup": conversation.leg.destroyed}
        waits = {asyncio.ensure_future(event.wait()): why for why, event in ends.items()}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return next(waits[w] for w in waits if w in done)

    async def _change(self, watch: Watch, conversation: Conversation, mode: str, wanted: Plan) -> None:
        async with watch.lock:
            old, watch.mode = watch.mode, mode
            if watch.status != "live" or old == mode:
                return  # still ringing: it starts in the mode last asked for
            try:
                await self._apply(watch, conversation, wanted)
            except (AriError, SupervisionError) as exc:
                raise SupervisionError(409, f"could not switch to {mode}: {exc}") from None
        session = conversation.session
        session.journal.write("supervision_changed", session.journal.last_node,
                              {"supervisor": watch.by, "mode": mode, "was": old})

    async def _apply(self, watch: Watch, conversation: Conversation, wanted: Plan) -> None:
        client, channel = self.ctx.client, watch.channel
        assert channel is not None
        # Silenced before it moves, unsilenced after: a barge never leaks into a listen.
        if wanted.muted and not watch.muted:
            await client.mute(channel.channel_id, "in")
            watch.muted = True
        if wanted.in_conversation:
            if watch.where != "conversation" and conversation.session.bridge_id is not None:
                await client.add_to_bridge(conversation.session.bridge_id, channel.channel_id)
                watch.where = "conversation"
            await self._drop_snoop(watch)
        else:
            if watch.snoop is None or watch.snoop_whisper != wanted.whisper:
                old, new = watch.snoop, await self._snoop(watch, conversation, wanted.whisper)
                watch.snoop, watch.snoop_whisper = new, wanted.whisper
                if watch.bridge_id is None:
                    watch.bridge_id = f"{watch.call_id}-v{os.urandom(3).hex()}"
                    await client.create_bridge("mixing", bridge_id=watch.bridge_id)
                await client.add_to_bridge(watch.bridge_id, new.channel_id)
                if old is not None:  # after the new one is in: no gap in what the supervisor hears
                    await self._hang_up(old.channel_id)
                    self.ctx.events.detach(old.channel_id, old)
            if watch.where != "own" and watch.bridge_id is not None:
                await client.add_to_bridge(watch.bridge_id, channel.channel_id)
                watch.where = "own"
        if not wanted.muted and watch.muted:
            await client.unmute(channel.channel_id, "in")
            watch.muted = False

    async def _snoop(self, watch: Watch, conversation: Conversation, whisper: str) -> AriCall:
        """A snoop on the agent's channel hearing both sides, in the app; `whisper` out: the agent
        (only) hears what is said into it."""
        snoop_id = f"{watch.call_id}-n{os.urandom(4).hex()}"
        waiter = LegWaiter()
        self.ctx.events.expect(snoop_id, waiter)
        try:
            await self.ctx.client.snoop(conversation.leg.channel_id, spy="both", whisper=whisper, snoop_id=snoop_id,
                                        app_args=StasisArgs(SUPERVISOR, {"interaction": watch.call_id,
                                                                         "snoop": "yes"}).encode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.done.wait(), GRACE)  # for the snoop's StasisStart
        finally:
            self.ctx.events.unexpect(snoop_id)
        if waiter.channel is None:
            await self._hang_up(snoop_id)
            raise SupervisionError(409, f"the snoop on {conversation.leg.channel_id} never entered the app")
        snoop = AriCall(self.ctx.client, waiter.channel, "", on_answer=lambda at: None)
        self.ctx.events.attach(snoop_id, snoop)
        return snoop

    async def _drop_snoop(self, watch: Watch) -> None:
        if watch.snoop is not None:
            await self._hang_up(watch.snoop.channel_id)
            self.ctx.events.detach(watch.snoop.channel_id, watch.snoop)
            watch.snoop, watch.snoop_whisper = None, None

    async def _tear_down(self, watch: Watch) -> None:
        await self._drop_snoop(watch)
        if isinstance(watch.channel, MeasuredCall) and self.ctx.media is not None:
            with contextlib.suppress(AriError):
                await watch.channel.hangup()  # read right before
        elif watch.channel is not None:
            await self._hang_up(watch.channel.channel_id)
            self.ctx.events.detach(watch.channel.channel_id, watch.channel)
        if watch.bridge_id is not None:
            with contextlib.suppress(AriError):
                await self.ctx.client.destroy_bridge(watch.bridge_id)

    async def _hang_up(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ctx.client.hangup(channel_id)
