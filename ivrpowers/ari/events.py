"""Typed ARI events and `parse_event`, which turns a websocket message into one of them.

Asterisk adds event types in minor releases and we only type the ones the controller uses, so an
unknown type must never be an error: it becomes a plain `Event` that keeps every raw field
(`event.model_extra`, or plain attribute access).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError

from .models import AriModel, Bridge, Channel, Endpoint, LiveRecording, Playback

log = logging.getLogger("ivrpowers.ari")


class Event(AriModel):
    """Any message from the events websocket.

    `application` and `timestamp` are optional here although every Stasis event carries them:
    a few messages (e.g. `MissingParams`) are not events proper, and they must still parse.
    """

    type: str
    application: str = ""
    timestamp: datetime | None = None
    asterisk_id: str | None = None


class StasisStart(Event):
    """A channel entered our app; `args` are the comma-separated Stasis() arguments."""

    channel: Channel
    args: list[str] = Field(default_factory=list)
    replace_channel: Channel | None = None


class StasisEnd(Event):
    channel: Channel


class ChannelDtmfReceived(Event):
    channel: Channel
    digit: str
    duration_ms: int = 0


class ChannelHangupRequest(Event):
    channel: Channel
    cause: int | None = None
    tech_cause: int | None = None
    soft: bool | None = None


class ChannelDestroyed(Event):
    channel: Channel
    cause: int = 0
    cause_txt: str = ""
    tech_cause: int | None = None


class ChannelStateChange(Event):
    channel: Channel


class ChannelVarset(Event):
    """`channel` is None for a global variable."""

    variable: str
    value: str = ""
    channel: Channel | None = None


class PlaybackStarted(Event):
    playback: Playback


class PlaybackContinuing(Event):
    """One media URI of a multi-media playback ended and the next one starts."""

    playback: Playback


class PlaybackFinished(Event):
    playback: Playback


class RecordingStarted(Event):
    recording: LiveRecording


class RecordingFinished(Event):
    recording: LiveRecording


class RecordingFailed(Event):
    recording: LiveRecording


class ChannelEnteredBridge(Event):
    bridge: Bridge
    channel: Channel | None = None


class ChannelLeftBridge(Event):
    bridge: Bridge
    channel: Channel


class EndpointStateChange(Event):
    endpoint: Endpoint


class Peer(AriModel):
    peer_status: str = ""  # PJSIP: Reachable, Unreachable
    cause: str | None = None
    address: str | None = None
    port: str | None = None
    time: str | None = None


class PeerStatusChange(Event):
    """An endpoint went online (`peer.peer_status` Reachable) or offline; `endpoint.state` is the new state.

    What an app subscribed to every endpoint (`endpoint:`) receives when an endpoint's state changes.
    """

    endpoint: Endpoint
    peer: Peer = Field(default_factory=Peer)


class ContactInfo(AriModel):
    uri: str = ""
    contact_status: str = ""  # Unreachable, Reachable, Unknown, NonQualified, Removed
    aor: str = ""
    roundtrip_usec: str | None = None


class ContactStatusChange(Event):
    """One contact (a phone's registration) was added, qualified or removed."""

    endpoint: Endpoint
    contact_info: ContactInfo


class ApplicationReplaced(Event):
    """Another websocket registered our app name: this connection will receive nothing more."""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        StasisStart,
        StasisEnd,
        ChannelDtmfReceived,
        ChannelHangupRequest,
        ChannelDestroyed,
        ChannelStateChange,
        ChannelVarset,
        PlaybackStarted,
        PlaybackContinuing,
        PlaybackFinished,
        RecordingStarted,
        RecordingFinished,
        RecordingFailed,
        ChannelEnteredBridge,
        ChannelLeftBridge,
        EndpointStateChange,
        PeerStatusChange,
        ContactStatusChange,
        ApplicationReplaced,
    )
}


def parse_event(data: Mapping[str, Any]) -> Event:
    """Parse one decoded websocket message. Never raises.

    Known types give their typed model. Unknown types give a generic `Event` with the raw fields.
    A known type whose payload does not validate (a future Asterisk changing a field's shape) is
    logged and also degrades to a generic `Event`: losing typing for one event is better than
    killing the reader and losing every event after it.
    """
    raw = dict(data)
    cls = EVENT_TYPES.get(raw.get("type"))  # type: ignore[arg-type]
    if cls is not None:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            log.warning("ARI event %s does not match its model, kept untyped: %s", raw.get("type"), exc)
    try:
        return Event.model_validate(raw)
    except ValidationError:
        # Not even the envelope is valid (no string `type`, unparsable timestamp...): keep the raw
        # fields without validation so handlers can still look at them.
        raw["type"] = str(raw.get("type", ""))
        raw.pop("timestamp", None)
        return Event.model_construct(**raw)


def event_channel_id(event: Event) -> str | None:
    """The id of the channel an event is about, if any.

    Playback and recording events carry no channel, only `target_uri` ("channel:<id>" or
    "bridge:<id>"); those are mapped back to the channel so per-call handlers see their prompts
    finish. Untyped events are inspected too (their `channel` is then a plain dict).
    """
    channel = getattr(event, "channel", None)
    if isinstance(channel, Channel):
        return channel.id
    if isinstance(channel, Mapping):
        cid = channel.get("id")
        if isinstance(cid, str):
            return cid
    for attr in ("playback", "recording"):
        target = getattr(event, attr, None)
        if isinstance(target, Mapping):
            uri = target.get("target_uri")
        else:
            uri = getattr(target, "target_uri", None)
        if isinstance(uri, str) and uri.startswith("channel:"):
            return uri[len("channel:") :]
    return None
