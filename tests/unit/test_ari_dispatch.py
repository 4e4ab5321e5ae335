"""Dispatcher rules on their own: typing promise, class subscriptions, resync isolation."""

from __future__ import annotations

from typing import Any

from ivrpowers.ari import Channel, Event, StasisStart, parse_event
from ivrpowers.ari.dispatch import Dispatcher

CHANNEL: dict[str, Any] = {"id": "c1", "name": "PJSIP/x", "state": "Up"}


def ev(type_: str, **fields: Any) -> Event:
    return parse_event({"type": type_, "application": "ivr", "timestamp": "2025-03-01T10:00:00.000+0000",
                        **fields})


async def test_subscribe_by_class_and_event_means_all() -> None:
    d = Dispatcher()
    starts: list[StasisStart] = []
    everything: list[Event] = []

    def on_start(event: StasisStart) -> None:  # precise parameter type, accepted by the checker
        starts.append(event)

    d.subscribe(StasisStart, on_start)
    d.subscribe(Event, everything.append)
    await d.dispatch(ev("StasisStart", channel=CHANNEL))
    await d.dispatch(ev("StasisEnd", channel=CHANNEL))
    assert [e.channel.id for e in starts] == ["c1"]
    assert [e.type for e in everything] == ["StasisStart", "StasisEnd"]


async def test_malformed_known_type_reaches_only_wildcard_handlers() -> None:
    d = Dispatcher()
    typed: list[Event] = []
    raw: list[Event] = []
    d.subscribe("StasisStart", typed.append)
    d.subscribe("*", raw.append)
    await d.dispatch(ev("StasisStart", channel={"no_id": True}))
    assert typed == []
    assert len(raw) == 1 and type(raw[0]) is Event and raw[0].type == "StasisStart"


async def test_resync_handlers_get_their_own_list_and_failures_are_isolated() -> None:
    d = Dispatcher()
    seen: list[tuple[list[str], bool]] = []

    def greedy(channels: list[Channel], reconnected: bool) -> None:
        channels.clear()
        raise RuntimeError("bug")

    async def careful(channels: list[Channel], reconnected: bool) -> None:
        seen.append(([c.id for c in channels], reconnected))

    d.on_resync(greedy)
    sub = d.on_resync(careful)
    await d.resync([Channel.model_validate(CHANNEL)], True)
    assert seen == [(["c1"], True)]
    sub.cancel()
    sub.cancel()  # idempotent
    await d.resync([], False)
    assert len(seen) == 1


async def test_handlers_may_subscribe_during_dispatch_without_seeing_the_current_event() -> None:
    d = Dispatcher()
    late: list[str] = []

    def first(event: Event) -> None:
        d.subscribe("StasisStart", lambda e: late.append(e.type))

    d.subscribe("StasisStart", first)
    await d.dispatch(ev("StasisStart", channel=CHANNEL))
    assert late == []
    await d.dispatch(ev("StasisStart", channel=CHANNEL))
    assert late == ["StasisStart"]


def test_wants_says_whether_any_handler_would_see_a_type() -> None:
    from ivrpowers.ari.dispatch import Dispatcher

    dispatcher = Dispatcher()
    assert not dispatcher.wants("ChannelVarset")
    sub = dispatcher.subscribe("StasisStart", lambda ev: None)
    assert dispatcher.wants("StasisStart") and not dispatcher.wants("ChannelVarset") and not dispatcher.wants(None)
    sub.cancel()
    assert not dispatcher.wants("StasisStart")
    dispatcher.subscribe("*", lambda ev: None)
    assert dispatcher.wants("ChannelVarset")
