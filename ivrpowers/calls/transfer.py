"""A flow's transfer on ARI: originate the target as a `leg` of the interaction, ring back the
caller meanwhile, and on answer bridge the two (`flows.services.Transferer`, one per session).

The leg's id is chosen here, so its events (a ChannelDestroyed when it is never answered) reach
this transfer before the channel enters the app (`EventRouter.expect`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ivrpowers.ari import AriError, Channel
from ivrpowers.calls.roles import LEG, StasisArgs
from ivrpowers.flows.services import TransferResult

if TYPE_CHECKING:
    from ivrpowers.calls.session import Session

log = logging.getLogger("ivrpowers.calls")

BUSY = frozenset({17, 21})  # user busy, call rejected
NO_ANSWER = frozenset({18, 19})  # no user responding, no answer
# Beyond the ring time: how long Asterisk may take to tell us the originated leg is gone.
_GRACE = 5.0


class LegWaiter:
    """Fed by the event router until the originated leg answers (enters the app) or is gone."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.channel: Channel | None = None
        self.cause: int | None = None
        self.cause_txt: str | None = None

    def entered(self, channel: Channel) -> None:
        self.channel = channel
        self.done.set()

    def destroyed(self, cause: int | None, cause_txt: str | None) -> None:
        self.cause, self.cause_txt = cause, cause_txt
        self.done.set()


class SessionTransfer:
    def __init__(self, session: Session) -> None:
        self.session = session

    def dial_string(self, target: str) -> str | None:
        kind, _, name = target.partition(":")
        if kind == "endpoint":
            return f"PJSIP/{name}"
        settings = self.session.ctx.settings
        if kind == "number" and settings.number_allowed(name):
            return f"PJSIP/{name}@{settings.outbound_trunk}"
        return None

    async def transfer(self, target: str, *, timeout: float, caller_id: str | None = None) -> TransferResult:
        session, ctx = self.session, self.session.ctx
        dial = self.dial_string(target)
        if dial is None:
            return TransferResult("failed", {"problem": f"{target}: no outbound trunk allows this number"})
        leg_id = f"{session.channel_id}-t{os.urandom(4).hex()}"
        waiter = LegWaiter()
        ctx.events.expect(leg_id, waiter)
        ringback = f"ring-{leg_id}"
        started = time.monotonic()
        try:
            await ctx.client.originate(
                dial, app_args=StasisArgs(LEG, {"interaction": session.call_id, "purpose": "transfer"}).encode(),
                caller_id=caller_id or _caller_id(session), timeout=math.ceil(timeout), channel_id=leg_id)
            await self._ringback(ringback)
            try:
                await asyncio.wait_for(waiter.done.wait(), timeout + _GRACE)
            except TimeoutError:
                await self._hang_up(leg_id)
                return TransferResult("no_answer", {"ring_ms": _ms(started)})
        except AriError as exc:
            return TransferResult("failed", {"problem": str(exc), "ring_ms": _ms(started)})
        finally:
            ctx.events.unexpect(leg_id)
            await self._stop(ringback)
        ring_ms = _ms(started)
        if waiter.channel is None:
            cause, detail = waiter.cause, {"ring_ms": ring_ms, "cause": waiter.cause, "cause_txt": waiter.cause_txt}
            if cause in BUSY:
                return TransferResult("busy", detail)
            return TransferResult("no_answer" if cause in NO_ANSWER else "failed", detail)
        return await self._bridge(waiter.channel, ring_ms)

    async def _bridge(self, channel: Channel, ring_ms: int) -> TransferResult:
        session, client = self.session, self.session.ctx.client
        leg = session.add_leg(channel)
        try:
            bridge = await client.create_bridge("mixing", bridge_id=f"{session.call_id}-b{os.urandom(3).hex()}")
            await client.add_to_bridge(bridge.id, [session.channel_id, channel.id])
        except AriError as exc:
            await self._hang_up(channel.id)
            return TransferResult("failed", {"problem": f"bridging: {exc}", "ring_ms": ring_ms})
        session.bridged(bridge.id, leg, datetime.now(UTC))
        return TransferResult("answered", {"ring_ms": ring_ms, "channel": channel.id, "bridge": bridge.id})

    async def _ringback(self, playback_id: str) -> None:
        try:
            await self.session.ctx.client.play(self.session.channel_id, "tone:ring", playback_id=playback_id)
        except AriError as exc:  # silence instead of ringing: worth a log line, not a failed transfer
            log.info("call %s: no ringback: %s", self.session.call_id, exc)

    async def _stop(self, playback_id: str) -> None:
        try:
            await self.session.ctx.client.stop_playback(playback_id)
        except AriError:
            pass  # ended with the channel, or never started

    async def _hang_up(self, channel_id: str) -> None:
        try:
            await self.session.ctx.client.hangup(channel_id)
        except AriError:
            pass  # already gone


def _caller_id(session: Session) -> str | None:
    caller = session.channel.caller
    if caller is None or not caller.number:
        return None
    name = "".join(c for c in caller.name if c not in '"<>\\')  # nothing that could end the quoted name
    return f'"{name}" <{caller.number}>' if name else caller.number


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
