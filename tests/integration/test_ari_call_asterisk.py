"""`AriCall` on a real Asterisk 22: the digit rules on real DTMF and playback events, a prompt
requested during a real ARI outage, and what Asterisk does with a playback id sent twice.

An Asterisk of its own, so that these tests may hold the product's app name (the shipped dialplan
sends every channel there) without taking it from a controller under test. Calls are Local channel
pairs: `;2` runs the dialplan into our app and is answered, `;1` is the call under test, and DTMF
sent out of `;2` reaches `;1` as the caller's digits.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest

from ivrpowers.ari import (
    AriClient,
    AriNotFound,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    PlaybackFinished,
    PlaybackStarted,
    StasisStart,
)
from ivrpowers.calls.ari_call import AriCall

from .conftest import AsteriskUnderTest, running_asterisk
from .tcp_proxy import TcpProxy

SHORT = "sound:hello-world"  # 1.4 s
LONG = "sound:demo-thanks"  # 5.5 s: time to press a digit in it


@pytest.fixture(scope="module")
def own_asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskUnderTest]:
    with running_asterisk(tmp_path_factory.mktemp("ast-ari-call"), 30000) as running:
        yield running


@dataclass
class Line:
    """The ARI client (through a proxy the test can cut) and what it heard."""

    client: AriClient
    proxy: TcpProxy
    entered: asyncio.Queue[Channel] = field(default_factory=asyncio.Queue)
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, condition: Callable[[], bool], timeout: float = 15) -> None:
        """Wait for `condition`, re-checked at each playback event and at least every 50 ms."""
        deadline = time.monotonic() + timeout
        while not condition():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, "condition not met in time"
            try:
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass

    async def call(self) -> tuple[AriCall, Channel]:
        """A new call in our app, answered, with its events fed to an AriCall. Returns the other half too."""
        app = self.client.app
        ours = await self.client.originate("Local/100@from-trunk", app=app, timeout=10)
        other = await asyncio.wait_for(self.entered.get(), 10)
        await self.client.answer(other.id)
        while (await asyncio.wait_for(self.entered.get(), 10)).id != ours.id:
            pass
        call = AriCall(self.client, ours, "100", on_answer=lambda at: None)
        sub = self.client.subscribe
        sub(ChannelDtmfReceived, lambda e: call.feed_dtmf(e.digit), channel_id=ours.id)
        sub(PlaybackFinished, lambda e: call.feed_playback_finished(e.playback.id), channel_id=ours.id)
        sub(ChannelHangupRequest, lambda e: call.feed_hangup(e.cause), channel_id=ours.id)
        sub(ChannelDestroyed, lambda e: call.feed_destroyed(e.cause, e.cause_txt, e.timestamp), channel_id=ours.id)
        self.client.on_resync(lambda channels, reconnected: asyncio.ensure_future(call.resync()))
        return call, other

    async def press(self, other: Channel, digit: str) -> None:
        await self.client.request("POST", f"/channels/{other.id}/dtmf", params={"dtmf": digit, "duration": 100})


@pytest.fixture
async def line(own_asterisk: AsteriskUnderTest) -> AsyncIterator[Line]:
    settings = own_asterisk.settings
    proxy = TcpProxy("127.0.0.1", settings.http_port).start()
    client = AriClient(f"http://127.0.0.1:{proxy.port}/ari", settings.ari_user, settings.ari_secret,
                       settings.ari_app, reconnect_min=0.05, reconnect_max=0.2)
    line = Line(client, proxy)

    def heard(bucket: list[str]) -> Callable[[PlaybackStarted | PlaybackFinished], None]:
        def add(event: PlaybackStarted | PlaybackFinished) -> None:
            bucket.append(event.playback.id)
            line.changed.set()
        return add

    client.subscribe(StasisStart, lambda e: line.entered.put_nowait(e.channel))
    client.subscribe(PlaybackStarted, heard(line.started))
    client.subscribe(PlaybackFinished, heard(line.finished))
    client.start()
    await client.wait_connected(10)
    yield line
    for channel in await client.list_channels():
        if channel.in_stasis_app(settings.ari_app):
            try:
                await client.hangup(channel.id)
            except AriNotFound:
                pass
    await client.close()
    proxy.stop()


async def test_digit_rules_on_real_dtmf(line: Line) -> None:
    call, other = await line.call()

    # Without barge-in, a digit pressed mid-prompt lets the prompt play to its end...
    prompt = asyncio.create_task(call.play([LONG], barge_in=False))
    await line.until(lambda: len(line.started) == 1)
    await line.press(other, "5")
    assert await asyncio.wait_for(prompt, 30) is None
    assert line.finished == line.started

    # ...and waits: the next barge-in prompt is skipped, the digit is the answer.
    assert await call.play([SHORT], barge_in=True) == "5"

    # With barge-in, a digit pressed mid-prompt stops it and is returned.
    prompt = asyncio.create_task(call.play([LONG], barge_in=True))
    await line.until(lambda: len(line.started) == 2)  # the skipped prompt never started
    await line.press(other, "7")
    assert await asyncio.wait_for(prompt, 30) == "7"
    await line.until(lambda: len(line.finished) == 2)  # stopped

    # A digit pressed while nothing plays is read.
    await line.press(other, "#")
    assert await call.read_digit(10) == "#"
    assert not call.gone


async def test_a_prompt_requested_during_an_ari_outage_plays_after_it(line: Line) -> None:
    call, _ = await line.call()
    line.proxy.cut(refuse_for=1.0)  # the websocket and HTTP connections die; new ones are refused
    await line.until(lambda: not line.client.is_connected)

    assert await asyncio.wait_for(call.play([SHORT], barge_in=False), 30) is None
    assert len(line.started) == len(line.finished) == 1  # played once, after the reconnection
    assert line.client.is_connected and not call.gone


async def test_a_second_play_with_the_same_playback_id_is_queued_not_refused(line: Line) -> None:
    """Why AriCall asks before re-sending a play: res_stasis_playback has no duplicate check."""
    call, _ = await line.call()
    client, playback_id = line.client, str(uuid.uuid4())
    first = await client.play(call.channel_id, "sound:beep", playback_id=playback_id)
    # The playback is known from its request on...
    assert (await client.get_playback(playback_id)).id == playback_id
    second = await client.play(call.channel_id, "sound:beep", playback_id=playback_id)
    assert first.id == second.id == playback_id  # the second is not refused...

    await line.until(lambda: len(line.finished) == 2)
    assert line.started == line.finished == [playback_id, playback_id]  # ...and it plays: twice
    with pytest.raises(AriNotFound):  # ...until it has played
        await client.get_playback(playback_id)
