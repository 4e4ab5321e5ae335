"""A live Asterisk channel as the flow interpreter's `Call`.

The controller feeds this object the channel's ARI events (DTMF, playback finished, hangup); the
interpreter awaits its methods. Every wait re-checks one state snapshot, so an event that arrives
before its waiter (a PlaybackFinished racing the play request's reply) is never missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from ivrpowers.ari import AriClient, AriError, AriNotFound, Channel
from ivrpowers.flows.call import CallerHungUp

log = logging.getLogger("ivrpowers.calls")

T = TypeVar("T")

WITHHELD = {"anonymous", "unknown", "restricted", "private", "unavailable"}


class AriCall:
    def __init__(self, client: AriClient, channel: Channel, dialed: str, *, on_answer: Callable[[datetime], None]) -> None:
        self.client = client
        self.channel_id = channel.id
        number = channel.caller.number if channel.caller else ""
        # A withheld number must not be read back as "a-n-o-n-y-m-o-u-s": flows see it as empty.
        self._caller_number = "" if number.lower() in WITHHELD else number
        self._caller_name = channel.caller.name if channel.caller else ""
        self._dialed = dialed
        self._answered = channel.state == "Up"
        self._on_answer = on_answer
        self._digits: deque[str] = deque()
        self._finished_playbacks: set[str] = set()
        self._current_playback: str | None = None
        self._changed = asyncio.Event()
        self.gone = False
        self.hung_up_by_flow = False
        self.destroyed = asyncio.Event()
        self.cause: int | None = None
        self.cause_txt: str | None = None
        self.ended_at: datetime | None = None

    # -- Call protocol ---------------------------------------------------------------------------
    @property
    def caller_number(self) -> str:
        return self._caller_number

    @property
    def caller_name(self) -> str:
        return self._caller_name

    @property
    def dialed(self) -> str:
        return self._dialed

    async def answer(self) -> None:
        if self._answered:
            return
        await self._rest(self.client.answer(self.channel_id))
        self._answered = True
        self._on_answer(datetime.now(UTC))

    async def play(self, media: Sequence[str], *, barge_in: bool = True) -> str | None:
        self._check_alive()
        if barge_in and self._digits:
            return self._digits.popleft()  # typed ahead: the caller already chose, skip the prompt
        playback_id = str(uuid.uuid4())
        self._current_playback = playback_id
        try:
            await self._rest(self.client.play(self.channel_id, list(media), playback_id=playback_id))

            def outcome() -> tuple[str, str | None] | None:
                if barge_in and self._digits:
                    return ("digit", self._digits.popleft())
                if playback_id in self._finished_playbacks:
                    return ("done", None)
                return None

            kind, digit = await self._wait(outcome)  # type: ignore[misc]
            if kind == "digit":
                await self._stop_playback(playback_id)
            return digit
        finally:
            self._current_playback = None
            self._finished_playbacks.discard(playback_id)

    async def read_digit(self, timeout: float) -> str | None:
        return await self._wait(lambda: self._digits.popleft() if self._digits else None, timeout)

    async def hangup(self, reason: str = "normal") -> None:
        if self.gone:
            return
        self.hung_up_by_flow = True
        try:
            await self.client.hangup(self.channel_id, reason=reason)
        except AriNotFound:
            pass
        self._mark_gone()

    async def progress(self) -> None:
        """Early media (183) without answering: announcements that must not be billed."""
        await self._rest(self.client.progress(self.channel_id))

    # -- events from the controller ------------------------------------------------------------
    def feed_dtmf(self, digit: str) -> None:
        self._digits.append(digit)
        self._changed.set()

    def feed_playback_finished(self, playback_id: str) -> None:
        self._finished_playbacks.add(playback_id)
        self._changed.set()

    def feed_hangup(self, cause: int | None = None, cause_txt: str | None = None) -> None:
        if cause is not None and self.cause is None:
            self.cause, self.cause_txt = cause, cause_txt
        self._mark_gone()

    def feed_destroyed(self, cause: int | None, cause_txt: str | None, at: datetime | None) -> None:
        if cause is not None:
            self.cause, self.cause_txt = cause, cause_txt
        self.ended_at = at or datetime.now(UTC)
        self._mark_gone()
        self.destroyed.set()

    async def resync(self) -> None:
        """After an events outage: learn what was missed (hangup, end of the current prompt)."""
        try:
            await self.client.get_channel(self.channel_id)
        except AriNotFound:
            self.feed_destroyed(None, None, None)
            return
        if (playback := self._current_playback) is not None:
            try:
                await self.client.get_playback(playback)
            except AriNotFound:
                self.feed_playback_finished(playback)

    # -- internals -----------------------------------------------------------------------------
    def _mark_gone(self) -> None:
        self.gone = True
        self._changed.set()

    def _check_alive(self) -> None:
        if self.gone:
            raise CallerHungUp()

    async def _rest(self, awaitable):  # type: ignore[no-untyped-def]
        self._check_alive()
        try:
            return await awaitable
        except AriNotFound as exc:
            # The channel vanished between our last event and this request.
            self._mark_gone()
            raise CallerHungUp() from exc
        except AriError:
            if self.gone:
                raise CallerHungUp() from None
            raise

    async def _stop_playback(self, playback_id: str) -> None:
        try:
            await self.client.stop_playback(playback_id)
        except AriError:
            pass  # already finished: nothing to stop

    async def _wait(self, ready: Callable[[], T | None], timeout: float | None = None) -> T | None:
        """Wait until `ready()` returns something; None on timeout; CallerHungUp once gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._check_alive()
            if (value := ready()) is not None:
                return value
            self._changed.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
