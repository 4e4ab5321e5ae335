"""Typed ARI resources, as Asterisk 22 returns them (see rest-api/api-docs/*.json upstream).

Every model accepts and keeps fields it does not declare (`extra="allow"`): a newer Asterisk that
adds a field must not break the controller, and the raw value stays reachable as an attribute or
through `model_extra`. Fields that Swagger marks required but that older releases or odd channel
types omit get harmless defaults, for the same reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AriModel(BaseModel):
    """Base of every ARI model: keeps fields it does not declare instead of rejecting them."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CallerID(AriModel):
    name: str = ""
    number: str = ""


class DialplanCEP(AriModel):
    """Where the channel is in the dialplan; for a channel in Stasis, `app_name` is "Stasis"."""

    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""


class Channel(AriModel):
    id: str
    name: str = ""
    state: str = ""
    protocol_id: str = ""
    caller: CallerID = Field(default_factory=CallerID)
    connected: CallerID = Field(default_factory=CallerID)
    accountcode: str = ""
    dialplan: DialplanCEP = Field(default_factory=DialplanCEP)
    creationtime: datetime | None = None
    language: str = ""
    channelvars: dict[str, Any] | None = None
    caller_rdnis: str | None = None
    tenantid: str | None = None

    def in_stasis_app(self, app: str) -> bool:
        """True when the channel currently runs `Stasis(app[,args...])`.

        Asterisk reports the application name as registered ("Stasis"), but dialplan application
        names are case-insensitive, so compare that way; the app name itself is case-sensitive.
        """
        if self.dialplan.app_name.lower() != "stasis":
            return False
        return self.dialplan.app_data.split(",", 1)[0].strip() == app


class Playback(AriModel):
    id: str
    media_uri: str = ""
    next_media_uri: str | None = None
    target_uri: str = ""
    language: str | None = None
    state: str = ""


class Bridge(AriModel):
    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: list[str] = Field(default_factory=list)
    video_mode: str | None = None
    video_source_id: str | None = None
    creationtime: datetime | None = None
    bridgevars: dict[str, Any] | None = None


class LiveRecording(AriModel):
    name: str
    format: str = ""
    target_uri: str = ""
    state: str = ""
    duration: int | None = None
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str | None = None


class Endpoint(AriModel):
    """An endpoint as Asterisk sees it: PJSIP's `state` is "online" while one of its contacts is
    reachable (registered and, where qualified, answering OPTIONS), else "offline"."""

    technology: str
    resource: str
    state: str | None = None  # unknown, offline, online
    channel_ids: list[str] = Field(default_factory=list)


class RtpStats(AriModel):
    """RTP statistics of a channel's audio stream (GET /channels/{id}/rtp_statistics); the rest of
    Asterisk's fields (jitter, loss, rtt...) are kept as extras."""

    txcount: int = 0
    rxcount: int = 0


class ConfigTuple(AriModel):
    """One attribute of a dynamic configuration object (GET/PUT /asterisk/config/dynamic/...)."""

    attribute: str
    value: str = ""


class BuildInfo(AriModel):
    os: str = ""
    kernel: str = ""
    options: str = ""
    machine: str = ""
    date: str = ""
    user: str = ""


class SystemInfo(AriModel):
    version: str = ""
    entity_id: str = ""


class SetId(AriModel):
    user: str = ""
    group: str = ""


class ConfigInfo(AriModel):
    name: str = ""
    default_language: str = ""
    max_channels: int | None = None
    max_open_files: int | None = None
    max_load: float | None = None
    setid: SetId | None = None


class StatusInfo(AriModel):
    startup_time: datetime | None = None
    last_reload_time: datetime | None = None


class AsteriskInfo(AriModel):
    """GET /asterisk/info. Every section is optional: `?only=` can restrict the answer."""

    build: BuildInfo | None = None
    system: SystemInfo | None = None
    config: ConfigInfo | None = None
    status: StatusInfo | None = None
