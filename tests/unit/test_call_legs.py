"""`calls.legs.ring_leg`, the one way a leg is dialled (transfers, offers, callbacks, supervision):
what it returns and when it hangs the leg up, with Asterisk's side played by a stub that answers,
refuses, or never says anything. The real originates are proven in tests/integration (transfers,
queue offers, callbacks) and tests/e2e (supervision)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from ivrpowers.ari import AriError, Channel
from ivrpowers.calls import legs
from ivrpowers.calls.legs import LegWaiter, ring_leg
from ivrpowers.calls.roles import LEG, StasisArgs

ARGS = StasisArgs(LEG, {"interaction": "call-1", "purpose": "transfer"})


class Events:
    def __init__(self) -> None:
        self.expected: dict[str, LegWaiter] = {}

    def expect(self, channel_id: str, waiter: LegWaiter) -> None:
        self.expected[channel_id] = waiter

    def unexpect(self, channel_id: str) -> None:
        self.expected.pop(channel_id, None)


class Client:
    """Takes the originate, then does `then` with the leg's waiter (as Asterisk's events would)."""

    def __init__(self, events: Events, then: Callable[[LegWaiter], None] | None = None,
                 refuse: AriError | None = None) -> None:
        self.events, self.then, self.refuse = events, then, refuse
        self.originated: list[dict[str, Any]] = []
        self.hung_up: list[str] = []

    async def originate(self, endpoint: str, **kw: Any) -> Channel:
        if self.refuse is not None:
            raise self.refuse
        self.originated.append({"endpoint": endpoint, **kw})
        waiter = self.events.expected[kw["channel_id"]]
        if self.then is not None:
            asyncio.get_running_loop().call_soon(self.then, waiter)
        return Channel(id=kw["channel_id"])

    async def hangup(self, channel_id: str) -> None:
        self.hung_up.append(channel_id)


class Ctx:
    def __init__(self, **kw: Any) -> None:
        self.events = Events()
        self.client = Client(self.events, **kw)


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(legs, "GRACE", 0.05)


async def test_an_answered_leg_is_its_channel_and_rings_as_long_as_asked() -> None:
    ctx = Ctx(then=lambda waiter: waiter.entered(Channel(id="leg-1")))
    waiter = await ring_leg(ctx, "PJSIP/ana", "leg-1", ARGS, 19.5, caller_id="5551234")  # type: ignore[arg-type]
    assert waiter.channel is not None and waiter.channel.id == "leg-1" and not waiter.timed_out
    (sent,) = ctx.client.originated
    assert (sent["endpoint"], sent["timeout"], sent["caller_id"]) == ("PJSIP/ana", 20, "5551234")
    assert ctx.client.hung_up == [] and ctx.events.expected == {}


async def test_a_busy_leg_says_its_cause_and_is_not_hung_up_again() -> None:
    ctx = Ctx(then=lambda waiter: waiter.destroyed(17, "User busy"))
    waiter = await ring_leg(ctx, "PJSIP/ana", "leg-1", ARGS, 0.01)  # type: ignore[arg-type]
    assert (waiter.channel, waiter.cause, waiter.timed_out) == (None, 17, False)
    assert ctx.client.hung_up == []


async def test_a_leg_nobody_hears_of_is_hung_up_after_its_ring_and_the_grace() -> None:
    ctx = Ctx()
    waiter = await ring_leg(ctx, "PJSIP/ana", "leg-1", ARGS, 0.01)  # type: ignore[arg-type]
    assert waiter.timed_out and waiter.channel is None
    assert ctx.client.hung_up == ["leg-1"] and ctx.events.expected == {}


async def test_a_wait_ended_by_another_event_hangs_the_ringing_leg_up() -> None:
    stop = asyncio.Event()
    ctx = Ctx(then=lambda waiter: stop.set())
    started = asyncio.get_running_loop().time()
    waiter = await ring_leg(ctx, "PJSIP/sup", "leg-1", ARGS, 30, until=[stop])  # type: ignore[arg-type]
    assert asyncio.get_running_loop().time() - started < 5  # not the 30 s ring
    assert not waiter.timed_out and waiter.channel is None and ctx.client.hung_up == ["leg-1"]


async def test_a_refused_originate_is_the_waiters_error_and_nothing_is_hung_up() -> None:
    refused = AriError(400, "POST", "channels/leg-1", "Allocation failed")
    ctx = Ctx(refuse=refused)
    ran: list[str] = []

    async def originated() -> None:
        ran.append("x")

    waiter = await ring_leg(ctx, "PJSIP/nobody", "leg-1", ARGS, 5, originated=originated)  # type: ignore[arg-type]
    assert waiter.error is refused and "Allocation failed" in (waiter.cause_txt or "")
    assert ran == [] and ctx.client.hung_up == [] and ctx.events.expected == {}
