"""A live Asterisk channel as the flow interpreter's `Call`.

The controller feeds this object the channel's ARI events (DTMF, playback finished, hangup); the
interpreter awaits its methods. Digit buffering and barge-in are `flows.digits.CallMedia`, the
same rules the simulator runs; this class is their media driver over ARI.

During an ARI outage a request fails without an HTTP status (`AriConnectionError`). The call then
waits for the client to reconnect (at most `outage_wait` seconds) and sends the request again,
which is safe for every request made here:
- answer, progress: a no-op on a channel already in that state;
- hangup, stop playback: 404 once done, taken as done;
- play: Asterisk accepts a second playback under the same id and queues it (res_stasis_playback
  has no duplicate check), so the retry first asks whether the playback exists and only sends
  the request again if it does not. Caveat: if the lost request had been played to its end
  during the outage, the caller hears the prompt again, which beats waiting in silence.
The resync requests (`resync`) are never retried: they run as part of the reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from ivrpowers.ari import AriClient, AriConnectionError, AriError, AriNotFound, Channel, LiveRecording
from ivrpowers.calls.causes import REASONS, cause_text
from ivrpowers.calls.video import VideoLibrary, as_sound, is_video, native_video_codec
from ivrpowers.flows.call import CallerHungUp
from ivrpowers.flows.digits import CallMedia, wait_for_change

log = logging.getLogger("ivrpowers.calls")

T = TypeVar("T")

WITHHELD = {"anonymous", "unknown", "restricted", "private", "unavailable"}

# How long a call's request waits for ARI to come back before the flow gives up on it.
OUTAGE_WAIT = 30.0
# A `sound:` hold announcement is played this many times in one playback (Asterisk has no loop).
HOLD_REPEAT = 200
# A browser's media (ICE, then DTLS) comes up some 50-100 ms after the answer: what is played before
# is lost, a video prompt's first keyframe with it (a second without a picture). The call waits for
# the browser's first RTP, polled this often, at most MEDIA_WAIT seconds.
MEDIA_WAIT, _MEDIA_POLL = 2.0, 0.02
# While the events websocket still looks up, REST retries back off from here (seconds).
_RETRY_MIN, _RETRY_MAX = 0.1, 2.0


class AriCall:
    def __init__(
        self,
        client: AriClient,
        channel: Channel,
        dialed: str,
        *,
        on_answer: Callable[[datetime], None],
        outage_wait: float = OUTAGE_WAIT,
        video: VideoLibrary | None = None,
        browser: bool | None = None,
    ) -> None:
        self.client = client
        self.channel_id = channel.id
        number = channel.caller.number if channel.caller else ""
        # A withheld number must not be read back as "a-n-o-n-y-m-o-u-s": flows see it as empty.
        self._caller_number = "" if number.lower() in WITHHELD else number
        self._caller_name = channel.caller.name if channel.caller else ""
        self._dialed = dialed
        self._answered = channel.state == "Up"
        self._answering: asyncio.Future[object] | None = None  # sent by `answer_now`, reply not seen yet
        self._on_answer = on_answer
        self.outage_wait = outage_wait
        self.video = video
        # A browser (WebRTC): media is up only once ICE and DTLS are, and it may have video. False: a
        # trunk or phone call, which never has video here; None: not known (an originated leg).
        self.browser = browser
        self._video_codec: tuple[str | None] | None = None  # read once, when first needed
        # Weakly: this call owns its media rules; a strong reference back would make each call a
        # reference cycle, freed only by a full garbage collection (which paused every call).
        self._media = CallMedia(weakref.proxy(self))
        self.hung_up_by_flow = False
        self._hold_playback: str | None = None  # the looping hold announcement (`sound:` hold media)
        self._holds = 0
        # Bridged with an agent: no hold until they part. A flow still finishing its queue prompt when
        # the agent answered would put the caller on hold inside the bridge, where a playback takes
        # the channel out of the bridge's media: each would hear and see nothing of the other.
        self.with_agent = False
        self.destroyed = asyncio.Event()
        self.cause: int | None = None
        self.cause_txt: str | None = None
        self.ended_at: datetime | None = None
        # Recordings under way, by name: their RecordingFinished or RecordingFailed event ends them.
        self.recordings: dict[str, asyncio.Future[tuple[LiveRecording, bool]]] = {}

    @property
    def gone(self) -> bool:
        """The channel hung up or is hanging up: every `Call` method raises CallerHungUp."""
        return self._media.gone

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

    def answer_now(self) -> None:
        """Put the answer request on the wire now, from the StasisStart handler: the call's flow
        starts by answering, and its `answer()` will wait for this request's reply rather than ask
        again (the caller hears the call answered a turn of the event loop sooner)."""
        if not self._answered and self._answering is None:
            self._answering = self.client.answer_now(self.channel_id)
            # Its failure is `answer()`'s to raise; a flow that never got there leaves it unread.
            self._answering.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def answer(self) -> None:
        if self._answered:
            return
        early, self._answering = self._answering, None

        def send() -> Awaitable[object]:
            nonlocal early
            if early is not None:  # sent by `answer_now`; a retry (ARI outage) asks again
                sent, early = early, None
                return sent
            return self.client.answer(self.channel_id)

        await self._request(send)
        self._answered = True
        self._on_answer(datetime.now(UTC))
        if self.browser:
            await self.media_flowing()

    async def media_flowing(self, kind: str = "audio", timeout: float = MEDIA_WAIT) -> bool:
        """Wait until Asterisk receives the caller's RTP of `kind` (audio, video): its media path is
        up. False if not within `timeout` (the call goes on: a browser without a microphone or a
        camera sends nothing)."""
        deadline = asyncio.get_running_loop().time() + timeout
        counter = f"CHANNEL(rtcp,rxcount,{kind})"
        while True:
            received = await self._request(lambda: self.client.get_variable(self.channel_id, counter))
            if received.strip().isdigit() and int(received) > 0:
                return True
            if asyncio.get_running_loop().time() >= deadline:
                log.info("call %s: no %s from the browser within %.1f s", self.channel_id, kind, timeout)
                return False
            await asyncio.sleep(_MEDIA_POLL)

    async def play(self, media: Sequence[str], *, barge_in: bool = True, language: str | None = None) -> str | None:
        return await self._media.play(media, barge_in=barge_in, language=language)

    async def read_digit(self, timeout: float) -> str | None:
        return await self._media.read_digit(timeout)

    async def hangup(self, reason: str = "normal") -> None:
        if self.gone:
            return
        self.hung_up_by_flow = True
        if self.cause is None and (cause := REASONS.get(reason)):
            self.cause, self.cause_txt = cause, cause_text(cause)
        try:
            await self._request(lambda: self.client.hangup(self.channel_id, reason=reason))
        except CallerHungUp:
            pass  # already gone: what we wanted
        self._media.feed_gone()

    async def hold(self, media: str | None) -> None:
        if media is not None and self.with_agent:
            return
        if media is None:
            if (looping := self._hold_playback) is not None:
                self._hold_playback = None
                # Not through _request: a 404 here is a playback already over, not a caller gone.
                with contextlib.suppress(AriError):
                    await self.client.stop_playback(looping)
            await self._request(lambda: self.client.stop_moh(self.channel_id))
            return
        scheme, _, name = media.partition(":")
        if scheme in ("sound", "video") and name:
            # An announcement on hold, over and over: one playback of it many times (Asterisk has
            # no loop), stopped by the next hold(None). Its end is nobody's prompt: not waited on.
            self._holds += 1
            playback_id = self._hold_playback = f"hold-{self.channel_id}-{self._holds}"
            files = await self._playable([media])
            await self._request(lambda: self.client.play(self.channel_id, files * HOLD_REPEAT,
                                                         playback_id=playback_id))
            return
        if scheme != "moh" or not name:
            raise ValueError(f"hold media must be moh:CLASS, sound:NAME or video:NAME, not {media!r}")
        await self._request(lambda: self.client.start_moh(self.channel_id, name))

    async def join_agent(self) -> None:
        """Before the caller is bridged with an agent: the hold stops, so does a prompt still playing
        (the queue's welcome, an announcement), and no hold starts until `left_agent`."""
        self.with_agent = True
        with contextlib.suppress(AriError):  # no music to stop is fine
            await self.hold(None)
        if (playback := self._media.current_playback) is not None:
            await self.stop_playback(playback)

    def left_agent(self) -> None:
        self.with_agent = False

    async def progress(self) -> None:
        """Early media (183) without answering: announcements that must not be billed."""
        await self._request(lambda: self.client.progress(self.channel_id))

    # -- media driver (flows.digits.MediaDriver) ------------------------------------------------
    async def start_playback(self, playback_id: str, media: Sequence[str], language: str | None = None) -> None:
        retried = False
        media = await self._playable(media)

        async def play() -> None:
            nonlocal retried
            if retried:
                try:
                    await self.client.get_playback(playback_id)
                    return  # the lost request did reach Asterisk: don't queue it twice
                except AriNotFound:
                    pass
            retried = True
            await self.client.play(self.channel_id, list(media), playback_id=playback_id, lang=language)

        await self._request(play)

    async def stop_playback(self, playback_id: str) -> None:
        async def stop() -> None:
            try:
                await self.client.stop_playback(playback_id)
            except AriNotFound:
                pass  # it had finished already: a 404 about the playback, not the channel

        try:
            await self._request(stop)
        except (AriError, CallerHungUp):
            pass  # ARI still away, or the caller left: nothing to stop

    async def wait_for_caller(self, changed: asyncio.Event, timeout: float | None) -> bool:
        return await wait_for_change(changed, timeout)

    # -- events from the controller ------------------------------------------------------------
    def feed_dtmf(self, digit: str) -> None:
        self._media.feed_dtmf(digit)

    def feed_playback_finished(self, playback_id: str) -> None:
        self._media.feed_playback_finished(playback_id)

    def feed_hangup(self, cause: int | None = None, cause_txt: str | None = None) -> None:
        if cause and self.cause is None:
            self.cause, self.cause_txt = cause, cause_txt or cause_text(cause)
        self._media.feed_gone()

    def feed_destroyed(self, cause: int | None, cause_txt: str | None, at: datetime | None) -> None:
        """The channel left the app for good (StasisEnd) or was found gone; its final cause if known."""
        if cause:
            self.cause, self.cause_txt = cause, cause_txt or cause_text(cause)
        if self.ended_at is None:
            self.ended_at = at or datetime.now(UTC)
        self._media.feed_gone()
        self.destroyed.set()

    def feed_recording(self, recording: LiveRecording, failed: bool) -> None:
        future = self.recordings.pop(recording.name, None)
        if future is not None and not future.done():
            future.set_result((recording, failed))

    def discard_digit(self, digit: str) -> None:
        """Forget a buffered digit that was not for the flow (a recording's terminator)."""
        with contextlib.suppress(ValueError):
            self._media.digits.remove(digit)

    async def resync(self) -> None:
        """After an events outage: learn what was missed (hangup, end of the current prompt)."""
        try:
            await self.client.get_channel(self.channel_id)
        except AriNotFound:
            self.feed_destroyed(None, None, None)
            return
        if (playback := self._media.current_playback) is not None:
            try:
                await self.client.get_playback(playback)
            except AriNotFound:
                self.feed_playback_finished(playback)

    async def request_about_call(self, send: Callable[[], Awaitable[T]]) -> T:
        """Send a request about this channel with the call's rules (404: gone; outage: wait, retry)."""
        return await self._request(send)

    async def video_codec(self) -> str | None:
        """The video codec the caller negotiated (`vp8`, `h264`), None for an audio-only call."""
        if self.browser is False:
            return None  # phones and the trunk are configured without video: nothing to ask
        if self._video_codec is None:
            try:
                value = await self._request(lambda: self.client.get_variable(self.channel_id,
                                                                             "CHANNEL(videonativeformat)"))
            except AriConnectionError:
                raise
            except AriError as exc:  # Asterisk could not read it (500): the call goes on without video
                log.info("call %s: video format not known (%s): taken as audio only", self.channel_id, exc)
                value = ""
            self._video_codec = (native_video_codec(value),)
        return self._video_codec[0]

    # -- internals -----------------------------------------------------------------------------
    async def _playable(self, media: Sequence[str]) -> list[str]:
        """`media` with each `video:NAME` made the file of this caller's video codec."""
        if self.video is None or not any(is_video(uri) for uri in media):
            return list(media)
        codec = await self.video_codec()
        return [played for uri in media if (played := as_sound(uri, self.video, codec)) is not None]

    async def _request(self, send: Callable[[], Awaitable[T]]) -> T:
        """Send a request about this channel; a 404 means the caller left; an outage is waited out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.outage_wait
        delay = _RETRY_MIN
        while True:
            self._media.check_alive()
            try:
                return await send()
            except AriNotFound as exc:
                # The channel vanished between our last event and this request: it is gone for good.
                self.feed_destroyed(None, None, None)
                raise CallerHungUp() from exc
            except AriConnectionError as exc:
                if self.gone:
                    raise CallerHungUp() from None
                remaining = deadline - loop.time()
                if remaining <= 0 or not await self._ari_back(remaining, delay):
                    raise
                log.info("call %s: %s; ARI is back, sending it again", self.channel_id, exc)
                delay = min(delay * 2, _RETRY_MAX)
            except AriError:
                if self.gone:
                    raise CallerHungUp() from None
                raise

    async def _ari_back(self, remaining: float, delay: float) -> bool:
        """Wait for the ARI client to reconnect (its resync done); False if not within `remaining`."""
        if self.client.is_connected:
            # REST failed but the websocket has not noticed (yet): back off and try again.
            await asyncio.sleep(min(delay, remaining))
            return True
        try:
            await self.client.wait_connected(remaining)
        except TimeoutError:
            return False
        return True
