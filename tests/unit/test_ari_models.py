"""ARI models, event parsing and error formatting: pure, no network."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from ivrpowers.ari import (
    EVENT_TYPES,
    AriConnectionError,
    AriNotFound,
    AsteriskInfo,
    Channel,
    ChannelDestroyed,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelVarset,
    Event,
    PlaybackContinuing,
    RecordingFailed,
    StasisStart,
    event_channel_id,
    events_url,
    parse_event,
)
from ivrpowers.ari.errors import error_for_status

CHANNEL: dict[str, Any] = {
    "id": "1741000000.7",
    "name": "PJSIP/trunk-00000007",
    "state": "Ring",
    "protocol_id": "x@y",
    "caller": {"name": "Bob", "number": "600"},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {"context": "in", "exten": "s", "priority": 1, "app_name": "Stasis", "app_data": "ivr,a,b"},
    "creationtime": "2025-03-01T10:20:30.123-0500",
    "language": "en",
}
BRIDGE: dict[str, Any] = {
    "id": "b1", "technology": "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis",
    "creator": "Stasis", "name": "", "channels": ["1741000000.7"],
    "creationtime": "2025-03-01T10:20:30.000+0000",
}


def ev(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "application": "ivr", "timestamp": "2025-03-01T10:20:31.000+0000", **fields}


def test_stasis_start_is_typed() -> None:
    e = parse_event(ev("StasisStart", channel=CHANNEL, args=["a", "b"], asterisk_id="aa:bb"))
    assert isinstance(e, StasisStart)
    assert e.args == ["a", "b"] and e.replace_channel is None and e.asterisk_id == "aa:bb"
    assert e.channel.caller.number == "600"
    assert e.channel.creationtime is not None
    assert e.channel.creationtime.utcoffset() == timedelta(hours=-5)
    assert e.timestamp is not None and e.timestamp.tzinfo is not None


def test_hangup_and_destroyed_fields() -> None:
    h = parse_event(ev("ChannelHangupRequest", channel=CHANNEL, cause=16, soft=True))
    assert isinstance(h, ChannelHangupRequest) and (h.cause, h.soft) == (16, True)
    h2 = parse_event(ev("ChannelHangupRequest", channel=CHANNEL))
    assert isinstance(h2, ChannelHangupRequest) and h2.cause is None and h2.soft is None
    d = parse_event(ev("ChannelDestroyed", channel=CHANNEL, cause=17, cause_txt="User busy"))
    assert isinstance(d, ChannelDestroyed) and (d.cause, d.cause_txt) == (17, "User busy")


def test_bridge_playback_recording_and_varset_events() -> None:
    entered = parse_event(ev("ChannelEnteredBridge", bridge=BRIDGE, channel=CHANNEL))
    assert isinstance(entered, ChannelEnteredBridge) and entered.bridge.channels == ["1741000000.7"]
    left = parse_event(ev("ChannelLeftBridge", bridge=BRIDGE, channel=CHANNEL))
    assert isinstance(left, ChannelLeftBridge)
    pb = {"id": "p", "media_uri": "sound:a", "next_media_uri": "sound:b", "target_uri": "channel:c9",
          "state": "continuing"}
    cont = parse_event(ev("PlaybackContinuing", playback=pb))
    assert isinstance(cont, PlaybackContinuing) and cont.playback.next_media_uri == "sound:b"
    rec = {"name": "r", "format": "wav", "target_uri": "channel:c9", "state": "failed", "cause": "no space"}
    failed = parse_event(ev("RecordingFailed", recording=rec))
    assert isinstance(failed, RecordingFailed) and failed.recording.cause == "no space"
    glob = parse_event(ev("ChannelVarset", variable="GLOBAL_X", value="1"))
    assert isinstance(glob, ChannelVarset) and glob.channel is None


def test_every_registered_type_is_named_after_its_class() -> None:
    assert all(name == cls.__name__ and issubclass(cls, Event) for name, cls in EVENT_TYPES.items())


def test_unknown_type_keeps_raw_fields() -> None:
    e = parse_event(ev("ChannelToneDetected", channel=CHANNEL, tone="fax"))
    assert type(e) is Event
    assert e.type == "ChannelToneDetected"
    assert e.model_extra is not None and e.model_extra["tone"] == "fax"
    assert event_channel_id(e) == CHANNEL["id"]


def test_malformed_known_type_degrades_to_generic(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ivrpowers.ari"):
        e = parse_event(ev("ChannelDtmfReceived", channel=CHANNEL))  # no digit
    assert type(e) is Event and e.type == "ChannelDtmfReceived"
    assert "does not match its model" in caplog.text


@pytest.mark.parametrize(
    "raw",
    [
        {"no": "type"},
        {"type": 42},
        {"type": "MissingParams", "params": ["app"]},
        {"type": "StasisStart", "timestamp": "not a date"},
    ],
)
def test_parse_event_never_raises(raw: dict[str, Any]) -> None:
    e = parse_event(raw)
    assert isinstance(e, Event)
    assert isinstance(e.type, str)


def test_event_channel_id() -> None:
    pb = {"id": "p", "media_uri": "sound:a", "target_uri": "channel:c9", "state": "done"}
    assert event_channel_id(parse_event(ev("PlaybackFinished", playback=pb))) == "c9"
    pb_bridge = dict(pb, target_uri="bridge:b1")
    assert event_channel_id(parse_event(ev("PlaybackStarted", playback=pb_bridge))) is None
    untyped_rec = ev("RecordingSomethingNew", recording={"target_uri": "channel:c7"})
    assert event_channel_id(parse_event(untyped_rec)) == "c7"
    assert event_channel_id(parse_event(ev("BridgeDestroyed", bridge=BRIDGE))) is None


@pytest.mark.parametrize(
    ("app_name", "app_data", "inside"),
    [
        ("Stasis", "ivr", True),
        ("Stasis", "ivr,a,b", True),
        ("stasis", "ivr", True),
        ("Stasis", "ivr2", False),
        ("Stasis", "other,ivr", False),
        ("Dial", "ivr", False),
        ("", "", False),
    ],
)
def test_channel_in_stasis_app(app_name: str, app_data: str, inside: bool) -> None:
    ch = Channel.model_validate({**CHANNEL, "dialplan": {**CHANNEL["dialplan"], "app_name": app_name,
                                                         "app_data": app_data}})
    assert ch.in_stasis_app("ivr") is inside


def test_channel_tolerates_missing_optional_sections() -> None:
    ch = Channel.model_validate({"id": "x"})
    assert ch.caller.number == "" and ch.dialplan.app_name == "" and ch.creationtime is None


def test_asterisk_info_partial() -> None:
    info = AsteriskInfo.model_validate({"system": {"version": "22.0.0", "entity_id": "e"}})
    assert info.system is not None and info.system.version == "22.0.0"
    assert info.build is None and info.status is None


def test_error_messages() -> None:
    err = error_for_status(404, "POST", "/channels/abc/play", "Channel not found")
    assert isinstance(err, AriNotFound)
    assert str(err) == "ARI POST /channels/abc/play -> 404: Channel not found"
    assert str(error_for_status(500, "GET", "/x")) == "ARI GET /x -> 500"
    down = AriConnectionError("GET", "/channels", "Connection refused")
    assert down.status is None and str(down) == "ARI GET /channels: Connection refused"


def test_events_url() -> None:
    assert events_url("http://127.0.0.1:8088/ari", "ivr") == (
        "ws://127.0.0.1:8088/ari/events?app=ivr&subscribeAll=false"
    )
    assert events_url("https://pbx.example:8089/ari/", "my app") == (
        "wss://pbx.example:8089/ari/events?app=my%20app&subscribeAll=false"
    )
    with pytest.raises(ValueError):
        events_url("ftp://x/ari", "ivr")
