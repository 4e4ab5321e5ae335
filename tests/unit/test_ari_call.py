"""AriCall: the Call protocol on an ARI channel, with the event races ARI really has."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from textwrap import dedent
from typing import Any

import pytest

from ivrpowers.ari import AriConnectionError, AriNotFound, CallerID, Channel
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.flows import FlowResult, load_flow, run_flow
from ivrpowers.flows.call import CallerHungUp
from ivrpowers.flows.testing import ListJournal

from .waiting import until


class FakeAri:
    """Records requests; `on_play`/`on_stop` let a test act while a request is in flight.

    Outages: `drop()` the connection, then `reconnect()`; `play_errors` are raised by the next play
    requests, in order, after the playback was created if `lost_reply` (the request reached
    Asterisk, only its answer was lost).
    """

    def __init__(self) -> None:
        self.requests: list[tuple[Any, ...]] = []
        self.on_play: Callable[[str], object] | None = None
        self.on_stop: Callable[[str], object] | None = None
        self.channel_exists = True
        self.live_playbacks: set[str] = set()
        self.answer_error: Exception | None = None
        self.early_reply: asyncio.Future[None] | None = None  # the reply to `answer_now`'s request
        self.play_errors: list[Exception] = []
        self.lost_reply = False
        self.is_connected = True
        self._up = asyncio.Event()
        self._up.set()
        self.awaited_reconnection = asyncio.Event()

    def drop(self) -> None:
        self.is_connected = False
        self._up.clear()

    def reconnect(self) -> None:
        self.is_connected = True
        self._up.set()

    async def wait_connected(self, timeout: float | None = None) -> None:
        self.awaited_reconnection.set()
        async with asyncio.timeout(timeout):
            await self._up.wait()

    async def answer(self, channel_id: str) -> None:
        self.requests.append(("answer", channel_id))
        if self.answer_error:
            raise self.answer_error

    def answer_now(self, channel_id: str) -> asyncio.Future[None]:
        """Like AriClient's: the request is sent before this returns; its reply comes later."""
        self.requests.append(("answer", channel_id))
        self.early_reply = asyncio.get_running_loop().create_future()
        return self.early_reply

    async def play(self, channel_id: str, media: list[str], *, playback_id: str, lang: str | None = None) -> None:
        self.requests.append(("play", channel_id, media, playback_id))
        if self.play_errors:
            error = self.play_errors.pop(0)
            if isinstance(error, AriConnectionError):
                self.drop()  # Asterisk went away: the events websocket with it
            if self.lost_reply:
                self.live_playbacks.add(playback_id)
            raise error
        self.live_playbacks.add(playback_id)
        if self.on_play:
            self.on_play(playback_id)

    async def stop_playback(self, playback_id: str) -> None:
        self.requests.append(("stop", playback_id))
        if playback_id not in self.live_playbacks:
            raise AriNotFound(404, "DELETE", f"/playbacks/{playback_id}", "Playback not found")
        self.live_playbacks.discard(playback_id)
        if self.on_stop:
            self.on_stop(playback_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.requests.append(("hangup", channel_id, reason))

    async def start_moh(self, channel_id: str, moh_class: str) -> None:
        self.requests.append(("moh", channel_id, moh_class))

    async def stop_moh(self, channel_id: str) -> None:
        self.requests.append(("stop_moh", channel_id))

    async def get_channel(self, channel_id: str) -> None:
        if not self.channel_exists:
            raise AriNotFound(404, "GET", f"/channels/{channel_id}", "Channel not found")

    async def get_playback(self, playback_id: str) -> None:
        if playback_id not in self.live_playbacks:
            raise AriNotFound(404, "GET", f"/playbacks/{playback_id}", "Playback not found")


def make_call(
    number: str = "5551234", state: str = "Ring", outage_wait: float = 30.0
) -> tuple[AriCall, FakeAri, list[datetime]]:
    ari = FakeAri()
    answered: list[datetime] = []
    channel = Channel(id="chan-1", name="PJSIP/trunk-1", state=state, caller=CallerID(name="Ann", number=number))
    call = AriCall(ari, channel, "100", on_answer=answered.append, outage_wait=outage_wait)  # type: ignore[arg-type]
    return call, ari, answered


def played(ari: FakeAri) -> list[Any]:
    return [r for r in ari.requests if r[0] == "play"]


async def test_playback_finished_before_the_play_reply_is_not_missed() -> None:
    call, ari, _ = make_call()
    ari.on_play = call.feed_playback_finished  # the event races ahead of the REST reply
    assert await asyncio.wait_for(call.play(["sound:beep"]), 1) is None


async def test_a_digit_barges_in_stops_the_playback_and_is_returned() -> None:
    call, ari, _ = make_call()
    ari.on_play = lambda pid: asyncio.get_running_loop().call_later(0.01, call.feed_dtmf, "5")
    assert await asyncio.wait_for(call.play(["sound:hello-world"]), 1) == "5"
    playback_id = played(ari)[0][3]
    assert ("stop", playback_id) in ari.requests


async def test_a_digit_as_the_prompt_ends_is_no_hangup() -> None:
    call, ari, _ = make_call()

    def ended_then_pressed(pid: str) -> None:
        ari.live_playbacks.discard(pid)  # so stopping it gets a 404 about the playback
        call.feed_playback_finished(pid)
        call.feed_dtmf("4")

    ari.on_play = ended_then_pressed
    assert await call.play(["sound:hello-world"]) == "4"
    assert ("stop", played(ari)[0][3]) in ari.requests
    assert not call.gone
    assert await call.read_digit(0) is None


async def test_a_digit_typed_ahead_skips_the_prompt() -> None:
    call, ari, _ = make_call()
    call.feed_dtmf("1")
    assert await call.play(["sound:hello-world"]) == "1"
    assert played(ari) == []


async def test_without_barge_in_digits_wait_for_the_next_read() -> None:
    call, ari, _ = make_call()

    def press_then_finish(pid: str) -> None:
        call.feed_dtmf("7")
        call.feed_playback_finished(pid)

    ari.on_play = press_then_finish
    assert await call.play(["sound:invalid"], barge_in=False) is None
    assert not [r for r in ari.requests if r[0] == "stop"]
    assert await call.read_digit(0.5) == "7"


async def test_read_digit_times_out_with_none() -> None:
    call, _, _ = make_call()
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await call.read_digit(0.05) is None
    assert loop.time() - start >= 0.05


async def test_hangup_during_a_prompt_raises_caller_hung_up() -> None:
    call, ari, _ = make_call()
    ari.on_play = lambda pid: asyncio.get_running_loop().call_later(0.01, call.feed_hangup, 16, "Normal Clearing")
    with pytest.raises(CallerHungUp):
        await asyncio.wait_for(call.play(["sound:demo-congrats"]), 1)
    assert (call.cause, call.cause_txt) == (16, "Normal Clearing")
    with pytest.raises(CallerHungUp):
        await call.read_digit(1)


async def test_resync_after_an_outage_learns_the_prompt_ended() -> None:
    call, ari, _ = make_call()
    playing = asyncio.create_task(call.play(["sound:hello-world"]))
    await until(lambda: call._media.current_playback is not None)
    ari.live_playbacks.clear()  # it finished while the events connection was down
    await call.resync()
    assert await asyncio.wait_for(playing, 1) is None


async def test_resync_after_an_outage_learns_the_caller_left() -> None:
    call, ari, _ = make_call()
    waiting = asyncio.create_task(call.read_digit(30))
    await asyncio.sleep(0)  # one turn of the loop: the task runs until it waits
    ari.channel_exists = False
    await call.resync()
    with pytest.raises(CallerHungUp):
        await asyncio.wait_for(waiting, 1)
    assert call.destroyed.is_set() and call.ended_at is not None


async def test_answer_once_and_report_when() -> None:
    call, ari, answered = make_call()
    await call.answer()
    await call.answer()
    assert [r[0] for r in ari.requests] == ["answer"]
    assert len(answered) == 1 and answered[0] <= datetime.now(UTC)


async def test_an_answer_sent_early_is_awaited_not_sent_again() -> None:
    call, ari, answered = make_call()
    call.answer_now()
    call.answer_now()
    assert [r[0] for r in ari.requests] == ["answer"]  # on its way before the flow asked
    flow = asyncio.ensure_future(call.answer())
    for _ in range(5):  # turns of the loop, not time: the flow runs until it waits on the reply
        await asyncio.sleep(0)
    assert not flow.done() and answered == []  # the flow waits for Asterisk's reply
    assert ari.early_reply is not None
    ari.early_reply.set_result(None)
    await flow
    assert [r[0] for r in ari.requests] == ["answer"] and len(answered) == 1


async def test_an_early_answer_lost_in_an_outage_is_sent_again_once_ari_is_back() -> None:
    call, ari, answered = make_call()
    call.answer_now()
    assert ari.early_reply is not None
    ari.early_reply.set_exception(AriConnectionError("POST", "/channels/chan-1/answer", "connection lost"))
    ari.drop()
    flow = asyncio.ensure_future(call.answer())
    await asyncio.wait_for(ari.awaited_reconnection.wait(), 5)
    ari.reconnect()
    await flow
    assert [r[0] for r in ari.requests] == ["answer", "answer"] and len(answered) == 1


async def test_an_early_answer_to_a_caller_already_gone_is_a_hangup() -> None:
    call, ari, _ = make_call()
    call.answer_now()
    assert ari.early_reply is not None
    ari.early_reply.set_exception(AriNotFound(404, "POST", "/channels/chan-1/answer", "Channel not found"))
    with pytest.raises(CallerHungUp):
        await call.answer()
    assert call.gone


async def test_a_channel_gone_before_answer_is_a_hangup_not_an_error() -> None:
    call, ari, _ = make_call()
    ari.answer_error = AriNotFound(404, "POST", "/channels/chan-1/answer", "Channel not found")
    with pytest.raises(CallerHungUp):
        await call.answer()
    assert call.gone


async def test_ari_unreachable_beyond_the_outage_wait_is_an_error_not_a_hangup() -> None:
    call, ari, _ = make_call(outage_wait=0)
    ari.answer_error = AriConnectionError("POST", "/channels/chan-1/answer", "connection refused")
    with pytest.raises(AriConnectionError):
        await call.answer()
    assert not call.gone


@pytest.mark.parametrize("number", ["anonymous", "Anonymous", "unknown"])
def test_withheld_numbers_read_as_empty(number: str) -> None:
    call, _, _ = make_call(number=number)
    assert call.caller_number == ""


# -- ARI outages ----------------------------------------------------------------------------------

PROMPT_THEN_MENU = load_flow(
    dedent(
        """
        name: outage
        start: hello
        nodes:
          hello: {type: play, media: sound:hello-world, barge_in: false, next: m}
          m: {type: menu, prompt: sound:choose, options: {"1": bye}, retries: 0}
          bye: {type: hangup}
        """
    )
)
DISCONNECTED = AriConnectionError("POST", "/channels/chan-1/play", "Server disconnected")


async def outage_mid_prompt(call: AriCall, ari: FakeAri, *, lost_reply: bool) -> asyncio.Task[FlowResult]:
    """Run the flow until its first play request has failed and the call waits for ARI."""
    ari.play_errors, ari.lost_reply = [DISCONNECTED], lost_reply
    task = asyncio.create_task(run_flow(PROMPT_THEN_MENU, call, ListJournal()))
    await asyncio.wait_for(ari.awaited_reconnection.wait(), 5)
    assert not task.done() and not ari.is_connected
    return task


def caller_presses_1_at_the_menu(call: AriCall, ari: FakeAri) -> None:
    """From now on prompts play through, and the caller answers the menu's prompt with 1."""

    def finished(pid: str) -> None:
        call.feed_playback_finished(pid)
        if played(ari)[-1][2] == ["sound:choose"]:
            call.feed_dtmf("1")

    ari.on_play = lambda pid: asyncio.get_running_loop().call_soon(finished, pid)


async def test_an_outage_mid_prompt_is_waited_out_and_the_flow_goes_on() -> None:
    call, ari, _ = make_call(state="Up")
    task = await outage_mid_prompt(call, ari, lost_reply=False)
    caller_presses_1_at_the_menu(call, ari)
    await call.resync()  # what the reconciler does on reconnect: the prompt never started, nothing to learn
    ari.reconnect()
    result = await asyncio.wait_for(task, 5)

    assert (result.outcome, result.last_node) == ("hangup_by_flow", "bye")
    hello = [p for p in played(ari) if p[2] == ["sound:hello-world"]]
    assert len(hello) == 2 and hello[0][3] == hello[1][3]  # sent again, under the same playback id
    assert call.hung_up_by_flow


async def test_a_play_that_reached_asterisk_before_the_outage_is_not_queued_twice() -> None:
    call, ari, _ = make_call(state="Up")
    task = await outage_mid_prompt(call, ari, lost_reply=True)
    caller_presses_1_at_the_menu(call, ari)
    await call.resync()
    ari.reconnect()
    call.feed_playback_finished(played(ari)[0][3])  # its end, as the events bring it now
    result = await asyncio.wait_for(task, 5)

    assert (result.outcome, result.last_node) == ("hangup_by_flow", "bye")
    # The call found its playback in Asterisk: not sent again.
    assert [p[2] for p in played(ari)] == [["sound:hello-world"], ["sound:choose"]]


async def test_an_outage_longer_than_the_wait_fails_the_flow() -> None:
    call, ari, _ = make_call(state="Up", outage_wait=0.05)
    ari.play_errors = [DISCONNECTED]
    result = await asyncio.wait_for(run_flow(PROMPT_THEN_MENU, call, ListJournal()), 5)
    assert (result.outcome, result.last_node, result.error) == ("error", "hello", f"AriConnectionError: {DISCONNECTED}")
    assert ari.awaited_reconnection.is_set()


async def test_a_caller_who_left_during_the_outage_is_a_hangup() -> None:
    call, ari, _ = make_call(state="Up")
    task = await outage_mid_prompt(call, ari, lost_reply=False)
    ari.channel_exists = False
    await call.resync()  # learns the channel is gone
    ari.reconnect()
    result = await asyncio.wait_for(task, 5)
    assert result.outcome == "caller_hangup"
    assert len(played(ari)) == 1


async def test_hold_plays_music_on_hold_or_a_sound_over_and_over_until_stopped() -> None:
    call, ari, _ = make_call()
    await call.hold("moh:default")
    await call.hold(None)
    await call.hold("sound:queue-periodic-announce")
    play = ari.requests[-1]
    assert play[0] == "play" and set(play[2]) == {"sound:queue-periodic-announce"} and len(play[2]) >= 100
    await call.hold(None)  # stops the announcement's playback, and any music
    assert ari.requests[-2:] == [("stop", play[3]), ("stop_moh", "chan-1")]
    ari.live_playbacks.clear()  # one that ended by itself (or with the channel): stopping it is no error
    await call.hold("sound:queue-periodic-announce")
    ari.live_playbacks.clear()
    await call.hold(None)
    assert not call.gone
    assert ari.requests[:2] == [("moh", "chan-1", "default"), ("stop_moh", "chan-1")]
    with pytest.raises(ValueError):
        await call.hold("tone:ring")
