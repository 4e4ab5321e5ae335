"""Digit buffering and barge-in: the one algorithm behind every `Call`, real or simulated.

The rules a caller can rely on:
- digits pressed at any time are buffered, in order, until the flow reads them;
- `read_digit` takes buffered digits first, then waits for the next one;
- a barge-in prompt is skipped when a digit is already buffered (the caller typed ahead: that
  digit is the answer); while it plays, the first digit stops it and is returned;
- a prompt without barge-in plays to the end, and digits pressed meanwhile stay buffered for the
  next read (or the next barge-in prompt, which they skip).

`CallMedia` holds the buffer and runs these rules; a small `MediaDriver` does the media work: the
real call (`ivrpowers.calls.ari_call.AriCall`) over ARI, the simulated one
(`ivrpowers.flows.testing.ScriptedCall`) from its script. Events (digits, a playback's end, the
caller leaving) are fed to `CallMedia` by whoever hears them.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from .call import CallerHungUp

__all__ = ["CallMedia", "MediaDriver", "wait_for_change"]

T = TypeVar("T")


class MediaDriver(Protocol):
    """The media side of a call, as `CallMedia` drives it."""

    async def start_playback(self, playback_id: str, media: Sequence[str], language: str | None = None) -> None:
        """Queue `media` on the call as one playback named `playback_id` (in `language`, if given).

        Its end may be fed to `CallMedia.feed_playback_finished` before this returns.
        """

    async def stop_playback(self, playback_id: str) -> None:
        """Stop the playback; no error when it already ended."""

    async def wait_for_caller(self, changed: asyncio.Event, timeout: float | None) -> bool:
        """Block until something may have changed (`changed` is set): True; or `timeout` passed: False.

        A real call waits for its events (`wait_for_change`); a simulated one lets its caller act.
        """


async def wait_for_change(changed: asyncio.Event, timeout: float | None) -> bool:
    """`MediaDriver.wait_for_caller` for calls whose events arrive on their own."""
    try:
        await asyncio.wait_for(changed.wait(), timeout)
    except TimeoutError:
        return False
    return True


class CallMedia:
    """The digit buffer and the play/read rules of one call (see the module docstring)."""

    def __init__(self, driver: MediaDriver, *, new_playback_id: Callable[[], str] | None = None) -> None:
        self._driver = driver
        self._new_playback_id = new_playback_id or (lambda: os.urandom(16).hex())  # a uuid4's randomness, cheaper
        self.digits: deque[str] = deque()
        self.gone = False
        self._changed = asyncio.Event()
        self._playback: str | None = None  # the playback the flow waits on, named before it is requested
        self._playback_started = False
        self._playback_done = False

    @property
    def current_playback(self) -> str | None:
        """The playback the flow waits on, once Asterisk accepted it (what a resync may ask about)."""
        return self._playback if self._playback_started else None

    # -- events ------------------------------------------------------------------------------
    def feed_dtmf(self, digit: str) -> None:
        self.digits.append(digit)
        self._changed.set()

    def feed_playback_finished(self, playback_id: str) -> None:
        # Ends of playbacks nobody waits for (one stopped by a barge-in) are dropped, not kept.
        if playback_id == self._playback:
            self._playback_done = True
            self._changed.set()

    def feed_gone(self) -> None:
        self.gone = True
        self._changed.set()

    # -- the rules -----------------------------------------------------------------------------
    def check_alive(self) -> None:
        if self.gone:
            raise CallerHungUp()

    async def play(self, media: Sequence[str], *, barge_in: bool = True, language: str | None = None) -> str | None:
        """Play `media`; return the digit that barged in, or None when it played to the end."""
        self.check_alive()
        if barge_in and self.digits:
            return self.digits.popleft()
        playback_id = self._new_playback_id()
        self._playback, self._playback_started, self._playback_done = playback_id, False, False
        try:
            await self._driver.start_playback(playback_id, media, language)
            self._playback_started = True

            def outcome() -> tuple[str | None] | None:
                if barge_in and self.digits:
                    return (self.digits.popleft(),)
                return (None,) if self._playback_done else None

            result = await self._wait(outcome, None)
            assert result is not None  # no timeout: only a digit or the end returns
            (digit,) = result
            if digit is not None:
                await self._driver.stop_playback(playback_id)
            return digit
        finally:
            self._playback, self._playback_started = None, False

    async def read_digit(self, timeout: float) -> str | None:
        """The next buffered or incoming digit, or None after `timeout` seconds."""
        return await self._wait(lambda: self.digits.popleft() if self.digits else None, timeout)

    async def _wait(self, ready: Callable[[], T | None], timeout: float | None) -> T | None:
        # Every wait re-checks the state before blocking, so an event that came before its waiter
        # (a PlaybackFinished racing the play request's reply) is never missed.
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            self.check_alive()
            if (value := ready()) is not None:
                return value
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            self._changed.clear()
            if not await self._driver.wait_for_caller(self._changed, remaining):
                self.check_alive()
                return ready()
