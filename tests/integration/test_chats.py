"""Web chats through the ACD's router, on the real controller process (and its database, SQLite and
PostgreSQL): a chat opened over REST is offered to a logged-in agent, accepted, and written in both
ways (REST and the customer's websocket); chats stack on one agent up to its chat capacity and the
next waits for a free place; a closed chat keeps its transcript. SIGKILLed with chats answered,
offered and waiting, the controller comes back with all of them where they were.

Chats need no SIP: Asterisk runs (the controller's fixture starts it) but carries nothing here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.db import Database

from .conftest import ControllerUnderTest, poll

pytestmark = pytest.mark.integration

ACD = """
queues:
  - {name: chats, channels: [chat], strategy: linear, wrapup_seconds: 0, ring_timeout: 300}
  - {name: chats-restart, channels: [chat], wrapup_seconds: 0, ring_timeout: 300}
  - {name: chats-idle, channels: [chat], wrapup_seconds: 0, ring_timeout: 300, chat_idle_timeout: 2}
agents:
  - {id: chatter, name: Chat Agent, capacity: {voice: 0, video: 0, chat: 2}, queues: [chats]}
  - {id: survivor, name: Chat Survivor, capacity: {voice: 0, video: 0, chat: 2}, queues: [chats-restart]}
  - {id: idler, name: Chat Idler, capacity: {voice: 0, video: 0, chat: 1}, queues: [chats-idle]}
"""


class Web:
    """The controller's API: as the website's backend and agents (API token) or as a customer."""

    def __init__(self, controller: ControllerUnderTest, session: aiohttp.ClientSession) -> None:
        self.controller, self.session = controller, session
        secrets = json.loads((Path(controller.env["IVRPOWERS_STATE_DIR"]) / "secrets.json").read_text())
        self.token = secrets["api_token"]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.controller.web_port}"

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        async with self.session.request(method, self.base + path, json=body, headers=headers) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def ok(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        status, answer = await self.call(method, path, body, token)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    async def open_chat(self, queue: str, name: str, message: str) -> tuple[str, str]:
        made = await self.ok("POST", "/api/chats", {"customer_name": name, "queue": queue, "message": message})
        return made["id"], made["customer_token"]

    async def customer_socket(self, chat_id: str, token: str) -> aiohttp.ClientWebSocketResponse:
        return await self.session.ws_connect(f"{self.base}/api/chats/{chat_id}/ws",
                                             protocols=("ivrpowers.chat", f"bearer.{token}"))

    async def offered(self, agent: str) -> list[str]:
        return [c["id"] for c in (await self.ok("GET", f"/api/agents/{agent}/chats"))["offered"]]

    async def texts(self, chat_id: str) -> list[str]:
        return [m["text"] for m in (await self.ok("GET", f"/api/chats/{chat_id}"))["messages"]]


@pytest.fixture
async def web(controller: ControllerUnderTest, tmp_path: Path) -> AsyncIterator[Web]:
    definitions = tmp_path / "chats.yaml"
    definitions.write_text(ACD)
    controller.ivrpowers("acd", "apply", str(definitions))
    async with aiohttp.ClientSession() as session:
        yield Web(controller, session)


async def until_socket_says(ws: aiohttp.ClientWebSocketResponse, wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """The websocket's events up to the first that has every key of `wanted` (30 s at most)."""
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            event = await ws.receive_json()
            seen.append(event)
            if all(event.get(k) == v for k, v in wanted.items()):
                return

    try:
        await asyncio.wait_for(read(), 30)
    except TimeoutError:
        raise AssertionError(f"the websocket never said {wanted}: {seen}") from None
    return seen


async def test_chats_are_offered_answered_written_both_ways_and_stack_within_capacity(web: Web) -> None:
    await web.ok("POST", "/api/agents/chatter/login")
    # The agent's desktop learns of offers from the ACD's event stream.
    stream = await web.session.ws_connect(f"{web.base}/api/events?kinds=task_offered&agent=chatter",
                                          headers={"Authorization": f"Bearer {web.token}"})
    await stream.receive_json()  # the statistics' snapshot comes first
    first, first_token = await web.open_chat("chats", "Lucía", "Hello, my order is late")
    offer = await asyncio.wait_for(stream.receive_json(), 30)
    assert (offer["kind"], offer["task"], offer["agent"], offer["channel"], offer["queue"]) == (
        "task_offered", first, "chatter", "chat", "chats")
    await stream.close()
    assert await web.offered("chatter") == [first]
    assert (await web.ok("POST", f"/api/agents/chatter/chats/{first}/accept"))["status"] == "active"

    # Both ways: the agent over REST, the customer over REST and over its websocket.
    ws = await web.customer_socket(first, first_token)
    history = await until_socket_says(ws, {"type": "status"})
    assert [e.get("text") for e in history[:-1]] == ["Hello, my order is late", "An agent joined the chat."]
    assert history[-1]["status"] == "active" and history[-1]["agent"] == "chatter"
    await web.ok("POST", f"/api/chats/{first}/messages", {"text": "Let me look it up", "agent": "chatter"})
    assert (await until_socket_says(ws, {"type": "message"}))[-1]["text"] == "Let me look it up"
    await ws.send_json({"type": "message", "text": "Order 12345"})
    echoed = (await until_socket_says(ws, {"type": "message"}))[-1]
    assert (echoed["sender"], echoed["text"]) == ("customer", "Order 12345")
    await web.ok("POST", f"/api/chats/{first}/messages", {"text": "Thanks!"}, token=first_token)
    assert (await web.texts(first))[-2:] == ["Order 12345", "Thanks!"]
    # The customer's token opens this chat only; the API itself needs the API token.
    assert (await web.call("GET", "/api/chats", token=first_token))[0] == 401

    # Capacity 2: a second chat stacks on the agent, a third waits.
    second, _ = await web.open_chat("chats", "Bruno", "Hi")
    assert await web.offered("chatter") == [second]
    await web.ok("POST", f"/api/agents/chatter/chats/{second}/accept")
    third, _ = await web.open_chat("chats", "Carla", "Anyone?")
    assert await web.offered("chatter") == []
    assert (await web.ok("GET", "/api/queues/chats/now"))["waiting"] == 1
    state = await web.ok("GET", "/api/agents/chatter/state")
    assert sorted(state["tasks"]) == sorted([first, second]) and state["state"] == "busy", state
    assert [c["id"] for c in await web.ok("GET", "/api/chats?status=waiting&queue=chats")] == [third]

    # The first closes: the third is offered at once; the closed one keeps its transcript.
    closed = await web.ok("POST", f"/api/agents/chatter/chats/{first}/close")
    assert (closed["status"], closed["outcome"]) == ("closed", "handled")
    assert (await until_socket_says(ws, {"type": "status"}))[-1]["status"] == "closed"
    assert await web.offered("chatter") == [third]
    await web.ok("POST", f"/api/agents/chatter/chats/{third}/accept")
    record = await web.ok("GET", f"/api/chats/{first}")
    assert [(m["sender"], m["text"]) for m in record["messages"]] == [
        ("customer", "Hello, my order is late"), ("system", "An agent joined the chat."),
        ("agent", "Let me look it up"), ("customer", "Order 12345"), ("customer", "Thanks!"),
        ("system", "The agent closed the chat.")]
    assert record["agent"] == "chatter" and record["answered_at"] and record["closed_at"]
    await ws.close()
    for chat in (second, third):
        await web.ok("POST", f"/api/agents/chatter/chats/{chat}/close")
    await web.ok("POST", "/api/agents/chatter/logout")


async def test_an_answered_chat_left_silent_is_closed_and_its_agent_takes_the_next(web: Web) -> None:
    await web.ok("POST", "/api/agents/idler/login")
    silent, token = await web.open_chat("chats-idle", "Gus", "Hello?")
    await web.ok("POST", f"/api/agents/idler/chats/{silent}/accept")
    next_one, _ = await web.open_chat("chats-idle", "Hana", "Me next")  # capacity 1: it waits
    ws = await web.customer_socket(silent, token)
    # Nobody writes: the queue's chat_idle_timeout (2 s) closes it, as the customer's socket hears.
    ended = (await until_socket_says(ws, {"type": "status", "status": "closed"}))[-1]
    assert (ended["outcome"], ended["agent"]) == ("inactive", "idler")
    assert (await web.texts(silent))[-1] == "The chat was closed after 2 seconds without a message."
    assert await poll(lambda: _offered_one(web, next_one), timeout=10)
    await ws.close()
    await web.ok("POST", f"/api/agents/idler/chats/{next_one}/accept")
    await web.ok("POST", f"/api/agents/idler/chats/{next_one}/close")
    await web.ok("POST", "/api/agents/idler/logout")


async def _offered_one(web: Web, chat_id: str) -> bool | None:
    return True if await web.offered("idler") == [chat_id] else None


async def _saved(controller: ControllerUnderTest) -> dict[str, tuple[str, str | None]]:
    """The chats in the router state the controller last saved: id -> (status, agent)."""
    db = Database(controller.db_url)
    try:
        saved = await AcdStateRepository(db).load()
    finally:
        await db.close()
    return {t["task"]["id"]: (t["status"], t["agent"] or (t["offers"][0][0] if t["offers"] else None))
            for t in (saved or {}).get("tasks", []) if t["task"]["queue"] == "chats-restart"}


async def test_chats_answered_offered_and_waiting_outlive_a_controller_crash(web: Web) -> None:
    await web.ok("POST", "/api/agents/survivor/login")
    answered, answered_token = await web.open_chat("chats-restart", "Dora", "Before the crash")
    await web.ok("POST", f"/api/agents/survivor/chats/{answered}/accept")
    await web.ok("POST", f"/api/chats/{answered}/messages", {"text": "I am on it", "agent": "survivor"})
    offered, _ = await web.open_chat("chats-restart", "Emil", "Second")  # rings survivor, its 2nd place
    waiting, _ = await web.open_chat("chats-restart", "Fay", "Third")  # no place left: waits
    expected = {answered: ("active", "survivor"), offered: ("ringing", "survivor"), waiting: ("waiting", None)}

    async def saved() -> bool | None:
        return True if await _saved(web.controller) == expected else None

    assert await poll(saved, timeout=10), await _saved(web.controller)
    await asyncio.to_thread(web.controller.crash_and_restart)

    # All three are back where they were.
    assert [(c["status"], c["agent"]) for c in [await web.ok("GET", f"/api/chats/{i}") for i in expected]] == [
        ("active", "survivor"), ("waiting", None), ("waiting", None)]
    mine = await web.ok("GET", "/api/agents/survivor/chats")
    assert [c["id"] for c in mine["active"]] == [answered] and [c["id"] for c in mine["offered"]] == [offered]
    assert (await web.ok("GET", "/api/queues/chats-restart/now"))["waiting"] == 1

    # Messages still flow on the answered one, both ways.
    ws = await web.customer_socket(answered, answered_token)
    await until_socket_says(ws, {"type": "status", "status": "active"})
    await web.ok("POST", f"/api/chats/{answered}/messages", {"text": "Still here after the restart",
                                                              "agent": "survivor"})
    assert (await until_socket_says(ws, {"type": "message"}))[-1]["text"] == "Still here after the restart"
    await ws.send_json({"type": "message", "text": "Great"})
    assert (await until_socket_says(ws, {"type": "message", "sender": "customer"}))[-1]["text"] == "Great"

    # The offered one is taken; closing the first offers the waiting one, which then flows too.
    await web.ok("POST", f"/api/agents/survivor/chats/{offered}/accept")
    await web.ok("POST", f"/api/agents/survivor/chats/{answered}/close")
    assert await web.offered("survivor") == [waiting]
    await web.ok("POST", f"/api/agents/survivor/chats/{waiting}/accept")
    await web.ok("POST", f"/api/chats/{waiting}/messages", {"text": "Hello Fay", "agent": "survivor"})
    assert (await web.texts(waiting))[-1] == "Hello Fay"
    assert await web.texts(answered) == ["Before the crash", "An agent joined the chat.", "I am on it",
                                         "Still here after the restart", "Great", "The agent closed the chat."]
    await ws.close()
    for chat in (offered, waiting):
        await web.ok("POST", f"/api/agents/survivor/chats/{chat}/close")
    await web.ok("POST", "/api/agents/survivor/logout")
