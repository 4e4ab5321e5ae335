"""A fake Asterisk for the controller's unit tests: ARI REST and events for the calls it makes.

It behaves like Asterisk where the controller depends on it: a play request answers at once and its
PlaybackFinished follows when the media would have ended (or at once when stopped); a hangup, the
caller's or a DELETE's, sends ChannelHangupRequest with the cause, then StasisEnd, and
ChannelDestroyed only to an app that subscribed to the channel; requests about a channel that is
gone answer 404; GET /channels lists the channels in Stasis. REST requests are answered over HTTP
and, like Asterisk 22.4 and later, as RESTResponse events on the events websocket, one at a time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

APP = "ivrpowers"
_ids = itertools.count(1)
_NOT_FOUND = (404, {"message": "not found"})


@dataclass
class FakeChannel:
    id: str
    args: list[str]
    caller: str
    state: str = "Ring"
    in_stasis: bool = True
    subscribed: bool = False
    playbacks: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    played: list[list[str]] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": f"PJSIP/trunk-{self.id}", "state": self.state,
            "caller": {"name": "", "number": self.caller}, "connected": {"name": "", "number": ""},
            "accountcode": "", "creationtime": datetime.now(UTC).isoformat(), "language": "en",
            "dialplan": {"context": "from-trunk", "exten": "100", "priority": 1, "app_name": "Stasis",
                         "app_data": ",".join([APP, *self.args])},
        }


class FakeAsterisk:
    def __init__(self, *, play_seconds: float = 0.05, asterisk_id: str = "ast-test") -> None:
        self.play_seconds = play_seconds
        self.asterisk_id = asterisk_id
        self.channels: dict[str, FakeChannel] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.apps: dict[web.WebSocketResponse, str] = {}  # each socket's Stasis app
        self.connections = 0  # websockets accepted so far
        self.requests: list[tuple[str, str]] = []
        self.down = False  # REST answers 503 and the websocket refuses: Asterisk unreachable
        self.ws_rest_silent = False  # True: like Asterisk < 22.4, REST requests on the websocket go unanswered
        self.silent_apps: set[str] = set()  # ...or only on the sockets of these apps
        self.ws_requests = 0  # REST requests answered on the websocket
        self.ws_received = 0  # messages received on the websocket, answered or not
        self._tasks: set[asyncio.Future[None]] = set()
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("/ari"))

    async def start(self) -> None:
        await self.server.start_server()

    async def close(self) -> None:
        await self.server.close()

    # -- what callers do ------------------------------------------------------------------------
    async def call(self, *args: str, caller: str = "5551234") -> FakeChannel:
        channel = FakeChannel(id=f"{self.asterisk_id}-{next(_ids)}.1", args=list(args), caller=caller)
        self.channels[channel.id] = channel
        await self.send("StasisStart", channel=channel.json(), args=list(args))
        return channel

    async def press(self, channel: FakeChannel, digit: str) -> None:
        await self.send("ChannelDtmfReceived", channel=channel.json(), digit=digit, duration_ms=100)

    async def caller_hangs_up(self, channel: FakeChannel, cause: int | None = None) -> None:
        """A BYE: like Asterisk's, its hangup request has no cause unless the far end gave one."""
        await self._gone(channel, cause)

    async def drop_websockets(self) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"going away")

    # -- internals ----------------------------------------------------------------------------------
    async def send(self, type_: str, **fields: Any) -> None:
        event = {"type": type_, "application": APP, "timestamp": datetime.now(UTC).isoformat(),
                 "asterisk_id": "00:00:00:00:00:01", **fields}
        for ws in list(self.sockets):
            if self.apps.get(ws) == APP:  # an app no channel entered gets no events
                await ws.send_json(event)

    async def _gone(self, channel: FakeChannel, cause: int | None, *, soft: bool = False) -> None:
        if self.channels.pop(channel.id, None) is None:
            return
        for handle in channel.playbacks.values():
            handle.cancel()
        # A soft hangup request (ARI's DELETE) carries Asterisk's soft-hangup flag (32), not the cause.
        if soft:
            await self.send("ChannelHangupRequest", channel=channel.json(), cause=32, soft=True)
        else:
            await self.send("ChannelHangupRequest", channel=channel.json(), **({"cause": cause} if cause else {}))
        await self.send("StasisEnd", channel=channel.json())
        if channel.subscribed:
            await self.send("ChannelDestroyed", channel=channel.json(), cause=cause or 16, cause_txt="Normal Clearing")

    def _finish_playback(self, channel: FakeChannel, playback_id: str) -> None:
        channel.playbacks.pop(playback_id, None)
        playback = {"id": playback_id, "media_uri": "sound:x", "target_uri": f"channel:{channel.id}", "state": "done"}
        self._later(self.send("PlaybackFinished", playback=playback))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)
        self.apps[ws] = request.query.get("app", "")
        self.connections += 1
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
                if msg.type == WSMsgType.TEXT:
                    self.ws_received += 1
                    await self._ws_request(ws, json.loads(msg.data))
        finally:
            self.sockets.discard(ws)
            self.apps.pop(ws, None)
        return ws

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        status, answer = self._answer(request.method, request.path.removeprefix("/ari/"), dict(request.query), body)
        return web.Response(status=204) if answer is None else web.json_response(answer, status=status)

    async def _ws_request(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        """Asterisk 22.4+: a REST request on the events websocket, answered there as a RESTResponse."""
        if self.ws_rest_silent or self.apps.get(ws) in self.silent_apps:
            return  # an Asterisk older than 22.4 ignores what the client sends
        uri = message.get("uri", "")
        query = {q["name"]: q["value"] for q in message.get("query_strings", [])}
        body = json.loads(message["message_body"]) if message.get("message_body") else None
        status, answer = self._answer(message.get("method", ""), uri, query, body)
        self.ws_requests += 1
        await ws.send_json({"type": "RESTResponse", "request_id": message.get("request_id", ""),
                            "transaction_id": message.get("transaction_id", ""), "status_code": status,
                            "reason_phrase": "x", "uri": uri,
                            **({} if answer is None else {"content_type": "application/json",
                                                          "message_body": json.dumps(answer)})})

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        """(status, JSON body or None for 204) of one REST request, whichever way it came."""
        if self.down:
            return 503, {"message": "unavailable"}
        parts = path.split("/")
        self.requests.append((method, "/".join(parts)))
        match method, parts:
            case "GET", ["asterisk", "info"]:
                return 200, {"system": {"version": "22.10.1", "entity_id": "x"}}
            case "GET", ["asterisk", "ping"]:
                return 200, {"ping": "pong", "asterisk_id": "00:00:00:00:00:01"}
            case "GET", ["channels"]:
                return 200, [c.json() for c in self.channels.values() if c.in_stasis]
            case "POST", ["applications", _, "subscription"]:
                source = query.get("eventSource", "")
                if source.startswith("channel:"):
                    if (subscribed := self.channels.get(source[8:])) is None:
                        return 404, {"message": "Channel not found"}
                    subscribed.subscribed = True
                return 200, {"name": APP}
            case "GET", ["playbacks", playback_id]:
                live = any(playback_id in c.playbacks for c in self.channels.values())
                return (200, {"id": playback_id, "state": "playing"}) if live else _NOT_FOUND
            case "DELETE", ["playbacks", playback_id]:
                for channel in self.channels.values():
                    if channel.playbacks.pop(playback_id, None) is not None:
                        self._finish_playback(channel, playback_id)
                        return 204, None
                return _NOT_FOUND
        if len(parts) >= 2 and parts[0] == "channels":
            channel = self.channels.get(parts[1])
            if channel is None:
                return _NOT_FOUND
            action = parts[2] if len(parts) > 2 else ""
            if method == "GET" and not action:
                return 200, channel.json()
            if method == "DELETE" and not action:
                self._later(self._gone(channel, 16, soft=True))
                return 204, None
            if action in ("answer", "progress", "ring"):
                channel.state = "Up" if action == "answer" else channel.state
                return 204, None
            if action == "play":
                playback_id = parts[3] if len(parts) > 3 else f"pb-{next(_ids)}"
                channel.played.append(list((body or {}).get("media", [])))
                loop = asyncio.get_running_loop()
                channel.playbacks[playback_id] = loop.call_later(
                    self.play_seconds, self._finish_playback, channel, playback_id)
                return 201, {"id": playback_id, "target_uri": f"channel:{channel.id}", "media_uri": "sound:x",
                             "state": "queued"}
        return 501, {"message": f"fake Asterisk has no {method} /ari/{path}"}

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

