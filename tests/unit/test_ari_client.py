"""AriClient against a fake ARI (REST + events websocket) served by aiohttp on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from ivrpowers.ari import (
    AriBadRequest,
    AriClient,
    AriConflict,
    AriConnectionError,
    AriError,
    AriNotFound,
    AriPreconditionFailed,
    AriServerError,
    AriUnauthorized,
    AriUnprocessable,
    Channel,
    ChannelDtmfReceived,
    Event,
    Playback,
    PlaybackFinished,
    StasisStart,
)

from . import waiting

APP = "ivr"
USER, PASSWORD = "asterisk", "s3cret:with-colon"
EXPECTED_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def channel(cid: str, app_name: str = "Stasis", app_data: str = APP) -> dict[str, Any]:
    return {
        "id": cid,
        "name": f"PJSIP/trunk-{cid}",
        "state": "Up",
        "protocol_id": "abc@10.0.0.1",
        "caller": {"name": "Alice", "number": "+34600111222"},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "from-pstn",
            "exten": "900",
            "priority": 3,
            "app_name": app_name,
            "app_data": app_data,
        },
        "creationtime": "2025-03-01T10:20:30.123+0100",
        "language": "es",
        "a_field_from_asterisk_99": True,
    }


def event(type_: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "application": APP,
        "timestamp": "2025-03-01T10:20:31.000+0100",
        "asterisk_id": "00:11:22:33:44:55",
        **fields,
    }


def playback(pid: str, target: str, state: str = "done") -> dict[str, Any]:
    return {"id": pid, "media_uri": "sound:hello-world", "target_uri": target, "state": state}


@dataclass
class Seen:
    method: str
    path: str  # raw, relative to /ari, without query
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any


class FakeAri:
    """Just enough ARI: records every request, answers from `responses`, serves /ari/events."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.responses: dict[tuple[str, str], tuple[int, Any]] = {}
        self.channels: list[dict[str, Any]] = []
        self.channels_failures = 0  # GET /channels answers 500 this many times first
        self.delay = 0.0  # seconds before any REST answer
        self.sockets: set[web.WebSocketResponse] = set()  # the events connections
        self.lane_sockets: set[web.WebSocketResponse] = set()  # REST-only ones (this fake answers none)
        self.transports: list[Any] = []
        self.ws_requests: list[tuple[dict[str, str], dict[str, str]]] = []
        self.ws_connected = asyncio.Event()
        self.ws_rejections: list[int] = []  # statuses to answer the next upgrades with
        self.answer_pings = True  # False: a peer that is gone without a word
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("/ari"))

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        await asyncio.sleep(self.delay)
        path = request.rel_url.raw_path.removeprefix("/ari")
        self.requests.append(
            Seen(request.method, path, list(request.query.items()), dict(request.headers), body)
        )
        if (request.method, path) in self.responses:
            status, payload = self.responses[(request.method, path)]
        elif (request.method, path) == ("GET", "/channels"):
            if self.channels_failures:
                self.channels_failures -= 1
                status, payload = 500, {"message": "Internal Server Error"}
            else:
                status, payload = 200, self.channels
        else:
            status, payload = 204, None
        if payload is None:
            return web.Response(status=status)
        if isinstance(payload, str):
            return web.Response(status=status, text=payload)
        return web.json_response(payload, status=status)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("app") != APP:  # one of the client's REST lanes (`ari/rest_lanes.py`)
            return await self._lane(request)
        self.ws_requests.append((dict(request.headers), dict(request.query)))
        if self.ws_rejections:
            return web.Response(status=self.ws_rejections.pop(0))
        ws = web.WebSocketResponse(autoping=self.answer_pings)
        await ws.prepare(request)
        self.sockets.add(ws)
        self.transports.append(request.transport)
        self.ws_connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.sockets.discard(ws)
        return ws

    async def _lane(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=self.answer_pings)
        await ws.prepare(request)
        self.lane_sockets.add(ws)
        self.transports.append(request.transport)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.lane_sockets.discard(ws)
        return ws

    async def send(self, *events: dict[str, Any] | str) -> None:
        for ws in list(self.sockets):
            for ev in events:
                await (ws.send_str(ev) if isinstance(ev, str) else ws.send_json(ev))

    async def drop_websockets(self) -> None:
        for ws in [*self.sockets, *self.lane_sockets]:
            await ws.close(code=1001, message=b"Asterisk restarting")

    def cut_network(self) -> None:
        """TCP reset, no close frame: what a crashed Asterisk or a dead link looks like."""
        for transport in self.transports:
            if transport is not None:
                transport.abort()

    def last(self, method: str, path: str) -> Seen:
        return [r for r in self.requests if (r.method, r.path) == (method, path)][-1]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    ari = FakeAri()
    await ari.server.start_server()
    yield ari
    await ari.server.close()


@pytest.fixture
async def client(fake: FakeAri) -> AsyncIterator[AriClient]:
    c = AriClient(fake.base_url, USER, PASSWORD, APP, reconnect_min=0.02, reconnect_max=0.1)
    yield c
    await c.close()


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    await waiting.until(predicate, timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- REST ---------------------------------------------------------------------------------


async def test_sends_basic_auth_and_parses_asterisk_info(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("GET", "/asterisk/info")] = (
        200,
        {
            "system": {"version": "22.5.0", "entity_id": "00:11:22:33:44:55"},
            "build": {"os": "Linux", "kernel": "6.1", "options": "", "machine": "x86_64",
                      "date": "2025-01-01", "user": "root"},
            "status": {"startup_time": "2025-03-01T08:00:00.000+0000",
                       "last_reload_time": "2025-03-01T08:00:00.000+0000"},
            "config": {"name": "", "default_language": "en", "setid": {"user": "", "group": ""}},
        },
    )
    info = await client.asterisk_info()
    assert info.system is not None and info.system.version == "22.5.0"
    assert info.build is not None and info.build.machine == "x86_64"
    assert info.status is not None and info.status.startup_time is not None
    assert info.status.startup_time.utcoffset() is not None
    assert fake.last("GET", "/asterisk/info").headers["Authorization"] == EXPECTED_AUTH


async def test_list_params_go_as_repeated_query_args(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("GET", "/echo")] = (200, {"ok": True})
    got = await client.request(
        "GET", "/echo", params={"media": ["sound:a", "digits:12"], "beep": True, "skip": None, "n": 3}
    )
    assert got == {"ok": True}
    assert fake.last("GET", "/echo").query == [
        ("media", "sound:a"),
        ("media", "digits:12"),
        ("beep", "true"),
        ("n", "3"),
    ]


async def test_play_several_media_with_playback_id(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("POST", "/channels/c1/play/pb-1")] = (
        201,
        playback("pb-1", "channel:c1", state="queued"),
    )
    pb = await client.play("c1", ["sound:welcome", "tone:440/200,0/200"], playback_id="pb-1", lang="es")
    assert isinstance(pb, Playback)
    assert (pb.id, pb.target_uri, pb.state) == ("pb-1", "channel:c1", "queued")
    seen = fake.last("POST", "/channels/c1/play/pb-1")
    # Asterisk keeps only the last repeated `media=`; the body array keeps every URI intact.
    assert seen.body == {"media": ["sound:welcome", "tone:440/200,0/200"]}
    assert seen.query == [("lang", "es")]


async def test_play_single_media_without_id(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("POST", "/channels/c1/play")] = (201, playback("auto-1", "channel:c1"))
    pb = await client.play("c1", "sound:hello-world")
    assert pb.id == "auto-1"
    assert fake.last("POST", "/channels/c1/play").body == {"media": ["sound:hello-world"]}
    with pytest.raises(ValueError):
        await client.play("c1", [])


async def test_channel_is_typed_and_ids_are_quoted(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("GET", "/channels/odd%2Fid%201")] = (200, channel("odd/id 1"))
    ch = await client.get_channel("odd/id 1")
    assert isinstance(ch, Channel)
    assert ch.caller.number == "+34600111222"
    assert ch.dialplan.priority == 3 and ch.dialplan.app_data == APP
    assert ch.creationtime is not None and ch.creationtime.utcoffset() == timedelta(hours=1)
    assert ch.model_extra == {"a_field_from_asterisk_99": True}


async def test_void_operations_return_none(fake: FakeAri, client: AriClient) -> None:
    assert await client.request("POST", "/channels/c1/answer") is None
    await client.answer("c1")
    await client.hangup("c1", reason="busy")
    await client.set_variable("c1", "CDR(userfield)", "vip")
    assert fake.last("POST", "/channels/c1/answer").body is None
    assert fake.last("DELETE", "/channels/c1").query == [("reason", "busy")]
    assert fake.last("POST", "/channels/c1/variable").query == [
        ("variable", "CDR(userfield)"),
        ("value", "vip"),
    ]


async def test_get_variable(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("GET", "/channels/c1/variable")] = (200, {"value": "42"})
    assert await client.get_variable("c1", "QUEUE_POS") == "42"
    assert fake.last("GET", "/channels/c1/variable").query == [("variable", "QUEUE_POS")]


async def test_originate_into_our_app(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("POST", "/channels")] = (200, channel("out-1", app_data=f"{APP},agent"))
    ch = await client.originate(
        "PJSIP/agent1",
        app_args=["agent", "q1"],
        caller_id="Queue <900>",
        timeout=15,
        channel_id="out-1",
        variables={"CALLERID(name)": "Support"},
    )
    assert ch.id == "out-1"
    seen = fake.last("POST", "/channels")
    assert dict(seen.query) == {
        "endpoint": "PJSIP/agent1",
        "app": APP,
        "appArgs": "agent,q1",
        "callerId": "Queue <900>",
        "timeout": "15",
        "channelId": "out-1",
    }
    assert seen.body == {"variables": {"CALLERID(name)": "Support"}}


async def test_bridge_helpers(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("POST", "/bridges")] = (
        200,
        {"id": "b1", "technology": "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis",
         "creator": "Stasis", "name": "q1", "channels": [], "creationtime": "2025-03-01T10:00:00.000+0000"},
    )
    bridge = await client.create_bridge(bridge_id="b1", name="q1")
    assert (bridge.id, bridge.bridge_type, bridge.channels) == ("b1", "mixing", [])
    assert dict(fake.last("POST", "/bridges").query) == {"type": "mixing", "bridgeId": "b1", "name": "q1"}
    await client.add_to_bridge("b1", ["c1", "c2"], absorb_dtmf=False)
    seen = fake.last("POST", "/bridges/b1/addChannel")
    assert seen.body == {"channel": ["c1", "c2"]} and seen.query == [("absorbDTMF", "false")]
    await client.remove_from_bridge("b1", "c2")
    assert fake.last("POST", "/bridges/b1/removeChannel").body == {"channel": ["c2"]}
    await client.destroy_bridge("b1")
    assert fake.last("DELETE", "/bridges/b1")


async def test_record(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("POST", "/channels/c1/record")] = (
        201,
        {"name": "msg-1", "format": "wav", "target_uri": "channel:c1", "state": "queued"},
    )
    rec = await client.record("c1", "msg-1", max_silence_seconds=3, beep=True, terminate_on="#")
    assert (rec.name, rec.state, rec.target_uri) == ("msg-1", "queued", "channel:c1")
    assert fake.last("POST", "/channels/c1/record").query == [
        ("name", "msg-1"),
        ("format", "wav"),
        ("maxSilenceSeconds", "3"),
        ("beep", "true"),
        ("terminateOn", "#"),
    ]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, AriBadRequest),
        (401, AriUnauthorized),
        (404, AriNotFound),
        (409, AriConflict),
        (412, AriPreconditionFailed),
        (422, AriUnprocessable),
        (500, AriServerError),
        (503, AriServerError),
        (418, AriError),
    ],
)
async def test_error_class_by_status(
    fake: FakeAri, client: AriClient, status: int, cls: type[AriError]
) -> None:
    fake.responses[("POST", "/channels/abc/play")] = (status, {"message": "Channel not found"})
    with pytest.raises(cls) as info:
        await client.play("abc", "sound:x")
    err = info.value
    assert type(err) is cls
    assert (err.status, err.method, err.path, err.message) == (
        status, "POST", "/channels/abc/play", "Channel not found"
    )
    assert str(err) == f"ARI POST /channels/abc/play -> {status}: Channel not found"


async def test_error_without_json_body_keeps_text(fake: FakeAri, client: AriClient) -> None:
    fake.responses[("GET", "/channels/x")] = (404, "Not Found")
    with pytest.raises(AriNotFound, match="-> 404: Not Found"):
        await client.get_channel("x")


async def test_connection_error_when_nothing_listens() -> None:
    async with AriClient(f"http://127.0.0.1:{free_port()}/ari", USER, PASSWORD, APP) as c:
        with pytest.raises(AriConnectionError) as info:
            await c.list_channels()
    assert info.value.status is None and info.value.path == "/channels"
    assert isinstance(info.value, AriError)
    with pytest.raises(AriConnectionError, match="closed"):
        await c.list_channels()


async def test_slow_asterisk_times_out_as_connection_error(fake: FakeAri) -> None:
    fake.delay = 1.0
    async with AriClient(fake.base_url, USER, PASSWORD, APP, request_timeout=0.1) as c:
        with pytest.raises(AriConnectionError, match=r"ARI GET /channels: no answer within 0.1s"):
            await c.list_channels()


# --- events -------------------------------------------------------------------------------


async def test_events_websocket_url_and_auth(fake: FakeAri, client: AriClient) -> None:
    client.start()
    await client.wait_connected(2)
    assert client.is_connected
    headers, query = fake.ws_requests[0]
    assert headers["Authorization"] == EXPECTED_AUTH
    assert query == {"app": APP, "subscribeAll": "false"}


async def test_dispatch_order_sync_async_and_wildcard(fake: FakeAri, client: AriClient) -> None:
    calls: list[tuple[str, str]] = []

    def first(ev: Event) -> None:
        calls.append(("first", ev.type))

    async def second(ev: Event) -> None:
        await asyncio.sleep(0.01)  # awaited in line: 'third' must still come after
        calls.append(("second", ev.type))

    def third(ev: Event) -> None:
        calls.append(("any", ev.type))

    client.subscribe("StasisStart", first)
    client.subscribe("StasisStart", second)
    client.subscribe("*", third)
    client.subscribe("ChannelDtmfReceived", first)
    got: list[Event] = []
    client.subscribe("ChannelDtmfReceived", got.append)
    client.start()
    await client.wait_connected(2)
    await fake.send(
        event("StasisStart", channel=channel("c1"), args=["inbound"]),
        event("ChannelDtmfReceived", channel=channel("c1"), digit="5", duration_ms=120),
    )
    await until(lambda: len(calls) == 5)
    assert calls == [
        ("first", "StasisStart"),
        ("second", "StasisStart"),
        ("any", "StasisStart"),
        ("any", "ChannelDtmfReceived"),
        ("first", "ChannelDtmfReceived"),
    ]
    assert isinstance(got[0], ChannelDtmfReceived) and got[0].digit == "5" and got[0].duration_ms == 120


async def test_channel_filter_includes_playbacks_on_that_channel(
    fake: FakeAri, client: AriClient
) -> None:
    mine: list[Event] = []
    sub = client.subscribe("*", mine.append, channel_id="c1")
    everything: list[Event] = []
    client.subscribe("*", everything.append)
    client.start()
    await client.wait_connected(2)
    await fake.send(
        event("ChannelDtmfReceived", channel=channel("c2"), digit="1", duration_ms=100),
        event("ChannelDtmfReceived", channel=channel("c1"), digit="2", duration_ms=100),
        event("PlaybackFinished", playback=playback("p2", "channel:c2")),
        event("PlaybackFinished", playback=playback("p1", "channel:c1")),
        event("PlaybackFinished", playback=playback("p3", "bridge:c1")),
        event("ChannelTalkingStarted", channel=channel("c1")),  # untyped, still filtered by id
    )
    await until(lambda: len(everything) == 6)
    assert [e.type for e in mine] == ["ChannelDtmfReceived", "PlaybackFinished", "ChannelTalkingStarted"]
    assert isinstance(mine[1], PlaybackFinished) and mine[1].playback.id == "p1"
    sub.cancel()
    assert not sub.active
    await fake.send(event("ChannelDtmfReceived", channel=channel("c1"), digit="3", duration_ms=100))
    await until(lambda: len(everything) == 7)
    assert len(mine) == 3


async def test_unknown_event_type_reaches_handlers_untyped(fake: FakeAri, client: AriClient) -> None:
    got: list[Event] = []
    client.subscribe("BrandNewAsterisk23Event", got.append)
    client.start()
    await client.wait_connected(2)
    await fake.send(event("BrandNewAsterisk23Event", gizmo={"x": 1}))
    await until(lambda: len(got) == 1)
    assert type(got[0]) is Event
    assert got[0].model_extra == {"gizmo": {"x": 1}}
    assert got[0].application == APP


async def test_handler_exception_is_isolated(
    fake: FakeAri, client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ev: Event) -> None:
        raise RuntimeError("bug in a flow")

    async def broken_async(ev: Event) -> None:
        raise RuntimeError("async bug")

    got: list[str] = []
    client.subscribe("StasisStart", broken)
    client.subscribe("StasisStart", broken_async)
    client.subscribe("StasisStart", lambda ev: got.append(ev.channel.id))
    client.start()
    await client.wait_connected(2)
    with caplog.at_level(logging.ERROR, logger="ivrpowers.ari"):
        # Garbage in between must not stop the reader either.
        await fake.send(
            event("StasisStart", channel=channel("c1")),
            "not json",
            "[1, 2]",
            event("StasisStart", channel=channel("c2")),
        )
        await until(lambda: len(got) == 2)
    assert got == ["c1", "c2"]
    assert client.is_connected
    assert sum("bug in a flow" in r.exc_text for r in caplog.records if r.exc_text) == 2


async def test_subscription_cancelled_by_earlier_handler_is_skipped(
    fake: FakeAri, client: AriClient
) -> None:
    got: list[str] = []
    later = None

    def canceller(ev: Event) -> None:
        got.append("canceller")
        assert later is not None
        later.cancel()

    client.subscribe("StasisStart", canceller)
    later = client.subscribe("StasisStart", lambda ev: got.append("later"))
    client.subscribe("StasisStart", lambda ev: got.append("last"))
    client.start()
    await client.wait_connected(2)
    await fake.send(event("StasisStart", channel=channel("c1")))
    await until(lambda: "last" in got)
    assert got == ["canceller", "last"]


async def test_reconnect_resyncs_with_channels_of_our_app(fake: FakeAri, client: AriClient) -> None:
    fake.channels = [
        channel("in-1", app_data=APP),
        channel("in-2", app_data=f"{APP},inbound,vip"),
        channel("other", app_data="other-app"),
        channel("prefix", app_data=f"{APP}2"),
        channel("dialing", app_name="Dial", app_data=f"PJSIP/{APP}"),
    ]
    resyncs: list[tuple[list[str], bool]] = []

    async def on_resync(channels: list[Channel], reconnected: bool) -> None:
        resyncs.append(([c.id for c in channels], reconnected))

    client.on_resync(on_resync)
    started: list[str] = []
    client.subscribe("StasisStart", lambda ev: started.append(ev.channel.id))
    task = client.start()
    await client.wait_connected(2)
    assert resyncs == [(["in-1", "in-2"], False)]

    fake.ws_connected.clear()
    await fake.drop_websockets()
    await fake.ws_connected.wait()
    await until(lambda: len(resyncs) == 2)
    await client.wait_connected(2)
    assert resyncs[1] == (["in-1", "in-2"], True)
    assert len(fake.ws_requests) == 2 and not task.done()

    await fake.send(event("StasisStart", channel=channel("after")))
    await until(lambda: started == ["after"])


async def test_reconnect_after_network_cut(
    fake: FakeAri, client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    resyncs: list[bool] = []
    client.on_resync(lambda channels, reconnected: resyncs.append(reconnected))
    client.start()
    await client.wait_connected(2)
    with caplog.at_level(logging.WARNING, logger="ivrpowers.ari"):
        fake.cut_network()
        await until(lambda: resyncs == [False, True])
    assert "lost (no close frame)" in caplog.text
    await client.wait_connected(2)


async def test_a_peer_that_stops_answering_pings_is_given_up_and_reconnected(fake: FakeAri) -> None:
    # No FIN, no close frame, no error: only the missing pong tells the peer is gone.
    fake.answer_pings = False
    client = AriClient(fake.base_url, USER, PASSWORD, APP, reconnect_min=0.02, reconnect_max=0.1, heartbeat=0.2)
    resyncs: list[bool] = []
    client.on_resync(lambda channels, reconnected: resyncs.append(reconnected))
    try:
        client.start()
        await client.wait_connected(2)
        await until(lambda: resyncs[:2] == [False, True])
        assert client.connects >= 2
    finally:
        await client.close()


async def test_resync_failure_retries_with_backoff(fake: FakeAri, client: AriClient) -> None:
    fake.channels = [channel("in-1")]
    fake.channels_failures = 2
    resyncs: list[bool] = []
    client.on_resync(lambda channels, reconnected: resyncs.append(reconnected))
    client.start()
    await client.wait_connected(2)
    # Two failed resyncs do not count as connections: the first delivered one is still "first".
    assert resyncs == [False]
    assert len(fake.ws_requests) == 3


async def test_rejected_upgrades_are_retried_and_logged(
    fake: FakeAri, client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.ws_rejections = [401, 503]
    with caplog.at_level(logging.INFO, logger="ivrpowers.ari"):
        client.start()
        await client.wait_connected(2)
        await fake.drop_websockets()
        await until(lambda: len(fake.ws_requests) == 4)
        await client.wait_connected(2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "refused: HTTP 401 (check the ARI user and password)" in warnings[0]
    assert "refused: HTTP 503" in warnings[1]
    assert "closed by Asterisk (1001 Asterisk restarting)" in warnings[2]
    assert infos[0].startswith("ARI events connected to ws://")
    assert infos[1].startswith("ARI events reconnected to ws://")


async def test_drop_events_connection_reconnects(fake: FakeAri, client: AriClient) -> None:
    assert await client.drop_events_connection() is False
    resyncs: list[bool] = []
    client.on_resync(lambda channels, reconnected: resyncs.append(reconnected))
    client.start()
    await client.wait_connected(2)
    assert await client.drop_events_connection() is True
    await until(lambda: resyncs == [False, True])
    await client.wait_connected(2)
    assert len(fake.ws_requests) == 2


async def test_close_stops_promptly_while_reconnecting(fake: FakeAri) -> None:
    client = AriClient(fake.base_url, USER, PASSWORD, APP, reconnect_min=5, reconnect_max=5)
    task = client.start()
    await client.wait_connected(2)
    # Asterisk goes away: the client is now in a 5 s backoff.
    await fake.drop_websockets()
    await fake.server.close()
    await until(lambda: not client.is_connected)
    began = time.monotonic()
    await client.close()
    assert time.monotonic() - began < 0.5
    assert task.done() and task.exception() is None
    with pytest.raises(RuntimeError):
        await client.run()


async def test_close_stops_promptly_while_connected(fake: FakeAri) -> None:
    client = AriClient(fake.base_url, USER, PASSWORD, APP, reconnect_min=0.02)
    task = client.start()
    await client.wait_connected(2)
    began = time.monotonic()
    await client.close()
    assert time.monotonic() - began < 0.5
    assert task.done() and not client.is_connected
    await until(lambda: not fake.sockets and not fake.lane_sockets)  # the REST lanes closed too


async def test_close_from_inside_a_handler(fake: FakeAri, client: AriClient) -> None:
    client.subscribe("StasisEnd", lambda ev: client.close())
    task = client.start()
    await client.wait_connected(2)
    await fake.send(event("StasisEnd", channel=channel("c1")))
    await asyncio.wait_for(task, 2)
    assert not client.is_connected


async def test_wait_connected_times_out_when_asterisk_is_down() -> None:
    client = AriClient(f"http://127.0.0.1:{free_port()}/ari", USER, PASSWORD, APP, reconnect_min=0.02)
    client.start()
    try:
        with pytest.raises(TimeoutError):
            await client.wait_connected(0.2)
        assert not client.is_connected
    finally:
        await client.close()


async def test_run_can_be_awaited_directly(fake: FakeAri) -> None:
    client = AriClient(fake.base_url, USER, PASSWORD, APP, reconnect_min=0.02)
    got: list[StasisStart] = []
    client.subscribe("StasisStart", got.append)
    runner = asyncio.create_task(client.run())
    await client.wait_connected(2)
    await fake.send(event("StasisStart", channel=channel("c1"), args=["a", "b"]))
    await until(lambda: len(got) == 1)
    assert got[0].args == ["a", "b"]
    await client.close()
    await asyncio.wait_for(runner, 1)
    assert runner.exception() is None
