"""`POST /api/call/chat`: the /call page opens a chat with its browser account's password; and the
agent's own token follows and writes in the chats that agent holds (`/api/agents/{id}/chats/{chat}/ws`).

The app is the real one (`create_app`), the accounts real rows checked as the controller checks them
(digests, pjsip.conf's demo accounts), the ACD the real router behind `FakeAcd`, the store SQLite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivrpowers.chats.service import ChatService
from ivrpowers.endpoints.accounts import password_digest, password_matches
from ivrpowers.endpoints.fields import REALM
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.chats import ChatRepository
from ivrpowers.store.db import Database
from ivrpowers.store.endpoints import EndpointRepository
from ivrpowers.store.migrate import upgrade
from ivrpowers.web.agent_auth import MAX_FAILURES, SignedTokens
from ivrpowers.web.app import create_app
from ivrpowers.web.call_chat_api import FIRST_LINE, MAX_OPEN_PER_ACCOUNT, static_browsers

from .test_chats_service import Clock, FakeAcd, make_router

API = "api-t0ken"
SECRETS = {"webrtc_password": "demo browser secret", "agent_password": "demo phone secret"}
BROWSER, PHONE = ("lucia-web", "right horse"), ("desk-7", "battery staple")
KEY = b"k" * 32


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ok", "problems": []}


class Site:
    def __init__(self, client: TestClient[Any, Any], acd: FakeAcd, chats: ChatService) -> None:
        self.client, self.acd, self.chats = client, acd, chats

    async def open(self, user: str, password: str, queue: str = "web", **extra: Any) -> tuple[int, Any, Any]:
        resp = await self.client.post("/api/call/chat", json={"user": user, "password": password, "queue": queue,
                                                              **extra})
        return resp.status, await resp.json(), resp.headers

    async def get(self, path: str, token: str) -> tuple[int, Any]:
        resp = await self.client.get(path, headers={"Authorization": f"Bearer {token}"})
        return resp.status, await resp.json()

    async def post(self, path: str, token: str) -> int:
        return (await self.client.post(path, headers={"Authorization": f"Bearer {token}"})).status


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    endpoints = EndpointRepository(db)
    for (name, password), kind in ((BROWSER, "webrtc"), (PHONE, "phone")):
        await endpoints.add(name, kind, REALM, password_digest(name, REALM, password))

    async def password_ok(endpoint: str, password: str) -> bool:  # as the controller checks (ivrpowers.app)
        record = await endpoints.get(endpoint)
        return password_matches(endpoint, password, digest=record.password_digest if record else None,
                                realm=record.realm if record else REALM, secrets=SECRETS)

    acd = FakeAcd(make_router(), Clock())
    chats = ChatService(ChatRepository(db), acd, clock=acd.clock)
    await chats.start()
    app = create_app(health=Health(), cdrs=CdrRepository(db), api_token=API, chats=chats,
                     agent_tokens=SignedTokens(KEY), password_ok=password_ok)
    async with TestClient(TestServer(app)) as client:
        yield Site(client, acd, chats)
    await chats.close()
    await db.close()


async def test_a_browser_account_opens_a_chat_that_its_token_alone_opens(site: Site) -> None:
    site.acd.login("ana")
    status, made, _ = await site.open(*BROWSER, name="Lucía", message="Where is my parcel?")
    assert status == 201, made
    assert set(made) == {"chat_id", "customer_token", "status"} and made["status"] == "waiting"
    chat_id, token = made["chat_id"], made["customer_token"]
    status, mine = await site.get(f"/api/chats/{chat_id}", token)
    assert status == 200 and mine["customer_name"] == "Lucía"
    assert [(m["sender"], m["text"]) for m in mine["messages"]] == [("customer", "Where is my parcel?")]
    status, offers = await site.get("/api/agents/ana/chats", API)
    assert [(c["id"], c["queue"], c["customer_name"]) for c in offers["offered"]] == [(chat_id, "web", "Lucía")]
    # Without a name or a first line: the account's name, and a line saying the chat was asked for.
    status, bare, _ = await site.open(*BROWSER)
    assert status == 201
    status, other = await site.get(f"/api/chats/{bare['chat_id']}", bare["customer_token"])
    assert other["customer_name"] == BROWSER[0] and [m["text"] for m in other["messages"]] == [FIRST_LINE]
    assert (await site.get(f"/api/chats/{chat_id}", bare["customer_token"]))[0] == 401


async def test_a_wrong_password_opens_nothing(site: Site) -> None:
    site.acd.login("ana")
    status, body, _ = await site.open(BROWSER[0], "wrong horse")
    assert status == 401 and "password" in body["error"]
    status, nobody, _ = await site.open("nobody", "wrong horse")
    assert status == 401 and nobody == body  # the same answer whether the account exists or not
    assert site.chats.live == {}


async def test_only_a_browser_account_opens_chats(site: Site) -> None:
    site.acd.login("ana")
    # A phone made by `endpoint create` and the demo's pjsip.conf phone: right passwords, not browsers.
    for user, password in (PHONE, ("agent1", SECRETS["agent_password"])):
        status, body, _ = await site.open(user, password)
        assert status == 403 and "browser" in body["error"], (user, body)
    # A trunk's (or any pjsip.conf section's) password is no account password at all.
    assert (await site.open("trunk", SECRETS["webrtc_password"]))[0] == 401
    assert site.chats.live == {}
    # The demo's browser account, which pjsip.conf defines (no row), may.
    assert "webrtc1" in static_browsers()
    assert (await site.open("webrtc1", SECRETS["webrtc_password"]))[0] == 201


async def test_wrong_passwords_lock_the_account_out_for_a_while(site: Site) -> None:
    site.acd.login("ana")
    for _ in range(MAX_FAILURES):
        assert (await site.open(BROWSER[0], "guess"))[0] == 401
    status, body, headers = await site.open(*BROWSER)  # the right password, too late
    assert status == 429 and "try again" in body["error"] and int(headers["Retry-After"]) > 0
    assert (await site.open(*PHONE))[0] == 403  # another account is not locked by it
    assert site.chats.live == {}


@pytest.mark.parametrize(("queue", "status", "reason"), [
    ("nosuch", 422, "unknown_queue"), ("phones", 422, "not_chat"), ("web", 409, "no_agents")])
async def test_a_queue_that_takes_no_chat_now_is_refused_with_its_reason(
        site: Site, queue: str, status: int, reason: str) -> None:
    if reason != "no_agents":
        site.acd.login("ana")
    got, body, _ = await site.open(*BROWSER, queue=queue)
    assert (got, body.get("reason")) == (status, reason), body
    assert site.chats.live == {}


@pytest.mark.parametrize("body", [
    {"user": "Lucia!", "password": "x", "queue": "web"}, {"user": BROWSER[0], "queue": "web"},
    {"user": BROWSER[0], "password": "x", "queue": "web", "name": "a\nb"},
    {"user": BROWSER[0], "password": "x", "queue": "web", "message": "  "},
    {"user": BROWSER[0], "password": 5, "queue": "web"}, {"user": BROWSER[0], "password": "x", "queue": "web",
                                                           "token": "x"}])
async def test_a_malformed_request_is_refused_before_any_password_check(site: Site, body: dict[str, Any]) -> None:
    resp = await site.client.post("/api/call/chat", json=body)
    assert resp.status == 422, await resp.text()
    for _ in range(MAX_FAILURES):  # none of those counted as a wrong password
        assert (await site.client.post("/api/call/chat", json=body)).status == 422
    site.acd.login("ana")
    assert (await site.open(*BROWSER))[0] == 201
    assert (await site.client.post("/api/call/chat", data=b"{")).status == 400


async def test_an_account_holds_a_few_open_chats_at_most(site: Site) -> None:
    site.acd.login("ana")
    tokens = []
    for _ in range(MAX_OPEN_PER_ACCOUNT):
        status, made, _ = await site.open(*BROWSER)
        assert status == 201
        tokens.append((made["chat_id"], made["customer_token"]))
    status, body, _ = await site.open(*BROWSER)
    assert status == 429 and "open chats" in body["error"]
    chat_id, token = tokens[0]
    assert await site.post(f"/api/chats/{chat_id}/leave", token) == 200
    assert (await site.open(*BROWSER))[0] == 201


async def _frames(ws: aiohttp.ClientWebSocketResponse, until_type: str, until_text: str | None = None) -> list[Any]:
    seen: list[Any] = []
    while True:
        frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        seen.append(frame)
        if frame["type"] == until_type and (until_text is None or frame.get("text") == until_text
                                            or frame.get("status") == until_text):
            return seen


async def test_the_agent_token_follows_and_writes_in_the_chats_its_agent_holds(site: Site) -> None:
    site.acd.login("ana")
    _, made, _ = await site.open(*BROWSER, name="Lucía", message="hello")
    chat_id, customer = made["chat_id"], made["customer_token"]
    tokens = SignedTokens(KEY)
    ana, bo = tokens.issue("ana")[0], tokens.issue("bo")[0]
    path = f"/api/agents/ana/chats/{chat_id}/ws"

    async def connect(token: str, at: str = path) -> aiohttp.ClientWebSocketResponse:
        return await site.client.ws_connect(at, protocols=("ivrpowers.chat", f"bearer.{token}"))

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(ana)  # offered, not yet accepted
    assert refused.value.status == 409
    assert await site.post(f"/api/agents/ana/chats/{chat_id}/accept", ana) == 200
    for token, at in ((bo, path), (bo, f"/api/agents/bo/chats/{chat_id}/ws"), (customer, path)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(token, at)  # another agent's token; the agent who does not hold it; the customer's
        assert refused.value.status in (401, 409), (token, at)

    agent_ws = await connect(ana)
    customer_ws = await site.client.ws_connect(f"/api/chats/{chat_id}/ws",
                                               protocols=("ivrpowers.chat", f"bearer.{customer}"))
    assert agent_ws.protocol == "ivrpowers.chat"
    history = await _frames(agent_ws, "status")
    assert [f.get("text") for f in history[:-1]] == ["hello", "An agent joined the chat."]
    await _frames(customer_ws, "status")
    await agent_ws.send_json({"type": "message", "text": "Hi Lucía, Ana here"})
    line = (await _frames(customer_ws, "message", "Hi Lucía, Ana here"))[-1]
    assert (line["sender"], line["agent"]) == ("agent", "ana")
    await customer_ws.send_json({"type": "message", "text": "thanks"})
    assert (await _frames(agent_ws, "message", "thanks"))[-1]["sender"] == "customer"

    assert await site.post(f"/api/chats/{chat_id}/leave", customer) == 200
    assert (await _frames(agent_ws, "status", "closed"))[-1]["status"] == "closed"
    assert (await agent_ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    # The chat it held stays readable to it, closed.
    again = await connect(ana)
    assert (await _frames(again, "status"))[-1]["status"] == "closed"
    await customer_ws.close()
