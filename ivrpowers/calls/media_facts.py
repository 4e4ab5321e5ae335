"""What each channel of a call negotiated and what flowed on it: the CDR timeline's `media` event.

Asterisk's figures come from its RTP statistics of each stream (`CHANNEL(rtcp,all,audio|video)`:
packets each way, losses, round trip), the codecs from `CHANNEL(audionativeformat)` and
`CHANNEL(videonativeformat)`. A channel can only be asked while it exists, and one whose far end hung
up is gone about a millisecond after its ChannelHangupRequest (measured: every read after it was a
404). So browser channels are read while they live: right before this controller hangs one up (the
figures of the whole call), when one of its prompts ends (all the IVR's video is sent by then), half
a second after it joins, then every SAMPLE_EVERY seconds, by one loop for the whole controller; at the
channel's end its last reading is written, saying when it was taken.

Only browser channels are asked (callers from /call, agents' browsers): trunk and phone channels are
audio only here and cost no request at all; their event says they were not read.

The same readings tell when a browser is gone without a word (it crashed, its machine slept, its
network went): a browser sends audio all through a call, packets of silence too, so a channel whose
received audio stopped for SILENT_AFTER seconds is hung up. Asterisk's `rtp_timeout` cannot be used
for this: it also times out the streams a browser only receives on (an SFU bridge's), and cut every
video call with an agent at its limit.

AMI's RTCPSent/RTCPReceived events were not used: Asterisk 22.10 reads the SSRC of a received SR from
the wrong word (the NTP seconds), so a browser's reports cannot be told apart by stream, and Asterisk
sends its own reports every 5 s and none at hangup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ivrpowers.ari import AriClient, AriError, AriNotFound, Channel, PlaybackFinished, event_channel_id
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.calls.roles import parse_stasis_args, stasis_args_of
from ivrpowers.calls.video import native_video_codec
from ivrpowers.endpoints.fields import WEBRTC
from ivrpowers.flows.call import CallerHungUp

log = logging.getLogger("ivrpowers.calls")

# How often the loop reads each browser channel: the most a far end's hangup can leave unread
# (Asterisk's own RTCP reports go every 5 s too). A channel's first reading comes sooner, once its
# media is up (ICE and DTLS take some 100 ms), so that a leg hung up within a second has one.
SAMPLE_EVERY = 5.0
FIRST_READING = 0.5
# A reading that takes longer is given up: a hangup waits for the one before it.
READ_TIMEOUT = 2.0
# Readings at once in the loop's pass.
_PARALLEL = 8
# No audio from a browser for this long (after it had sent some): it is gone. Readings come every
# SAMPLE_EVERY seconds, so it is found between this and that much later.
SILENT_AFTER = 15.0

AUDIO_FORMAT = "CHANNEL(audionativeformat)"
VIDEO_FORMAT = "CHANNEL(videonativeformat)"
RTCP = {"audio": "CHANNEL(rtcp,all,audio)", "video": "CHANNEL(rtcp,all,video)"}

# The dialplan context browser endpoints enter (and their originated legs carry): how a leg is known
# to be a browser without asking Asterisk.
BROWSER_CONTEXT = next(o.value for o in WEBRTC.options if o.name == "context")
NOT_READ = "not read: trunk and phone channels are audio only and are not asked (so they cost nothing)"
NO_READING = "no reading: the channel ended before its media could be read"


# -- pure parsing ----------------------------------------------------------------------------------

def format_name(value: str) -> str | None:
    """`(opus)` -> `opus`; None for `(nothing)` or empty (with several, the first: the one sent)."""
    return native_video_codec(value)


def _wrapped(value: int) -> int:
    # Asterisk prints these counters unsigned: a count gone negative (duplicates) reads as ~4e9.
    return 0 if value >= 2**31 else value


def parse_quality(value: str) -> dict[str, Any] | None:
    """One stream's figures from `CHANNEL(rtcp,all,audio|video)`
    (`ssrc=..;themssrc=..;lp=..;rxjitter=..;rxcount=..;txjitter=..;txcount=..;rlp=..;rtt=..;...`); None
    if it has no packet counts.

    rx is what Asterisk received from the channel's far end, tx what it sent there. `rx_lost` is
    Asterisk's own count (as of its last RTCP report), `tx_lost` and `rtt` what the far end reported.
    No jitter: for video Asterisk converts RTP timestamps at 1 kHz (its video formats' nominal rate)
    instead of 90 kHz, 90 times off; for audio its figure is its latest estimate, not the call's (seen
    at 1.58 s on a sound call after an SFU bridge's re-INVITEs).
    """
    fields: dict[str, float] = {}
    for pair in value.split(";"):
        key, sep, number = pair.strip().partition("=")
        if sep:
            with contextlib.suppress(ValueError):
                fields[key] = float(number)
    if "rxcount" not in fields or "txcount" not in fields:
        return None
    tx_packets, tx_lost = int(fields["txcount"]), _wrapped(int(fields.get("rlp", 0)))
    return {
        "rx_packets": int(fields["rxcount"]), "tx_packets": tx_packets,
        "rx_lost": _wrapped(int(fields.get("lp", 0))),
        # More lost than sent: the far end's reports were about another stream's packets (an agent's
        # leg in an SFU bridge gets the other side's picture on a stream these counts do not cover).
        "tx_lost": tx_lost if tx_lost <= tx_packets else None,
        # 0 until the far end has answered one of Asterisk's reports: unknown, not instantaneous.
        "rtt_ms": round(fields["rtt"] * 1000, 3) if fields.get("rtt") else None,
    }


@dataclass
class Reading:
    """One reading of a channel: what Asterisk answered, and what it could not."""

    at: datetime
    audio_codec: str | None = None
    video_codec: str | None = None
    audio: dict[str, Any] | None = None
    video: dict[str, Any] | None = None
    missing: list[str] = field(default_factory=list)


def reading_of(values: Mapping[str, str], at: datetime, *, video_codec: str | None,
               failed: Mapping[str, str] | None = None) -> Reading:
    """A reading from the values Asterisk gave (`failed`: the names it could not read, and why)."""
    failed = failed or {}
    reading = Reading(at, audio_codec=format_name(values.get(AUDIO_FORMAT, "")), video_codec=video_codec)
    for kind in ("audio", "video"):
        name = RTCP[kind]
        if kind == "video" and video_codec is None:
            continue  # an audio-only call: no video stream to ask about
        if name in failed:
            reading.missing.append(f"{kind}: {failed[name]}")
        elif name in values:
            figures = parse_quality(values[name])
            if figures is None:
                reading.missing.append(f"{kind}: Asterisk's statistics unreadable: {values[name][:80]!r}")
            setattr(reading, kind, figures)
    if AUDIO_FORMAT in failed:
        reading.missing.append(f"audio codec: {failed[AUDIO_FORMAT]}")
    return reading


def media_event(channel_id: str, role: str, reading: Reading | None, *, final: bool,
                browser: bool = True, silent_s: float | None = None) -> dict[str, Any]:
    """The `media` event's detail for a channel that ended, from its last reading (None: none)."""
    detail: dict[str, Any] = {"channel": channel_id, "role": role, "audio_codec": None, "video_codec": None,
                              "audio": None, "video": None}
    if not browser:
        return {**detail, "missing": [NOT_READ]}
    if reading is None:
        return {**detail, "missing": [NO_READING]}
    detail.update(audio_codec=reading.audio_codec, video_codec=reading.video_codec, audio=reading.audio,
                  video=reading.video, as_of=reading.at.isoformat(), final=final)
    if reading.missing:
        detail["missing"] = list(reading.missing)
    if silent_s is not None:
        detail["silent_s"] = round(silent_s, 1)  # hung up: no audio from the browser for that long
    return detail


def leg_role(channel: Channel) -> str:
    """What a leg is for, from its Stasis arguments: `agent` (a queue's offer), `transfer`, or `leg`."""
    params = parse_stasis_args(stasis_args_of(channel)).params
    return "agent" if params.get("agent") else params.get("purpose") or "leg"


def is_browser(channel: Channel) -> bool:
    return channel.dialplan.context == BROWSER_CONTEXT


# -- reading live channels -------------------------------------------------------------------------

@dataclass
class _Watched:
    call: AriCall
    role: str
    browser: bool
    reading: Reading | None = None
    final: bool = False  # read right before this controller hung it up: nothing more to read
    gone: bool = False  # Asterisk said it no longer exists
    due: float = 0.0  # when the loop reads it next (the event loop's clock)
    heard: int = 0  # audio packets received from it, as last read
    heard_at: float | None = None  # when that count last grew (None: it never sent any)
    silent_s: float | None = None  # how long it had been silent when it was hung up for it
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class MediaFacts:
    """Reads the browser channels of this controller's calls while they live (`watch`), and gives each
    one's `media` event when it ends (`ended`)."""

    def __init__(self, client: AriClient, *, every: float = SAMPLE_EVERY, first: float = FIRST_READING,
                 timeout: float = READ_TIMEOUT, silent_after: float = SILENT_AFTER) -> None:
        self.client = client
        self.every, self.first, self.timeout, self.silent_after = every, first, timeout, silent_after
        self.watched: dict[str, _Watched] = {}
        self.readings = 0  # taken, for tests and health
        self.silenced = 0  # browser channels hung up because their audio stopped
        self._several = True  # GET /channels/{id}/variables (Asterisk 22.10, 20.20): one request a reading
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    def install(self) -> None:
        self.client.subscribe(PlaybackFinished, self._playback_finished)

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._loop] if self._loop else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None

    def watch(self, call: AriCall, role: str, *, browser: bool) -> None:
        """A channel of a call: read it from now on if it is a browser's (others are never asked)."""
        due = asyncio.get_running_loop().time() + self.first
        self.watched[call.channel_id] = _Watched(call, role, browser, due=due)
        if isinstance(call, MeasuredCall) and browser:
            call.media = self
        if browser and self._loop is None:
            self._loop = asyncio.create_task(self._every(), name="media-facts")

    def track(self, channel: Channel, role: str) -> MeasuredCall:
        """A channel that is neither a session's caller nor its leg (a callback's, a supervisor's):
        its call object, watched like theirs."""
        call = MeasuredCall(self.client, channel, "", on_answer=lambda at: None)
        self.watch(call, role, browser=is_browser(channel))
        return call

    async def finish(self, call: MeasuredCall) -> dict[str, Any]:
        """Hang `call` up if it still lives (read right before), and give its `media` event's detail."""
        with contextlib.suppress(AriError):
            await call.hangup()
        return self.ended(call.channel_id)

    def ended(self, channel_id: str, role: str = "leg") -> dict[str, Any]:
        """The channel ended: its `media` event's detail, from its last reading; it is forgotten."""
        watched = self.watched.pop(channel_id, None)
        if watched is None:
            return media_event(channel_id, role, None, final=False)
        return media_event(channel_id, watched.role, watched.reading, final=watched.final, browser=watched.browser,
                           silent_s=watched.silent_s)

    async def read(self, channel_id: str, *, last: bool = False) -> None:
        """Read the channel now (`last`: right before this controller hangs it up). Never raises: what
        could not be read is in the reading, or the previous reading stays."""
        watched = self.watched.get(channel_id)
        if watched is None or not watched.browser or watched.final or watched.gone:
            return
        try:
            await asyncio.wait_for(self._read(watched, last), self.timeout)
        except CallerHungUp:
            watched.gone = True  # it went meanwhile: the previous reading is the last one
        except TimeoutError:
            self._note(watched, f"no answer from Asterisk within {self.timeout:g} s")
        except AriError as exc:
            self._note(watched, str(exc))
        except Exception:  # a bug here must never stand in the way of a hangup
            log.exception("media of %s: reading failed", channel_id)
            self._note(watched, "controller error, see logs")

    # -- internals ---------------------------------------------------------------------------------
    async def _read(self, watched: _Watched, last: bool) -> None:
        async with watched.lock:
            if watched.final or watched.gone:
                return
            call = watched.call
            video = await call.video_codec()  # read once per call (the IVR's prompts need it too)
            names = [AUDIO_FORMAT, RTCP["audio"], *([RTCP["video"]] if video else [])]
            try:
                values, failed = await self._values(call.channel_id, names)
            except AriNotFound:
                watched.gone = True
                return
            watched.reading = reading_of(values, datetime.now(UTC), video_codec=video, failed=failed)
            watched.final = last
            now = asyncio.get_running_loop().time()
            watched.due = now + self.every
            self.readings += 1
            if not last:
                self._check_heard(watched, now)

    def _check_heard(self, watched: _Watched, now: float) -> None:
        audio = watched.reading.audio if watched.reading else None
        if audio and audio["rx_packets"] > watched.heard:
            watched.heard, watched.heard_at = audio["rx_packets"], now
        elif watched.heard_at is not None and now - watched.heard_at >= self.silent_after:
            watched.silent_s = now - watched.heard_at
            self.silenced += 1
            log.warning("%s %s: no audio from its browser for %.0f s: it is gone, hanging up",
                        watched.role, watched.call.channel_id, watched.silent_s)
            call = watched.call
            self._spawn(call.hang_up_silent() if isinstance(call, MeasuredCall) else call.hangup("failure"))

    async def _values(self, channel_id: str, names: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        """The values of `names` on the channel, and the names Asterisk could not read (with why).
        AriNotFound: the channel is gone."""
        path = f"/channels/{quote(channel_id, safe='')}"
        if self._several:
            try:
                data = await self.client.request("GET", f"{path}/variables", params={"variables": ",".join(names)})
                found = data.get("variables") if isinstance(data, Mapping) else None
                if isinstance(found, Mapping):
                    return {str(k): str(v) for k, v in found.items()}, {}
            except AriNotFound as exc:
                if "channel" in exc.message.lower():
                    raise
                self._several = False  # an Asterisk without it: one request per value from now on
            except AriError as exc:
                if exc.status is None:
                    raise
                # One value Asterisk could not read fails them all (500): ask each to know which.
        values: dict[str, str] = {}
        failed: dict[str, str] = {}
        for name in names:
            try:
                values[name] = await self.client.get_variable(channel_id, name)
            except AriNotFound as exc:
                if "channel" in exc.message.lower():
                    raise
                failed[name] = f"Asterisk has no {name}"
            except AriError as exc:
                if exc.status is None:
                    raise
                failed[name] = f"Asterisk could not read {name} ({exc.status} {exc.message})"
        return values, failed

    def _note(self, watched: _Watched, problem: str) -> None:
        log.info("media of %s not read: %s", watched.call.channel_id, problem)
        if watched.reading is None:
            watched.reading = Reading(datetime.now(UTC), missing=[f"not read: {problem}"])
        elif not any(m.startswith("later readings failed") for m in watched.reading.missing):
            watched.reading.missing.append(f"later readings failed: {problem}")

    def _playback_finished(self, event: PlaybackFinished) -> None:
        # A prompt has ended: all of its video is sent, so a reading now has the IVR's figures even
        # if the caller hangs up before the loop's next pass.
        watched = self.watched.get(event_channel_id(event) or "")
        if watched is not None and watched.browser:
            self._spawn(self.read(watched.call.channel_id))

    async def _every(self) -> None:
        limit = asyncio.Semaphore(_PARALLEL)
        clock = asyncio.get_running_loop().time

        async def one(watched: _Watched) -> None:
            async with limit:
                await self.read(watched.call.channel_id)
            watched.due = max(watched.due, clock() + self.every)  # a failed reading is not retried at once

        while True:
            await asyncio.sleep(min(self.first, self.every))
            now = clock()
            due = [w for w in self.watched.values()
                   if w.browser and w.due <= now and not (w.final or w.gone or w.call.gone)]
            if due:
                await asyncio.gather(*(one(w) for w in due))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class MeasuredCall(AriCall):
    """An `AriCall` whose media is read once more right before this controller hangs it up: after the
    hangup the channel is gone and nothing can be asked."""

    media: MediaFacts | None = None  # set by `MediaFacts.watch` for a browser channel
    silent = False  # hung up because its browser's audio stopped

    async def hangup(self, reason: str = "normal") -> None:
        if self.media is not None and not self.gone:
            await self.media.read(self.channel_id, last=True)
        await super().hangup(reason)

    async def hang_up_silent(self) -> None:
        """Its browser is gone (its audio stopped): hang it up, as the network's failure, not the flow's."""
        self.silent = True
        await super().hangup("failure")
