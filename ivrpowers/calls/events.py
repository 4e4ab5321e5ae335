"""The event router: each ARI event about a channel goes to whoever owns that channel.

Handlers run inside the ARI reader, so everything here is a dictionary lookup and a feed: no I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from ivrpowers.ari import (
    AriClient,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    LiveRecording,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
    event_channel_id,
)
from ivrpowers.calls.causes import hangup_request_cause


class ChannelOwner(Protocol):
    """What owns a channel's events: `ivrpowers.calls.ari_call.AriCall` for every role today."""

    def feed_dtmf(self, digit: str) -> None: ...
    def feed_playback_finished(self, playback_id: str) -> None: ...
    def feed_hangup(self, cause: int | None = None, cause_txt: str | None = None) -> None: ...
    def feed_destroyed(self, cause: int | None, cause_txt: str | None, at: datetime | None) -> None: ...
    def feed_recording(self, recording: LiveRecording, failed: bool) -> None: ...


class Expected(Protocol):
    """A channel this controller originated, not in the app yet (`calls.legs.LegWaiter`)."""

    def entered(self, channel: Channel) -> None: ...
    def destroyed(self, cause: int | None, cause_txt: str | None) -> None: ...


class EventRouter:
    def __init__(self, client: AriClient, on_stasis_start: Callable[[StasisStart], None]) -> None:
        self.client = client
        self.on_stasis_start = on_stasis_start
        self.owners: dict[str, ChannelOwner] = {}
        self.expected: dict[str, Expected] = {}  # originated channels: their answer, or their end
        self.recordings: dict[str, asyncio.Future[tuple[LiveRecording, bool]]] = {}  # bridges', by name

    def expect(self, channel_id: str, waiter: Expected) -> None:
        self.expected[channel_id] = waiter

    def unexpect(self, channel_id: str) -> None:
        self.expected.pop(channel_id, None)

    def attach(self, channel_id: str, owner: ChannelOwner) -> None:
        self.owners[channel_id] = owner

    def detach(self, channel_id: str, owner: ChannelOwner) -> None:
        if self.owners.get(channel_id) is owner:
            del self.owners[channel_id]

    def install(self) -> None:
        self.client.subscribe(StasisStart, self._stasis_start)
        self.client.subscribe(ChannelDtmfReceived, self._dtmf)
        self.client.subscribe(PlaybackFinished, self._playback_finished)
        self.client.subscribe(ChannelHangupRequest, self._hangup_request)
        self.client.subscribe(StasisEnd, self._stasis_end)
        self.client.subscribe(ChannelDestroyed, self._destroyed)
        self.client.subscribe(RecordingFinished, self._recording)
        self.client.subscribe(RecordingFailed, self._recording)

    def _stasis_start(self, event: StasisStart) -> None:
        if waiter := self.expected.pop(event.channel.id, None):
            waiter.entered(event.channel)
        elif event.channel.id not in self.owners:
            self.on_stasis_start(event)

    def expect_recording(self, name: str) -> asyncio.Future[tuple[LiveRecording, bool]]:
        """The end of recording `name` of a bridge (a channel's goes to its owner): (it, failed)."""
        future: asyncio.Future[tuple[LiveRecording, bool]] = asyncio.get_running_loop().create_future()
        self.recordings[name] = future
        return future

    def _recording(self, event: RecordingFinished | RecordingFailed) -> None:
        failed = isinstance(event, RecordingFailed)
        if (future := self.recordings.pop(event.recording.name, None)) is not None:
            if not future.done():
                future.set_result((event.recording, failed))
        elif owner := self.owners.get(event_channel_id(event) or ""):
            owner.feed_recording(event.recording, failed)

    def _destroyed(self, event: ChannelDestroyed) -> None:
        # Only an originated channel that never entered the app needs this: for the others,
        # StasisEnd has already said they are gone.
        if waiter := self.expected.pop(event.channel.id, None):
            waiter.destroyed(event.cause, event.cause_txt)

    def _dtmf(self, event: ChannelDtmfReceived) -> None:
        if owner := self.owners.get(event.channel.id):
            owner.feed_dtmf(event.digit)

    def _playback_finished(self, event: PlaybackFinished) -> None:
        if owner := self.owners.get(event_channel_id(event) or ""):
            owner.feed_playback_finished(event.playback.id)

    def _hangup_request(self, event: ChannelHangupRequest) -> None:
        if owner := self.owners.get(event.channel.id):
            owner.feed_hangup(hangup_request_cause(event.cause, event.soft))

    def _stasis_end(self, event: StasisEnd) -> None:
        # The app never sends a channel back to the dialplan: leaving Stasis is its end for us.
        if owner := self.owners.get(event.channel.id):
            owner.feed_destroyed(None, None, event.timestamp)
