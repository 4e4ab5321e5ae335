"""The REST half of the ARI client: one `request` primitive and small typed helpers over it.

`AriRest` is usable alone (CLI checks, scripts) and is the base of `AriClient`, which adds the
events websocket. Helpers stay thin on purpose: one ARI operation each, Asterisk's own defaults
unless the caller passes a value (a parameter left at None is not sent at all).
"""

from __future__ import annotations

import base64
import json as jsonlib
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeAlias
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from .errors import AriConnectionError, AriError, error_for_status
from .models import AsteriskInfo, Bridge, Channel, LiveRecording, Playback

log = logging.getLogger("ivrpowers.ari")

Scalar: TypeAlias = str | int | float | bool
Params: TypeAlias = Mapping[str, Scalar | Sequence[Scalar] | None]


def basic_auth_header(username: str, password: str) -> str:
    """The `Authorization` header value for ARI's HTTP basic auth."""
    encode = getattr(aiohttp, "encode_basic_auth", None)
    if encode is not None:
        return str(encode(username, password))
    # aiohttp < 3.14 has no helper (and 3.14 deprecates BasicAuth): same RFC 7617 rule by hand.
    if ":" in username:
        raise ValueError('A ":" is not allowed in the username (RFC 7617)')
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


_JSON = {"Content-Type": "application/json"}


def encode_params(params: Params | None) -> list[tuple[str, str]]:
    """Query parameters as (name, value) pairs, in the form Asterisk parses.

    None drops the parameter, booleans become "true"/"false" (aiohttp refuses bool), and a list
    becomes one pair per item. Beware: Asterisk keeps only the *last* of repeated parameters (its
    generated handlers overwrite, see res/res_ari_channels.c), so a multi-valued ARI parameter
    such as `media` or `channel` must go comma-joined or in the JSON body; the helpers below use
    the body.
    """
    pairs: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        if value is None:
            continue
        values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        for item in values:
            pairs.append((name, _scalar(item)))
    return pairs


def _scalar(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _seg(value: str) -> str:
    """Quote one path segment: ids are ours or the caller's, and may contain '/' or spaces."""
    return quote(value, safe="")


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _error_message(body: bytes, reason: str | None) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        decoded = jsonlib.loads(text)
    except ValueError:
        decoded = None
    message = decoded.get("message") if isinstance(decoded, Mapping) else None
    if isinstance(message, str):
        return message
    return text[:200] or (reason or "")


class AriRest:
    """Typed access to the ARI REST API of one Asterisk.

    `base_url` is the ARI root, e.g. `http://127.0.0.1:8088/ari`. `app` is our Stasis application
    name, used as the default target of `originate`. The aiohttp session is created on first use,
    inside the running event loop.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        request_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._auth_header = basic_auth_header(username, password)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the HTTP connection pool; later requests fail. Safe to call more than once."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": self._auth_header},
                timeout=self._timeout,
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
    ) -> Any:
        """Call ARI and return the decoded JSON body, or None for an empty (204) answer.

        `path` is relative to `base_url` and starts with "/"; quote ids in it yourself. List
        values in `params` are sent as repeated query arguments (see `encode_params` for why the
        typed helpers do not rely on that for multi-valued ARI parameters).
        Raises an `AriError` subclass for an HTTP error, `AriConnectionError` when Asterisk
        cannot be reached or does not answer within `request_timeout`.
        """
        if self._closed:
            raise AriConnectionError(method, path, "client is closed")
        if not path.startswith("/"):
            path = "/" + path
        url = self.base_url + path
        if pairs := encode_params(params):
            url += "?" + urlencode(pairs, quote_via=quote)
        body, headers = (None, None) if json is None else (jsonlib.dumps(json).encode(), _JSON)
        try:
            # Built and quoted here, once: yarl re-parsing and re-quoting each call's URL costs
            # more than the rest of the request's Python.
            async with self._http().request(
                method, URL(url, encoded=True), data=body, headers=headers
            ) as response:
                status, reason = response.status, response.reason
                body = await response.read()
        except TimeoutError as exc:
            raise AriConnectionError(method, path, f"no answer within {self._timeout.total:g}s") from exc
        except aiohttp.ClientError as exc:
            raise AriConnectionError(method, path, str(exc) or type(exc).__name__) from exc
        if status >= 400:
            raise error_for_status(status, method, path, _error_message(body, reason))
        if status == 204 or not body.strip():
            return None
        try:
            return jsonlib.loads(body)
        except ValueError as exc:
            raise AriError(status, method, path, f"response is not JSON: {body[:200]!r}") from exc

    # --- asterisk -------------------------------------------------------------------------

    async def asterisk_info(self) -> AsteriskInfo:
        return AsteriskInfo.model_validate(await self.request("GET", "/asterisk/info"))

    # --- channels -------------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        """Every channel on the Asterisk, in any app or in the dialplan."""
        return [Channel.model_validate(c) for c in await self.request("GET", "/channels")]

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.model_validate(await self.request("GET", f"/channels/{_seg(channel_id)}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/answer")

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
