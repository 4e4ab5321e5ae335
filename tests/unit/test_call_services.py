"""The real flow services: the system clock and the HTTP client, against a local HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from ivrpowers.calls.services import AiohttpHttp, SystemClock
from ivrpowers.flows.services import HttpError


def test_system_clock_is_aware_and_in_its_zone() -> None:
    clock = SystemClock("America/New_York")
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo == ZoneInfo("America/New_York") == clock.tz
    assert before <= now <= datetime.now(UTC)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    release = asyncio.Event()

    async def customer(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"id": request.match_info["id"], "got": body, "auth": request.headers.get("X-Key")})

    async def text(request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy")

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/customers/{id}", customer)
    app.router.add_get("/text", text)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    release.set()
    await runner.cleanup()


async def test_json_request_and_response(server: str) -> None:
    http = AiohttpHttp()
    try:
        response = await http.request("POST", f"{server}/customers/42", headers={"X-Key": "k"}, json={"a": 1})
    finally:
        await http.close()
    assert (response.status, response.ok) == (200, True)
    assert response.body == {"id": "42", "got": {"a": 1}, "auth": "k"}
    assert response.headers["Content-Type"].startswith("application/json")


async def test_an_error_status_is_a_response_with_its_text(server: str) -> None:
    http = AiohttpHttp()
    try:
        response = await http.request("GET", f"{server}/text")
    finally:
        await http.close()
    assert (response.status, response.ok, response.body) == (503, False, "busy")


async def test_timeout_and_refused_connection_are_http_errors(server: str) -> None:
    http = AiohttpHttp()
    try:
        with pytest.raises(HttpError, match=r"no answer within 0\.1s"):
            await http.request("GET", f"{server}/slow", timeout=0.1)
        with pytest.raises(HttpError):
            await http.request("GET", "http://127.0.0.1:1/nothing-listens-here")
        with pytest.raises(HttpError):
            await http.request("GET", "not a url")
    finally:
        await http.close()
