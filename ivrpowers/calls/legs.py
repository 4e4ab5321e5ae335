"""Originated legs: a channel this controller dials (a transfer's target, an agent's offer, a
callback's agent and customer, a supervisor), with an id chosen here so that its events reach its
waiter before the channel enters the app (`EventRouter.expect`): a leg never answered is only ever
a ChannelDestroyed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from ivrpowers.ari import AriError, Channel
from ivrpowers.calls.roles import StasisArgs

if TYPE_CHECKING:
    from ivrpowers.calls.session import CallContext, Session

BUSY = frozenset({17, 21})  # user busy, call rejected
NO_ANSWER = frozenset({18, 19})  # no user responding, no answer
# Beyond a ring time: how long Asterisk may take to tell us the originated leg is gone.
GRACE = 5.0


class LegWaiter:
    """Fed by the event router until the originated leg answers (enters the app) or is gone."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.channel: Channel | None = None  # answered: in the app
        self.cause: int | None = None  # gone: its hangup cause
        self.cause_txt: str | None = None
        self.error: AriError | None = None  # Asterisk refused the originate
        self.timed_out = False  # neither, within the ring time and its grace: hung up here

    def entered(self, channel: Channel) -> None:
        self.channel = channel
        self.done.set()

    def destroyed(self, cause: int | None, cause_txt: str | None) -> None:
        self.cause, self.cause_txt = cause, cause_txt
        self.done.set()


async def ring_leg(
    ctx: CallContext, dial: str, leg_id: str, args: StasisArgs, ring: float, *,
    caller_id: str | None = None, originator: str | None = None, variables: Mapping[str, str] | None = None,
    originated: Callable[[], Awaitable[None]] | None = None, until: Iterable[asyncio.Event] = (),
) -> LegWaiter:
    """Originate `dial` as channel `leg_id`, ringing `ring` seconds (Asterisk's own limit), and wait
    until it answers, is gone, the originate is refused, `ring` and a grace have passed, or one of
    `until` is set; a leg still ringing then is hung up. `originated` runs once Asterisk took the
    originate (a ringback to start, a withdrawal to check)."""
    waiter = LegWaiter()
    ctx.events.expect(leg_id, waiter)
    waits: list[asyncio.Future[bool]] = []
    try:
        try:
            await ctx.client.originate(dial, app_args=args.encode(), caller_id=caller_id, timeout=math.ceil(ring),
                                       channel_id=leg_id, originator=originator, variables=variables)
        except AriError as exc:
            waiter.error, waiter.cause_txt = exc, str(exc)
            return waiter
        if originated is not None:
            await originated()
        waits = [asyncio.ensure_future(event.wait()) for event in (waiter.done, *until)]
        done, _ = await asyncio.wait(waits, timeout=ring + GRACE, return_when=asyncio.FIRST_COMPLETED)
        waiter.timed_out = not done
    finally:
        for wait in waits:
            wait.cancel()
        ctx.events.unexpect(leg_id)
    if not waiter.done.is_set():
        with contextlib.suppress(AriError):  # gone meanwhile
            await ctx.client.hangup(leg_id)
    return waiter


def caller_id(name: str, number: str) -> str:
    """A leg's caller id as Asterisk takes it, `"name" <number>`: the name (a caller's, who chose
    it) cleared of what could end its quotes."""
    name = "".join(c for c in name if c not in '"<>\\')
    return f'"{name}" <{number}>' if name else number


def shown_caller(session: Session) -> str | None:
    """The caller's name and number as a leg of their call shows them (a transfer's target, an agent)."""
    caller = session.channel.caller
    if caller is None or not caller.number:
        return None
    return caller_id(caller.name, caller.number)
