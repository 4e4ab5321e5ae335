"""The chat API: who may do what with which token, messages both ways over REST and the customer's
websocket, agents' actions, and what bad input gets (a 4xx, never a 5xx). The ACD is the real
router behind `FakeAcd` (see test_chats_service.py); the store is SQLite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from ivrpowers.chats.service import ChatService
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.chats import ChatRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.web.app import create_app

from .test_chats_service import Clock, FakeAcd, make_router

TOKEN = "api-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ok", "problems": []}


class Api:
    def __init__(self, client: TestClient[Any, Any], acd: FakeAcd, chats: ChatService) -> None:
        self.client, self.acd, self.chats = client, acd, chats

    async def call(self, method: str, path: str, token: str | None = TOKEN, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.request(method, path, headers=headers, **kwargs)
        text = await resp.text()
        return resp.status, json.loads(text) if text else None

    async def new_chat(self, **body: Any) -> tuple[str, str]:
        status, made = await self.call("POST", "/api/chats", json={"customer_name": "Lucía", "queue": "web",
                                                                   "message": "hello", **body})
        assert status == 201, made
        return made["id"], made["customer_token"]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    acd = FakeAcd(make_router(), Clock())
    chats = ChatService(ChatRepository(db), acd, clock=acd.clock)
    await chats.start()
    app = create_app(health=Health(), cdrs=CdrRepository(db), api_token=TOKEN, chats=chats)
    async with TestClient(TestServer(app)) as client:
        yield Api(client, acd, chats)
    await chats.close()
    await db.close()


async def test_a_backend_opens_a_chat_and_only_its_customer_token_opens_it(api: Api) -> None:
    api.acd.login("ana")
    status, body = await api.call("POST", "/api/chats", token=None,
                                  json={"customer_name": "A", "queue": "web", "message": "hi"})
    assert status == 401 and "token" in body["error"]
    status, made = await api.call("POST", "/api/chats", json={"customer_name": "Lucía", "queue": "web",
                                                               "skills": {}, "priority": 5, "message": "hola"})
    assert status == 201 and made["status"] == "waiting" and len(made["customer_token"]) >= 40
    chat_id, customer = made["id"], made["customer_token"]
    other_id, other_token = await api.new_chat()

    status, mine = await api.call("GET", f"/api/chats/{chat_id}", token=customer)
    assert status == 200 and set(mine) == {"id", "status", "customer_name", "messages"}
    assert [m["text"] for m in mine["messages"]] == ["hola"]
    for token in (other_token, customer[:-1], None, "x"):
        assert (await api.call("GET", f"/api/chats/{chat_id}", token=token))[0] == 401
    assert (await api.call("POST", f"/api/chats/{other_id}/messages", token=customer, json={"text": "x"}))[0] == 401
    status, full = await api.call("GET", f"/api/chats/{chat_id}")
    assert status == 200 and (full["queue"], full["priority"], full["offers"].keys()) == ("web", 5, {"ana"})
    assert (await api.call("GET", f"/api/chats/chat-{'0' * 32}"))[0] == 404
    assert (await api.call("GET", "/api/chats/nonsense"))[0] == 404
    assert (await api.call("GET", "/api/chats/nonsense", token=customer))[0] == 401


async def test_an_agent_accepts_writes_and_closes_and_the_transcript_stays(api: Api) -> None:
    api.acd.login("ana")
    chat_id, customer = await api.new_chat()
    status, mine = await api.call("GET", "/api/agents/ana/chats")
    assert status == 200 and [c["id"] for c in mine["offered"]] == [chat_id] and mine["active"] == []
    assert (await api.call("POST", f"/api/chats/{chat_id}/messages", json={"text": "early", "agent": "ana"}))[0] == 409
    status, chat = await api.call("POST", f"/api/agents/ana/chats/{chat_id}/accept")
    assert status == 200 and (chat["status"], chat["agent"]) == ("active", "ana")
    assert (await api.call("POST", f"/api/agents/bo/chats/{chat_id}/accept"))[0] == 409
    status, line = await api.call("POST", f"/api/chats/{chat_id}/messages", json={"text": "Hi, Ana here",
                                                                                 "agent": "ana"})
    assert status == 201 and (line["sender"], line["agent"]) == ("agent", "ana")
    assert (await api.call("POST", f"/api/chats/{chat_id}/messages", token=customer, json={"text": "thanks"}))[0] \
        == 201
    assert (await api.call("POST", f"/api/chats/{chat_id}/messages", json={"text": "x", "agent": "bo"}))[0] == 409
    assert [c["id"] for c in (await api.call("GET", "/api/agents/ana/chats"))[1]["active"]] == [chat_id]
    status, chat = await api.call("POST", f"/api/agents/ana/chats/{chat_id}/close")
    assert status == 200 and (chat["status"], chat["outcome"]) == ("closed", "handled")
    assert (await api.call("POST", f"/api/chats/{chat_id}/messages", token=customer, json={"text": "?"}))[0] == 409

    status, record = await api.call("GET", f"/api/chats/{chat_id}?after=1")
    assert [(m["sender"], m["text"]) for m in record["messages"]] == [
        ("system", "An agent joined the chat."), ("agent", "Hi, Ana here"), ("customer", "thanks"),
        ("system", "The agent closed the chat.")]
    status, closed = await api.call("GET", "/api/chats?status=closed")
    assert status == 200 and [c["id"] for c in closed] == [chat_id]
    assert (await api.call("GET", "/api/chats?status=waiting&queue=web"))[1] == []
    assert (await api.call("GET", "/api/agents/nobody/chats"))[0] == 404
    assert (await api.call("POST", f"/api/agents/ana/chats/{chat_id}/snooze"))[0] == 404


async def test_a_declined_chat_goes_on_and_a_customer_may_leave(api: Api) -> None:
    api.acd.login("ana")
    api.acd.login("bo")
    chat_id, customer = await api.new_chat()
    assert (await api.call("POST", f"/api/agents/ana/chats/{chat_id}/decline"))[0] == 204
    assert (await api.call("POST", f"/api/agents/ana/chats/{chat_id}/decline"))[0] == 409
    assert [c["id"] for c in (await api.call("GET", "/api/agents/bo/chats"))[1]["offered"]] == [chat_id]
    status, left = await api.call("POST", f"/api/chats/{chat_id}/leave", token=customer)
    assert status == 200 and (left["status"], left["outcome"]) == ("closed", "left")
    assert (await api.call("GET", "/api/agents/bo/chats"))[1]["offered"] == []


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"customer_name": "A", "queue": "web", "message": "a\x00b"}, 422, "message: String should match pattern"),
    ({"customer_name": "A\nB", "queue": "web", "message": "hi"}, 422, "customer_name"),
    ({"customer_name": "A", "queue": "web", "message": "x" * 4001}, 422, "message"),
    ({"customer_name": "A", "queue": "web", "message": "   "}, 422, "blank"),
    ({"customer_name": "", "queue": "web", "message": "hi"}, 422, "customer_name"),
    ({"customer_name": "A", "queue": "Web!", "message": "hi"}, 422, "queue"),
    ({"customer_name": "A", "queue": "web", "message": "hi", "priority": "1"}, 422, "priority"),
    ({"customer_name": "A", "queue": "web", "message": "hi", "skills": {"x": 11}}, 422, "skills"),
    ({"customer_name": "A", "queue": "web", "message": "hi", "extra": 1}, 422, "extra"),
    ({"customer_name": "A", "queue": "nowhere", "message": "hi"}, 422, "no queue"),
    ({"customer_name": "A", "queue": "phones", "message": "hi"}, 422, "does not take chat"),
    ({"customer_name": "A", "queue": "web", "priority": 500}, 422, "(and 1 more in problems)"),  # and no message
    ([1], 422, "JSON object"),
])
async def test_bad_chats_are_refused_with_what_is_wrong(api: Api, body: Any, status: int, says: str) -> None:
    api.acd.login("ana")
    got, answer = await api.call("POST", "/api/chats", json=body)
    assert got == status and says in answer["error"], answer


async def test_bad_input_elsewhere_is_a_4xx(api: Api) -> None:
    api.acd.login("ana")
    chat_id, customer = await api.new_chat()
    raw = await api.client.post(f"/api/chats/{chat_id}/messages", data=b'{"text": "\\ud800"}',
                                headers={"Authorization": f"Bearer {customer}"})
    assert raw.status == 422
    assert (await api.client.post("/api/chats", data=b"\xff{", headers=AUTH)).status == 400
    assert (await api.call("POST", "/api/chats", data=b"{" + b" " * 70_000 + b"}"))[0] == 413
    assert (await api.call("POST", f"/api/chats/{chat_id}/messages", token=customer,
                           json={"text": "hi", "agent": "ana"}))[0] == 422
    assert (await api.call("POST", f"/api/chats/{chat_id}/messages", json={"text": "hi"}))[0] == 422
    for query in ("after=-1", "after=x", f"after={2**31}", "after=²"):
        assert (await api.call("GET", f"/api/chats/{chat_id}?{query}"))[0] == 400, query
    for query in ("status=open", "limit=0", "limit=1001", "queue=a%00b"):
        assert (await api.call("GET", f"/api/chats?{query}"))[0] == 400, query
    assert (await api.call("GET", f"/api/chats/{chat_id}/ws"))[0] == 426  # not an upgrade
    assert (await api.call("GET", f"/api/chats/{chat_id}/ws", token=None))[0] == 401


async def _events(ws: Any, count: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(ws.receive_json(), 5) for _ in range(count)]


async def test_the_customers_websocket_carries_messages_both_ways(api: Api) -> None:
    api.acd.login("ana")
    chat_id, customer = await api.new_chat()
    await api.call("POST", f"/api/chats/{chat_id}/messages", token=customer, json={"text": "anyone?"})
    ws = await api.client.ws_connect(f"/api/chats/{chat_id}/ws", headers={"Authorization": f"Bearer {customer}"})
    history = await _events(ws, 3)
    assert [(e["type"], e.get("text") or e.get("status")) for e in history] == [
        ("message", "hello"), ("message", "anyone?"), ("status", "waiting")]
    await api.call("POST", f"/api/agents/ana/chats/{chat_id}/accept")
    await api.call("POST", f"/api/chats/{chat_id}/messages", json={"text": "Ana here", "agent": "ana"})
    joined, active, said = await _events(ws, 3)
    assert (joined["text"], active["status"], said["text"], said["sender"]) == (
        "An agent joined the chat.", "active", "Ana here", "agent")
    await ws.send_str(json.dumps({"type": "message", "text": "my order 123"}))
    echoed = (await _events(ws, 1))[0]
    assert (echoed["sender"], echoed["text"]) == ("customer", "my order 123")
    record = (await api.call("GET", f"/api/chats/{chat_id}"))[1]
    assert record["messages"][-1]["id"] == echoed["id"]
    await ws.send_str("not json")
    await ws.send_str(json.dumps({"type": "message", "text": "x" * 5000}))
    errors = await _events(ws, 2)
    assert [e["type"] for e in errors] == ["error", "error"]

    # A browser cannot set headers: its token comes as a subprotocol, after what it already has.
    browser = await api.client.ws_connect(f"/api/chats/{chat_id}/ws?after={echoed['id']}",
                                          protocols=("ivrpowers.chat", f"bearer.{customer}"))
    assert browser.protocol == "ivrpowers.chat"
    assert await _events(browser, 1) == [{"type": "status", "status": "active", "outcome": None, "agent": "ana"}]
    await api.call("POST", f"/api/agents/ana/chats/{chat_id}/close")
    for socket in (ws, browser):
        closing = await _events(socket, 2)
        assert closing[1] == {"type": "status", "status": "closed", "outcome": "handled", "agent": "ana"}
        assert (await asyncio.wait_for(socket.receive(), 5)).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    with pytest.raises(Exception):  # noqa: B017  (the handshake is refused: 401)
        await api.client.ws_connect(f"/api/chats/{chat_id}/ws", protocols=("ivrpowers.chat", "bearer.wrong"))


async def test_the_openapi_document_describes_every_chat_route(api: Api) -> None:
    document = (await api.call("GET", "/api/openapi.json", token=None))[1]
    app: web.Application = api.client.app
    served = {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
              if route.resource is not None and route.method != "HEAD"}
    described = {(method, path) for path, ops in document["paths"].items() for method in ops}
    chat_routes = {r for r in served if "chats" in r[1]}
    assert len(chat_routes) == 9 and chat_routes <= described
    create = document["paths"]["/api/chats"]["post"]
    schema = document["components"]["schemas"][create["requestBody"]["content"]["application/json"]["schema"]
                                               ["$ref"].rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"customer_name", "queue", "message"}
    assert set(create["responses"]) >= {"201", "401", "409", "422", "429"}
