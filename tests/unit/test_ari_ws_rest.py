"""REST requests over the events websocket (Asterisk 22.4+), against the fake Asterisk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ivrpowers.ari import AriClient, AriConnectionError, AriNotFound, StasisStart

from .fake_asterisk import APP, FakeAsterisk
from .waiting import until


@pytest.fixture
async def client(asterisk: FakeAsterisk) -> AsyncIterator[AriClient]:
    c = AriClient(asterisk.base_url, "u", "p", APP, reconnect_min=0.02, reconnect_max=0.1, request_timeout=2)
    c.start()
    await c.wait_connected(5)
    yield c
    await c.close()


async def test_requests_go_over_the_websocket_once_asterisk_answered_the_probe(
    asterisk: FakeAsterisk, client: AriClient
) -> None:
    await until(lambda: client.rest_over_websocket)
    channel = await asterisk.call()
    before = asterisk.ws_requests
    await client.answer(channel.id)
    playback = await client.play(channel.id, ["sound:a", "sound:b"], playback_id="pb-1")
    assert asterisk.ws_requests == before + 2
    assert channel.state == "Up"
    assert channel.played == [["sound:a", "sound:b"]]  # the JSON body arrives whole
    assert playback.id == "pb-1"
    await client.hangup(channel.id, reason="busy")
    assert asterisk.requests[-1] == ("DELETE", f"channels/{channel.id}")


async def test_errors_are_the_same_as_over_http(asterisk: FakeAsterisk, client: AriClient) -> None:
    await until(lambda: client.rest_over_websocket)
    with pytest.raises(AriNotFound) as raised:
        await client.answer("no-such-channel")
    assert raised.value.status == 404 and raised.value.message == "not found"
    assert asterisk.ws_requests >= 2


async def test_a_silent_asterisk_keeps_requests_on_http(asterisk: FakeAsterisk) -> None:
    asterisk.ws_rest_silent = True  # an Asterisk before 22.4
    async with AriClient(asterisk.base_url, "u", "p", APP, reconnect_min=0.02) as c:
        c.start()
        await c.wait_connected(5)
        channel = await asterisk.call()
        await c.answer(channel.id)
        assert channel.state == "Up"
        assert not c.rest_over_websocket
        assert asterisk.ws_requests == 0


async def test_requests_waiting_when_the_socket_drops_fail_as_connection_errors(
    asterisk: FakeAsterisk, client: AriClient
) -> None:
    await until(lambda: client.rest_over_websocket)
    channel = await asterisk.call()
    asterisk.ws_rest_silent = True  # this one is never answered
    pending = asyncio.create_task(client.answer(channel.id))
    await until(lambda: asterisk.ws_received > 1)
    await asterisk.drop_websockets()
    with pytest.raises(AriConnectionError):
        await asyncio.wait_for(pending, 1.5)  # well before the 2 s request timeout
    asterisk.ws_rest_silent = False
    await client.wait_connected(5)
    await until(lambda: client.rest_over_websocket)
    await client.answer(channel.id)
    assert channel.state == "Up"


async def test_a_request_from_inside_an_event_handler_does_not_wait_for_the_reader(
    asterisk: FakeAsterisk, client: AriClient
) -> None:
    await until(lambda: client.rest_over_websocket)
    answered: list[str] = []

    async def on_start(event: StasisStart) -> None:
        await client.answer(event.channel.id)  # the reader is busy in this handler: HTTP it must be
        answered.append(event.channel.id)

    client.subscribe(StasisStart, on_start)
    channel = await asterisk.call()
    await until(lambda: answered == [channel.id])
    assert channel.state == "Up"


async def test_an_answer_started_now_is_on_a_websocket_before_the_handler_returns(
    asterisk: FakeAsterisk, client: AriClient
) -> None:
    await until(lambda: client.rest_over_websocket and client.rest_lanes_ready == 5)
    in_flight: list[int] = []
    replies: list[asyncio.Future[object]] = []

    def on_start(event: StasisStart) -> None:  # the reader's own turn: nothing else runs meanwhile
        replies.append(client.answer_now(event.channel.id))
        in_flight.append(client.ws_requests_in_flight)

    client.subscribe(StasisStart, on_start)
    sent = asterisk.ws_received
    channel = await asterisk.call()
    await until(lambda: bool(replies))
    assert in_flight == [1]  # a task would not have sent it yet
    await replies[0]
    assert channel.state == "Up" and asterisk.ws_received == sent + 1
    assert client.ws_requests_in_flight == 0


async def test_a_request_never_answered_fails_after_the_request_timeout(asterisk: FakeAsterisk) -> None:
    async with AriClient(asterisk.base_url, "u", "p", APP, reconnect_min=0.02, request_timeout=0.4) as c:
        c.start()
        await c.wait_connected(5)
        await until(lambda: c.rest_over_websocket)
        channel = await asterisk.call()
        asterisk.ws_rest_silent = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(AriConnectionError):
            await c.answer(channel.id)
        assert loop.time() - started >= 0.4
        assert c.is_connected  # a slow answer is the request's failure, not the connection's


async def test_a_second_request_does_not_queue_behind_one_in_flight(asterisk: FakeAsterisk, client: AriClient) -> None:
    await until(lambda: client.rest_over_websocket and client.rest_lanes_ready == 5)
    first, second = await asterisk.call(), await asterisk.call()
    asterisk.silent_apps = {APP}  # the first request stays in flight on the events websocket
    sent, answered, http = asterisk.ws_received, asterisk.ws_requests, len(asterisk.requests)
    stuck = asyncio.create_task(client.answer(first.id))
    await until(lambda: asterisk.ws_received == sent + 1)
    await client.answer(second.id)  # over a REST lane, beside it
    assert second.state == "Up" and first.state != "Up"
    assert asterisk.ws_requests == answered + 1 and len(asterisk.requests) == http + 1  # (requests: all ways)
    stuck.cancel()


async def test_requests_go_over_http_only_while_every_socket_is_busy(asterisk: FakeAsterisk, client: AriClient) -> None:
    await until(lambda: client.rest_over_websocket and client.rest_lanes_ready == 5)
    channels = [await asterisk.call() for _ in range(7)]
    asterisk.ws_rest_silent = True  # every websocket request stays in flight
    sent, http = asterisk.ws_received, len(asterisk.requests)
    stuck = [asyncio.create_task(client.answer(c.id)) for c in channels[:6]]
    await until(lambda: asterisk.ws_received == sent + 6)  # the events socket and the five lanes
    await client.answer(channels[6].id)
    assert channels[6].state == "Up" and asterisk.ws_received == sent + 6
    assert len(asterisk.requests) == http + 1 and asterisk.requests[-1] == ("POST", f"channels/{channels[6].id}/answer")
    for task in stuck:
        task.cancel()
    await asyncio.gather(*stuck, return_exceptions=True)


async def test_a_lane_that_drops_reconnects_and_is_used_again(asterisk: FakeAsterisk, client: AriClient) -> None:
    await until(lambda: client.rest_lanes_ready == 5 and asterisk.connections == 6)
    await asterisk.drop_websockets()
    await until(lambda: asterisk.connections == 12 and client.rest_lanes_ready == 5 and client.rest_over_websocket)
    first, second = await asterisk.call(), await asterisk.call()
    asterisk.silent_apps = {APP}
    sent, answered = asterisk.ws_received, asterisk.ws_requests
    stuck = asyncio.create_task(client.answer(first.id))
    await until(lambda: asterisk.ws_received == sent + 1)
    await client.answer(second.id)
    assert second.state == "Up" and asterisk.ws_requests == answered + 1
    stuck.cancel()
