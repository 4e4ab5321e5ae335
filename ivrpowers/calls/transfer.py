"""A flow's transfer on ARI: originate the target as a `leg` of the interaction (`calls.legs`),
ring back the caller meanwhile, and on answer bridge the two (`flows.services.Transferer`, one per
session).
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ivrpowers.ari import AriError, Channel
from ivrpowers.calls.legs import BUSY, NO_ANSWER, ring_leg, shown_caller
from ivrpowers.calls.roles import LEG, StasisArgs
from ivrpowers.flows.services import TransferResult

if TYPE_CHECKING:
    from ivrpowers.calls.session import Session

log = logging.getLogger("ivrpowers.calls")


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
        ringback = f"ring-{leg_id}"
        started = time.monotonic()
        try:
            waiter = await ring_leg(
                ctx, dial, leg_id, StasisArgs(LEG, {"interaction": session.call_id, "purpose": "transfer"}), timeout,
                caller_id=caller_id or shown_caller(session), originated=lambda: self._ringback(ringback))
        finally:
            await self._stop(ringback)
        ring_ms = _ms(started)
        if waiter.error is not None:
            return TransferResult("failed", {"problem": str(waiter.error), "ring_ms": ring_ms})
        if waiter.timed_out:
            return TransferResult("no_answer", {"ring_ms": ring_ms})
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


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
