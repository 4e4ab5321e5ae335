"""The event router: each ARI event about a channel goes to whoever owns that channel.

Handlers run inside the ARI reader, so everything here is a dictionary lookup and a feed: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from ivrpowers.ari import (
    AriClient,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    PlaybackFinished,
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


class EventRouter:
    def __init__(self, client: AriClient, on_stasis_start: Callable[[StasisStart], None]) -> None:
        self.client = client
        self.on_stasis_start = on_stasis_start
        self.owners: dict[str, ChannelOwner] = {}

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

    def _stasis_start(self, event: StasisStart) -> None:
        if event.channel.id not in self.owners:
            self.on_stasis_start(event)

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
