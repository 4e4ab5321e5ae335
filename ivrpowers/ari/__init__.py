"""A thin, typed asyncio client for the Asterisk REST Interface (ARI).

We own this client because the usual ones do not fit: ari-py is Python 2, aioari is unmaintained,
and the others build their API from Swagger at runtime, which leaves nothing for a type checker.

`AriClient` is the entry point (REST helpers + the events websocket with reconnect and resync);
`AriRest` alone is enough for one-shot REST use. See `ivrpowers.ari.client` for the lifecycle.
"""

from .client import AriClient, events_url
from .dispatch import EventHandler, ResyncHandler, Subscription
from .errors import (
    AriBadRequest,
    AriConflict,
    AriConnectionError,
    AriError,
    AriNotFound,
    AriPreconditionFailed,
    AriServerError,
    AriUnauthorized,
    AriUnprocessable,
)
from .events import (
    EVENT_TYPES,
    ApplicationReplaced,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelVarset,
    Event,
    PlaybackContinuing,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisEnd,
    StasisStart,
    event_channel_id,
    parse_event,
)
from .models import (
    AsteriskInfo,
    Bridge,
    BuildInfo,
    CallerID,
    Channel,
    ConfigInfo,
    DialplanCEP,
    LiveRecording,
    Playback,
    StatusInfo,
    SystemInfo,
)
from .rest import AriRest

__all__ = [
    "AriClient",
    "AriRest",
    "events_url",
    "Subscription",
    "EventHandler",
    "ResyncHandler",
    # errors
    "AriError",
    "AriBadRequest",
    "AriUnauthorized",
    "AriNotFound",
    "AriConflict",
    "AriPreconditionFailed",
    "AriUnprocessable",
    "AriServerError",
    "AriConnectionError",
    # resources
    "AsteriskInfo",
    "BuildInfo",
    "SystemInfo",
    "ConfigInfo",
    "StatusInfo",
    "CallerID",
    "DialplanCEP",
    "Channel",
    "Playback",
    "Bridge",
    "LiveRecording",
    # events
    "Event",
    "EVENT_TYPES",
    "parse_event",
    "event_channel_id",
    "StasisStart",
    "StasisEnd",
    "ChannelDtmfReceived",
    "ChannelHangupRequest",
    "ChannelDestroyed",
    "ChannelStateChange",
    "ChannelVarset",
    "PlaybackStarted",
    "PlaybackContinuing",
    "PlaybackFinished",
    "RecordingStarted",
    "RecordingFinished",
    "RecordingFailed",
    "ChannelEnteredBridge",
    "ChannelLeftBridge",
    "ApplicationReplaced",
]
