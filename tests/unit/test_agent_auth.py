"""Agents sign in with their own account: a token that speaks for that agent alone, throttled
wrong passwords, and the pages served open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from ivrpowers.acd.definitions import AgentDef
from ivrpowers.config import Settings
from ivrpowers.endpoints.accounts import password_digest, password_matches
from ivrpowers.endpoints.fields import REALM
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.web.agent_api import SipServer
from ivrpowers.web.agent_auth import MAX_FAILURES, SignedTokens, Throttle, agent_may
from ivrpowers.web.app import create_app

API = "api-t0ken"
PASSWORDS = {"ana-browser": "right horse", "bob-browser": "battery staple"}


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ok", "problems": []}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_speaks_for_its_agent_until_it_expires_and_cannot_be_forged() -> None:
    clock = Clock()
    tokens = SignedTokens(b"k" * 32, ttl=60, clock=clock)
    token, expires = tokens.issue("ana")
    assert tokens.verify(token) == "ana" and expires == clock.now + 60
    forged = token.replace("agent.ana.", "agent.bob.")
    assert tokens.verify(forged) is None
    assert SignedTokens(b"x" * 32, clock=clock).verify(token) is None  # another installation's key
    assert tokens.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert tokens.verify("Bearer nonsense") is None
    clock.now += 61
    assert tokens.verify(token) is None


def test_an_agent_token_reaches_its_own_routes_only() -> None:
    assert agent_may("ana", "GET", "/api/agents/ana/state")
    assert agent_may("ana", "POST", "/api/agents/ana/pause")
    assert agent_may("ana", "POST", "/api/agents/ana/chats/chat-" + "0" * 32 + "/accept")
    assert agent_may("ana", "GET", "/api/events")
    assert not agent_may("ana", "GET", "/api/agents/bob/state")
    assert not agent_may("ana", "PUT", "/api/agents/ana")  # its definition is the admin's
    assert not agent_may("ana", "GET", "/api/calls")
    assert not agent_may("an.", "GET", "/api/agents/ana/state")  # an id is not a pattern


def test_wrong_passwords_lock_the_name_out_for_a_while() -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(MAX_FAILURES - 1):
        throttle.failed("ana")
    assert throttle.locked("ana") == 0
    throttle.failed("ana")
    assert throttle.locked("ana") > 0 and throttle.locked("bob") == 0
    clock.now += 61
    assert throttle.locked("ana") == 0


def test_passwords_are_checked_against_the_digest_or_the_demo_secret() -> None:
    digest = password_digest("ana-browser", REALM, "right horse")
    assert password_matches("ana-browser", "right horse", digest=digest, realm=REALM, secrets={})
    assert not password_matches("ana-browser", "wrong", digest=digest, realm=REALM, secrets={})
    secrets = {"webrtc_password": "s3cret"}
    assert password_matches("webrtc1", "s3cret", digest=None, realm=REALM, secrets=secrets)
    assert not password_matches("webrtc1", "", digest=None, realm=REALM, secrets={})
    assert not password_matches("unknown", "s3cret", digest=None, realm=REALM, secrets=secrets)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    acd = AcdRepository(db)
    await acd.put_agent(AgentDef(id="ana", name="Ana", endpoint="ana-browser"))
    await acd.put_agent(AgentDef(id="bob", name="Bob", endpoint="bob-browser"))

    async def password_ok(endpoint: str, password: str) -> bool:
        return PASSWORDS.get(endpoint) == password

    app = create_app(health=Health(), cdrs=CdrRepository(db), api_token=API, acd=acd,
                     sip=SipServer("ws://127.0.0.1:8088/ws", "127.0.0.1"), agent_tokens=SignedTokens(b"k" * 32),
                     password_ok=password_ok)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await db.close()


async def test_an_agent_signs_in_and_its_token_opens_its_own_routes_only(client: TestClient[Any, Any]) -> None:
    wrong = await client.post("/api/agent/login", json={"agent": "ana", "password": "nope"})
    assert wrong.status == 401
    nobody = await client.post("/api/agent/login", json={"agent": "zed", "password": "nope"})
    assert nobody.status == 401 and await nobody.json() == await wrong.json()  # no hint who exists
    signed = await client.post("/api/agent/login", json={"agent": "ana", "password": "right horse"})
    assert signed.status == 200
    body = await signed.json()
    assert body["agent"]["endpoint"] == "ana-browser" and body["agent"]["supervisor"] is False
    assert body["sip"] == {"websocket": "ws://127.0.0.1:8088/ws", "domain": "127.0.0.1", "user": "ana-browser"}
    mine = {"Authorization": f"Bearer {body['token']}"}
    assert (await client.get("/api/agents/ana", headers=mine)).status == 200
    assert (await client.get("/api/agents/bob", headers=mine)).status == 401
    assert (await client.get("/api/calls", headers=mine)).status == 401
    assert (await client.put("/api/agents/ana", json={"name": "Eve"}, headers=mine)).status == 401


async def test_sign_in_is_throttled_after_wrong_passwords(client: TestClient[Any, Any]) -> None:
    for _ in range(MAX_FAILURES):
        assert (await client.post("/api/agent/login", json={"agent": "bob", "password": "x"})).status == 401
    locked = await client.post("/api/agent/login", json={"agent": "bob", "password": "battery staple"})
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0


async def test_the_call_page_is_served_open_with_where_sip_is(client: TestClient[Any, Any]) -> None:
    page = await client.get("/call")
    assert page.status == 200
    assert '<meta name="ivrpowers-sip" content="ws://127.0.0.1:8088/ws" data-domain="127.0.0.1">' in await page.text()
    assert (await client.get("/static/call.js")).status == 200
    for outside in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py"):
        assert (await client.get(outside)).status in (401, 403, 404), outside  # never the file


async def test_only_the_call_page_may_be_framed_by_other_sites(client: TestClient[Any, Any]) -> None:
    call = await client.get("/call")
    assert call.headers["Content-Security-Policy"] == "frame-ancestors *" and "X-Frame-Options" not in call.headers
    for page in ("/agent", "/wallboard"):
        served = await client.get(page)
        assert served.status == 200, page
        assert served.headers["Content-Security-Policy"] == "frame-ancestors 'none'", page
        assert served.headers["X-Frame-Options"] == "DENY", page


async def test_the_call_page_s_framers_are_a_setting(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    origins = Settings(embed_origins="https://www.example.com https://*.shop.example.com").embed_origins
    app = create_app(health=Health(), cdrs=CdrRepository(db), api_token=API,
                     sip=SipServer("ws://127.0.0.1:8088/ws", "127.0.0.1"), embed_origins=origins)
    async with TestClient(TestServer(app)) as test_client:
        call = await test_client.get("/call")
        assert call.headers["Content-Security-Policy"] == (
            "frame-ancestors https://www.example.com https://*.shop.example.com")
    await db.close()


@pytest.mark.parametrize("value", ["", "https://a.example\r\nSet-Cookie: x=1", "https://a.example; script-src *",
                                   "javascript:alert(1)", "'unsafe-inline'"])
def test_a_setting_that_is_not_origins_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="embed_origins"):
        Settings(embed_origins=value)
