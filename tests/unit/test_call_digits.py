"""The same digit scenarios against the simulated call and the real one: same results.

The real call is `AriCall` on the fake ARI of test_ari_call.py. Its caller acts the way Asterisk
would report it: digits as DTMF events, the end of a prompt as PlaybackFinished for the id the
play request named, a stop request answered by PlaybackFinished, a hangup as a hangup event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

import pytest

from ivrpowers.ari import CallerID, Channel
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.flows.call import CallerHungUp
from ivrpowers.flows.testing import CallerAction, HangUp, Interrupt, Listen, Press, ScriptedCall, Silence

from .test_ari_call import FakeAri

WAIT = 0.05  # read_digit timeout: how long the real call waits through a Silence


@dataclass(frozen=True)
class Play:
    media: str
    barge_in: bool


@dataclass(frozen=True)
class Read:
    pass


Op = Play | Read
GONE = "hung up"


@dataclass(frozen=True)
class Scenario:
    name: str
    ops: list[Op]
    script: list[CallerAction]
    results: list[str | None]  # each op's return value, or GONE
    media: list[tuple[Any, ...]]  # ("start", [uri]) and ("stop",) in order


SCENARIOS = [
    Scenario("prompt played to the end", [Play("a", True)], [Listen()], [None], [("start", ["a"])]),
    Scenario(
        "a digit barges in: it stops the prompt and is returned",
        [Play("a", True)], [Interrupt("5")], ["5"], [("start", ["a"]), ("stop",)],
    ),
    Scenario(
        "without barge-in a digit waits for the next read",
        [Play("a", False), Read()], [Interrupt("7"), Listen()], [None, "7"], [("start", ["a"])],
    ),
    Scenario(
        "a digit buffered during a prompt without barge-in skips the next barge-in prompt",
        [Play("a", False), Play("b", True), Read()],
        [Interrupt("7"), Listen(), Silence()],
        [None, "7", None],
        [("start", ["a"])],
    ),
    Scenario(
        "digits pressed during a prompt without barge-in are read in order",
        [Play("a", False), Read(), Read()], [Interrupt("1"), Interrupt("2"), Listen()], [None, "1", "2"],
        [("start", ["a"])],
    ),
    Scenario(
        "a digit after a barge-in waits for the next read",
        [Play("a", True), Read()], [Interrupt("1"), Press("2")], ["1", "2"], [("start", ["a"]), ("stop",)],
    ),
    Scenario(
        "a digit pressed after the prompt answers the read",
        [Play("a", True), Read()], [Press("3")], [None, "3"], [("start", ["a"])],
    ),
    Scenario("a read times out", [Read()], [Silence()], [None], []),
    Scenario("hangup during a prompt", [Play("a", True), Read()], [HangUp()], [GONE, GONE], [("start", ["a"])]),
    Scenario("hangup during a read", [Read()], [HangUp()], [GONE], []),
]


async def run_ops(call: Any, ops: list[Op]) -> list[str | None]:
    results: list[str | None] = []
    for op in ops:
        try:
            if isinstance(op, Play):
                results.append(await asyncio.wait_for(call.play([op.media], barge_in=op.barge_in), 5))
            else:
                results.append(await asyncio.wait_for(call.read_digit(WAIT), 5))
        except CallerHungUp:
            results.append(GONE)
    return results


async def on_scripted_call(scenario: Scenario) -> tuple[list[str | None], list[tuple[Any, ...]]]:
    call = ScriptedCall(scenario.script)
    return await run_ops(call, scenario.ops), call.media_requests


class CallerOnAri(AriCall):
    """An AriCall whose caller acts each time it waits, through the events Asterisk would send."""

    def __init__(self, ari: FakeAri, script: list[CallerAction]) -> None:
        channel = Channel(id="chan-1", name="PJSIP/trunk-1", state="Up", caller=CallerID(name="", number=""))
        super().__init__(ari, channel, "100", on_answer=lambda at: None)  # type: ignore[arg-type]
        self.ari, self.script = ari, deque(script)
        self.playing: str | None = None  # from the play requests and PlaybackFinished seen on the wire
        ari.on_play = self._started
        ari.on_stop = self._stopped

    def _started(self, playback_id: str) -> None:
        self.playing = playback_id

    def _stopped(self, playback_id: str) -> None:
        # Asterisk confirms a stop with PlaybackFinished, a moment later.
        asyncio.get_running_loop().call_soon(self._finish, playback_id)

    def _finish(self, playback_id: str) -> None:
        if self.playing == playback_id:
            self.playing = None
        self.feed_playback_finished(playback_id)

    async def wait_for_caller(self, changed: asyncio.Event, timeout: float | None) -> bool:
        action = self.script[0] if self.script else None
        if self.playing is not None:
            if isinstance(action, HangUp):
                self.script.popleft()
                self.feed_hangup(16, "Normal Clearing")
            elif isinstance(action, Interrupt):
                self.script.popleft()
                self.feed_dtmf(action.digit)
            else:
                if isinstance(action, Listen):
                    self.script.popleft()
                self._finish(self.playing)
        elif action is not None:
            self.script.popleft()
            if isinstance(action, HangUp):
                self.feed_hangup(16, "Normal Clearing")
            elif isinstance(action, (Press, Interrupt)):
                self.feed_dtmf(action.digit)
            # Silence, Listen: nothing happens and the wait times out
        return await super().wait_for_caller(changed, timeout)


async def on_ari_call(scenario: Scenario) -> tuple[list[str | None], list[tuple[Any, ...]]]:
    ari = FakeAri()
    call = CallerOnAri(ari, scenario.script)
    results = await run_ops(call, scenario.ops)
    media = [("start", r[2]) if r[0] == "play" else ("stop",) for r in ari.requests if r[0] in ("play", "stop")]
    return results, media


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_the_simulated_and_the_real_call_agree(scenario: Scenario) -> None:
    simulated = await on_scripted_call(scenario)
    real = await on_ari_call(scenario)
    assert simulated == (scenario.results, scenario.media)
    assert real == simulated
