"""The REST half of the ARI client: small typed helpers over `AriHttp.request` (`ari/http.py`).

`AriRest` is usable alone (CLI checks, scripts) and is the base of `AriClient`, which adds the
events websocket. Helpers stay thin on purpose: one ARI operation each, Asterisk's own defaults
unless the caller passes a value (a parameter left at None is not sent at all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from .http import AriHttp, Params
from .models import AsteriskInfo, Bridge, Channel, ConfigTuple, Endpoint, LiveRecording, Playback


def _seg(value: str) -> str:
    """Quote one path segment: ids are ours or the caller's, and may contain '/' or spaces."""
    return quote(value, safe="")


def _config_path(config_class: str, object_type: str, id: str) -> str:
    return f"/asterisk/config/dynamic/{_seg(config_class)}/{_seg(object_type)}/{_seg(id)}"


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class AriRest(AriHttp):
    """Typed access to the ARI REST API of one Asterisk (transport: `ivrpowers.ari.http.AriHttp`).

    `app`, our Stasis application name, is the default target of `originate`.
    """

    # --- asterisk -------------------------------------------------------------------------

    async def asterisk_info(self) -> AsteriskInfo:
        return AsteriskInfo.model_validate(await self.request("GET", "/asterisk/info"))

    # --- dynamic configuration (sorcery objects: e.g. res_pjsip endpoint/auth/aor) ------------

    async def get_config_object(self, config_class: str, object_type: str, id: str) -> list[ConfigTuple]:
        """Every attribute of one object; `AriNotFound` if there is none of that id."""
        data = await self.request("GET", _config_path(config_class, object_type, id))
        return [ConfigTuple.model_validate(t) for t in data or []]

    async def put_config_object(
        self, config_class: str, object_type: str, id: str, fields: Sequence[tuple[str, str]]
    ) -> list[ConfigTuple]:
        """Create the object with `fields` (attribute, value) in order, or update an existing one.

        Creating needs a sorcery wizard that can (sorcery.conf; the config wizard cannot): else
        `AriUnauthorized` (403). A field Asterisk refuses is an `AriBadRequest` (400), and nothing
        is created. Beware the update: Asterisk copies the object through its fields first, which
        for a PJSIP AOR turns its registered contacts into permanent ones.
        """
        body = {"fields": [{"attribute": name, "value": value} for name, value in fields]}
        data = await self.request("PUT", _config_path(config_class, object_type, id), json=body)
        return [ConfigTuple.model_validate(t) for t in data or []]

    async def delete_config_object(self, config_class: str, object_type: str, id: str) -> None:
        """`AriNotFound` if there is none; `AriUnauthorized` (403) if its wizard cannot delete it
        (an object from a configuration file)."""
        await self.request("DELETE", _config_path(config_class, object_type, id))

    # --- endpoints ------------------------------------------------------------------------

    async def list_endpoints(self, technology: str | None = None) -> list[Endpoint]:
        """Every endpoint, or those of one technology ("PJSIP")."""
        path = "/endpoints" if technology is None else f"/endpoints/{_seg(technology)}"
        return [Endpoint.model_validate(e) for e in await self.request("GET", path)]

    async def get_endpoint(self, technology: str, resource: str) -> Endpoint:
        return Endpoint.model_validate(await self.request("GET", f"/endpoints/{_seg(technology)}/{_seg(resource)}"))

    # --- channels -------------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        """Every channel on the Asterisk, in any app or in the dialplan."""
        return [Channel.model_validate(c) for c in await self.request("GET", "/channels")]

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.model_validate(await self.request("GET", f"/channels/{_seg(channel_id)}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/answer")

    def answer_now(self, channel_id: str) -> asyncio.Future[Any]:
        """`answer`, on the wire before this returns where the transport allows (`request_now`)."""
        return self.request_now("POST", f"/channels/{_seg(channel_id)}/answer")

    def request_now(self, method: str, path: str) -> asyncio.Future[Any]:
        """`request` started at once where the transport allows (`AriClient` over a websocket); over
        HTTP, in a task of its own."""
        return asyncio.ensure_future(self.request(method, path))

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """Hang up; `reason` is an ARI name: normal, busy, congestion, no_answer, rejected..."""
        await self.request("DELETE", f"/channels/{_seg(channel_id)}", params={"reason": reason})

    async def subscribe_app(self, event_source: str) -> None:
        """Subscribe this app to `event_source` (`channel:ID`, `bridge:ID`, `endpoint:TECH/RES`...).

        A channel's own events stop reaching the app at StasisEnd unless it is subscribed this way;
        ChannelDestroyed, which carries the hangup cause, comes after StasisEnd.
        """
        await self.request("POST", f"/applications/{_seg(self.app)}/subscription", params={"eventSource": event_source})

    async def progress(self, channel_id: str) -> None:
        """Indicate progress (early media, SIP 183) without answering."""
        await self.request("POST", f"/channels/{_seg(channel_id)}/progress")

    async def ring(self, channel_id: str) -> None:
        """Send ringing indication to an unanswered channel."""
        await self.request("POST", f"/channels/{_seg(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/ring")

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/moh", params={"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/moh")

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> Playback:
        """Start playing one media URI, or several in turn as a single playback.

        The media list travels as a JSON array in the body: repeated `media=` query arguments
        would play only the last one, and comma-joining would split `tone:` URIs that contain
        commas. Passing `playback_id` lets the caller match PlaybackFinished without a race.
        """
        uris = _as_list(media)
        if not uris:
            raise ValueError("play() needs at least one media URI")
        path = f"/channels/{_seg(channel_id)}/play"
        if playback_id is not None:
            path += f"/{_seg(playback_id)}"
        data = await self.request("POST", path, params={"lang": lang}, json={"media": uris})
        return Playback.model_validate(data)

    async def get_playback(self, playback_id: str) -> Playback:
        return Playback.model_validate(await self.request("GET", f"/playbacks/{_seg(playback_id)}"))

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{_seg(playback_id)}")

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/variable",
            params={"variable": variable, "value": value},
        )

    async def get_variable(self, channel_id: str, variable: str) -> str:
        """A channel variable or dialplan function value.

        An unset variable is a 404 (`AriNotFound`) like a missing channel; `message` tells
        them apart ("Provided variable was not found" vs "Channel not found").
        """
        data = await self.request(
            "GET", f"/channels/{_seg(channel_id)}/variable", params={"variable": variable}
        )
        return str(data.get("value", "")) if isinstance(data, Mapping) else ""

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """Leave Stasis and resume the dialplan (where it was, unless told otherwise)."""
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/continue",
            params={"context": context, "extension": extension, "priority": priority, "label": label},
        )

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Dial `endpoint` (e.g. "PJSIP/agent1") and put the answered channel into a Stasis app.

        `app` defaults to ours. `app_args` become the StasisStart `args`; a list is comma-joined,
        so an argument must not itself contain a comma. `timeout` is the ring time in seconds
        (Asterisk's default: 30). Pass `channel_id` to know the id before any event arrives.
        """
        args = app_args if app_args is None or isinstance(app_args, str) else ",".join(app_args)
        params: Params = {
            "endpoint": endpoint,
            "app": app or self.app,
            "appArgs": args,
            "callerId": caller_id,
            "timeout": timeout,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
        }
        body = {"variables": dict(variables)} if variables else None
        return Channel.model_validate(await self.request("POST", "/channels", params=params, json=body))

    async def snoop(self, channel_id: str, *, spy: str = "none", whisper: str = "none", app: str | None = None,
                    app_args: str | Sequence[str] | None = None, snoop_id: str | None = None) -> Channel:
        """A channel that hears (`spy`) and/or speaks into (`whisper`) `channel_id`'s audio, put in the
        app (ours by default). Directions: none, both, in (what the channel sends), out (what it hears)."""
        args = app_args if app_args is None or isinstance(app_args, str) else ",".join(app_args)
        params: Params = {"spy": spy, "whisper": whisper, "app": app or self.app, "appArgs": args,
                          "snoopId": snoop_id}
        return Channel.model_validate(await self.request("POST", f"/channels/{_seg(channel_id)}/snoop", params=params))

    async def mute(self, channel_id: str, direction: str = "both") -> None:
        """Silence the channel's audio: `in` (what it says: nobody hears it), `out` (what it hears), both."""
        await self.request("POST", f"/channels/{_seg(channel_id)}/mute", params={"direction": direction})

    async def unmute(self, channel_id: str, direction: str = "both") -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/mute", params={"direction": direction})

    async def record(
        self,
        channel_id: str,
        name: str,
        format: str = "wav",
        *,
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str | None = None,
        beep: bool | None = None,
        terminate_on: str | None = None,
    ) -> LiveRecording:
        """Record the channel to the stored recording `name` (Asterisk's recording dir).

        `if_exists`: fail (Asterisk's default), overwrite, append. `terminate_on`: none, any,
        *, #.
        """
        params: Params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
        }
        data = await self.request("POST", f"/channels/{_seg(channel_id)}/record", params=params)
        return LiveRecording.model_validate(data)

    async def record_bridge(self, bridge_id: str, name: str, format: str = "wav") -> LiveRecording:
        """Record the bridge's mixed audio to the stored recording `name` (audio only: Asterisk's
        bridge recorder is an audio channel). It ends when the bridge does (RecordingFinished)."""
        data = await self.request("POST", f"/bridges/{_seg(bridge_id)}/record",
                                  params={"name": name, "format": format, "ifExists": "fail"})
        return LiveRecording.model_validate(data)

    async def stored_recording_file(self, name: str) -> bytes:
        """The file of a stored recording (its format's bytes, e.g. a WAV)."""
        return await self.request_bytes("GET", f"/recordings/stored/{_seg(name)}/file")

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{_seg(name)}")

    async def stop_recording(self, name: str) -> None:
        """Stop a live recording and keep the file (RecordingFinished follows)."""
        await self.request("POST", f"/recordings/live/{_seg(name)}/stop")

    # --- bridges --------------------------------------------------------------------------

    async def create_bridge(
        self, type: str = "mixing", bridge_id: str | None = None, name: str | None = None
    ) -> Bridge:
        """Create a bridge; `type` is a comma-separated set, e.g. "mixing,dtmf_events"."""
        data = await self.request(
            "POST", "/bridges", params={"type": type, "bridgeId": bridge_id, "name": name}
        )
        return Bridge.model_validate(data)

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.model_validate(b) for b in await self.request("GET", "/bridges")]

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return Bridge.model_validate(await self.request("GET", f"/bridges/{_seg(bridge_id)}"))

    async def add_to_bridge(
        self,
        bridge_id: str,
        channel_ids: str | Sequence[str],
        *,
        role: str | None = None,
        absorb_dtmf: bool | None = None,
        mute: bool | None = None,
    ) -> None:
        # Channel ids go in the body for the same reason as play()'s media: repeated query
        # arguments would add only the last channel.
        await self.request(
            "POST",
            f"/bridges/{_seg(bridge_id)}/addChannel",
            params={"role": role, "absorbDTMF": absorb_dtmf, "mute": mute},
            json={"channel": _as_list(channel_ids)},
        )

    async def remove_from_bridge(self, bridge_id: str, channel_ids: str | Sequence[str]) -> None:
        await self.request(
            "POST",
            f"/bridges/{_seg(bridge_id)}/removeChannel",
            json={"channel": _as_list(channel_ids)},
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}")

    async def set_video_source(self, bridge_id: str, channel_id: str) -> None:
        """Everyone in the bridge sees `channel_id`'s video; Asterisk asks that channel for a keyframe
        (RTCP FIR or SIP INFO) as it does so."""
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/videoSource/{_seg(channel_id)}")

    async def clear_video_source(self, bridge_id: str) -> None:
        """Back to the bridge's default video mode (the talker's video, in a mixing bridge)."""
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}/videoSource")
