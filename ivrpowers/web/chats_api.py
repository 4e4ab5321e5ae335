"""REST and websocket for web chats (`chats.service.ChatService`).

Who may do what (Twilio's model): a website's backend holds the API token; it opens a chat for its
visitor (`POST /api/chats`) and hands the visitor the chat's `customer_token`, which opens that
chat only: read it, write to it, follow it over a websocket, leave it. Those routes authenticate
themselves (`authenticates_itself`: the app's token check lets them through) and take either
token. Agents act with the API token: accept, decline, close, and write as the agent who holds it.

An agent's own token (the /agent page's, `agent_auth`) acts for that agent alone: accept, decline,
close, and follow and write in a chat it holds over `/api/agents/{id}/chats/{chat}/ws` (a route of
the agent's, checked by the app like its others, so the chat's own routes never see agent tokens).
The /call page opens a chat with its SIP account (`call_chat_api`, `CALL_CHAT_PATH`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ivrpowers.chats.live import Listener
from ivrpowers.chats.schemas import (
    AGENT_CHATS,
    CHAT,
    CHAT_WITH_TRANSCRIPT,
    CREATED,
    MAX_TEXT,
    MESSAGE,
    NewChat,
    NewMessage,
    body_schema,
)
from ivrpowers.chats.service import ChatError, ChatService
from ivrpowers.web.agent_auth import AGENT
from ivrpowers.web.json_body import json_error, read_json
from ivrpowers.web.openapi import ERROR, Api, Param, Schema

log = logging.getLogger("ivrpowers.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Who = Literal["api", "customer"]

CHAT_PATHS = {"/api/chats/{chat_id}", "/api/chats/{chat_id}/messages", "/api/chats/{chat_id}/leave",
              "/api/chats/{chat_id}/ws"}
CALL_CHAT_PATH = "/api/call/chat"  # checks the SIP account's password itself (call_chat_api)
SUBPROTOCOL = "ivrpowers.chat"  # a browser offers it beside `bearer.<customer token>`
_STATUS = {"not_found": 404, "conflict": 409, "full": 429}
_REFUSED = {"no_agents": 409, "unknown_queue": 422, "not_chat": 422, "invalid": 422}
_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}
_CHAT_ID = {"type": "string", "pattern": "^chat-[0-9a-f]{32}$"}
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_CHAT_ID_RE = re.compile(r"chat-[0-9a-f]{32}")
_LIMIT = 1000
_MAX_ID = 2**31 - 1  # message ids are 32-bit integers in PostgreSQL


def authenticates_itself(request: web.Request) -> bool:
    """Whether the request is for a chat route that checks its own token (API or customer), or
    the /call page's, which checks a SIP account's password."""
    resource = request.match_info.route.resource
    return resource is not None and (resource.canonical in CHAT_PATHS or resource.canonical == CALL_CHAT_PATH)


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound,
    409: web.HTTPConflict, 422: web.HTTPUnprocessableEntity, 426: web.HTTPUpgradeRequired,
    429: web.HTTPTooManyRequests, 503: web.HTTPServiceUnavailable}


def api_error(status: int, message: str, **extra: Any) -> web.HTTPException:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {"Upgrade": "websocket"} if status == 426 else None
    return json_error(_ERRORS[status], message, headers=headers, **extra)


def _encoded(text: str) -> bytes:
    # aiohttp keeps header bytes that are not UTF-8 as lone surrogates.
    return text.encode("utf-8", "surrogatepass")


def guarded(handler: Handler) -> Handler:
    """ChatError and an absent database as JSON errors (4xx, 503), never a 500."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ChatError as exc:
            status = _REFUSED.get(exc.reason or "", 422) if exc.kind == "refused" else _STATUS.get(exc.kind, 409)
            extra = {"reason": exc.reason} if exc.reason else {}
            raise api_error(status, str(exc), **extra) from None
        except (SQLAlchemyError, OSError) as exc:
            log.warning("chat API: database unavailable (%s: %s)", type(exc).__name__, exc)
            raise api_error(503, "the database is not available; try again") from None

    return run


async def read_body(request: web.Request, model: type[BaseModel]) -> Any:
    return _validated(model, await read_json(request))


def _validated(model: type[BaseModel], body: Any) -> Any:
    if not isinstance(body, dict):
        raise api_error(422, "the body must be a JSON object", problems=[])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]
        first = problems[0]
        more = f" (and {len(problems) - 1} more in problems)" if len(problems) > 1 else ""
        raise api_error(422, f"{first['field']}: {first['message']}{more}", problems=problems) from None


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise api_error(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def add_chat_routes(api: Api, chats: ChatService, api_token: str) -> None:
    token = _encoded(api_token)

    async def who(request: web.Request, chat_id: str) -> Who:
        """The API token or this chat's customer token, from the Authorization header or, for a
        browser's websocket, a `bearer.<token>` subprotocol. 401 otherwise."""
        given: str | None = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):]
        else:
            offered = [p.strip() for value in request.headers.getall("Sec-WebSocket-Protocol", [])
                       for p in value.split(",")]
            given = next((p[len("bearer."):] for p in offered if p.startswith("bearer.")), None)
        if given:
            if hmac.compare_digest(_encoded(given), token):
                return "api"
            if _CHAT_ID_RE.fullmatch(chat_id) and await chats.token_matches(chat_id, given):
                return "customer"
        raise api_error(401, "missing or wrong token (the API token, or this chat's customer token)")

    def chat_id_of(request: web.Request) -> str:
        chat_id = request.match_info["chat_id"]
        if not _CHAT_ID_RE.fullmatch(chat_id):
            raise api_error(404, f"there is no chat {chat_id!r}")
        return chat_id

    async def create(request: web.Request) -> web.Response:
        body: NewChat = await read_body(request, NewChat)
        chat, customer_token = await chats.create(body.customer_name, body.queue, body.message, dict(body.skills),
                                                  body.priority)
        return web.json_response({"id": chat.id, "customer_token": customer_token, "status": chat.status},
                                 status=201)

    async def list_chats(request: web.Request) -> web.Response:
        status = request.query.get("status")
        if status is not None and status not in ("waiting", "active", "closed"):
            raise api_error(400, "status is one of waiting, active, closed")
        queue = request.query.get("queue")
        if queue is not None and not _NAME_RE.fullmatch(queue):
            raise api_error(400, f"{queue!r} is not a queue name")
        limit = _query_int(request, "limit", 100, 1, _LIMIT)
        found = await chats.find(status, queue, limit)  # type: ignore[arg-type]  # checked just above
        return web.json_response([chats.view(chat) for chat in found])

    async def get_chat(request: web.Request) -> web.Response:
        chat_id = request.match_info["chat_id"]
        caller = await who(request, chat_id)
        chat_id = chat_id_of(request)
        after = _query_int(request, "after", 0, 0, _MAX_ID)
        chat, messages = await chats.record(chat_id, after)
        lines = [m.to_dict() for m in messages]
        if caller == "customer":
            return web.json_response({"id": chat.id, "status": chat.status, "customer_name": chat.customer_name,
                                      "messages": lines})
        return web.json_response({**chats.view(chat), "messages": lines})

    async def post_message(request: web.Request) -> web.Response:
        chat_id = request.match_info["chat_id"]
        caller = await who(request, chat_id)
        chat_id = chat_id_of(request)
        body: NewMessage = await read_body(request, NewMessage)
        sender, agent = _sender(caller, body.agent)
        message = await chats.post(chat_id, sender, body.text, agent)
        return web.json_response(message.to_dict(), status=201)

    async def leave(request: web.Request) -> web.Response:
        chat_id = request.match_info["chat_id"]
        await who(request, chat_id)
        chat = await chats.leave(chat_id_of(request))
        return web.json_response(chats.view(chat))

    async def agent_action(request: web.Request) -> web.Response:
        agent, chat_id, action = (request.match_info[k] for k in ("agent_id", "chat_id", "action"))
        chat_id = chat_id_of(request)
        if action == "accept":
            return web.json_response(chats.view(await chats.accept(chat_id, agent)))
        if action == "decline":
            await chats.decline(chat_id, agent)
            return web.Response(status=204)
        if action == "close":
            return web.json_response(chats.view(await chats.close_by_agent(chat_id, agent)))
        raise api_error(404, f"no such action {action!r} (accept, decline, close)")

    async def agent_chats(request: web.Request) -> web.Response:
        return web.json_response(chats.agent_chats(request.match_info["agent_id"]))

    async def websocket(request: web.Request) -> web.StreamResponse:
        chat_id = request.match_info["chat_id"]
        caller = await who(request, chat_id)
        ws = _upgradable(request)
        chat_id = chat_id_of(request)
        agent = request.query.get("agent")
        if agent is not None and (caller != "api" or not _NAME_RE.fullmatch(agent)):
            raise api_error(400, "agent (a valid agent id) is for API-token connections")
        return await follow(request, ws, chat_id, caller, agent, holder=None)

    async def agent_websocket(request: web.Request) -> web.StreamResponse:
        # The app let this through with the API token, or with this agent's own token (request[AGENT]).
        agent = request.match_info["agent_id"]
        if AGENT in request and request[AGENT] != agent:
            raise api_error(401, "this token speaks for another agent")
        ws = _upgradable(request)
        chat_id = chat_id_of(request)
        return await follow(request, ws, chat_id, "api", agent, holder=agent)

    async def follow(request: web.Request, ws: web.WebSocketResponse, chat_id: str, caller: Who,
                     agent: str | None, holder: str | None) -> web.StreamResponse:
        """`holder`: the agent must hold the chat (or be the one who held it, closed since)."""
        after = _query_int(request, "after", 0, 0, _MAX_ID)
        chat = await chats.get(chat_id)  # 404 before the upgrade
        if holder is not None and chat.agent_id != holder:
            raise api_error(409, f"chat {chat_id} is not held by agent {holder}")
        listener = chats.listen(chat_id)
        try:
            await ws.prepare(request)
            try:
                await _follow(ws, chats, chat_id, caller, agent, after, listener)
            except (ChatError, SQLAlchemyError, OSError) as exc:  # upgraded: no HTTP error to give now
                log.info("chat %s: websocket ended (%s: %s)", chat_id, type(exc).__name__, exc)
                await ws.close(code=1011)
        finally:
            if listener is not None:
                chats.unlisten(chat_id, listener)
        return ws

    chat_param = Param("chat_id", "path", _CHAT_ID, "the chat's id")
    agent_param = Param("agent_id", "path", _NAME, "the agent's id")
    after_param = Param("after", "query", {"type": "integer", "minimum": 0, "maximum": _MAX_ID},
                        "only the messages after this one (the id of the last one you have)")
    new_chat = api.component("NewChat", body_schema(NewChat))
    new_message = api.component("NewMessage", body_schema(NewMessage))
    invalid: Schema = {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "problems": {"type": "array"}, "reason": {"type": "string"}}}
    customer = " (the API token or the chat's customer token)"
    api.add("POST", "/api/chats", guarded(create), body=new_chat,
            summary="Open a chat for a website's visitor; give them the customer_token it returns",
            returns={201: CREATED, 400: ERROR, 409: invalid, 413: ERROR, 422: invalid, 429: ERROR, 503: ERROR})
    api.add("GET", "/api/chats", guarded(list_chats), summary="Chats, open ones oldest first, closed newest first",
            params=[Param("status", "query", {"type": "string", "enum": ["waiting", "active", "closed"]}),
                    Param("queue", "query", _NAME),
                    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": _LIMIT})],
            returns={200: {"type": "array", "items": CHAT}, 400: ERROR, 503: ERROR})
    api.add("GET", "/api/chats/{chat_id}", guarded(get_chat), params=[chat_param, after_param],
            summary="A chat with its transcript" + customer,
            returns={200: CHAT_WITH_TRANSCRIPT, 400: ERROR, 404: ERROR, 503: ERROR})
    api.add("POST", "/api/chats/{chat_id}/messages", guarded(post_message), params=[chat_param], body=new_message,
            summary="Write in a chat: the customer, or (API token) the agent who holds it" + customer,
            returns={201: MESSAGE, 400: ERROR, 404: ERROR, 409: ERROR, 413: ERROR, 422: invalid, 429: ERROR,
                     503: ERROR})
    api.add("POST", "/api/chats/{chat_id}/leave", guarded(leave), params=[chat_param],
            summary="The customer leaves: a waiting chat leaves its queue, an answered one ends" + customer,
            returns={200: CHAT, 404: ERROR, 409: ERROR, 503: ERROR})
    api.add("GET", "/api/chats/{chat_id}/ws", guarded(websocket),
            params=[chat_param, after_param, Param("agent", "query", _NAME, "API token: write as this agent")],
            summary="Follow a chat: its transcript, then every message and status change; send "
                    '{"type": "message", "text": ...}' + customer,
            returns={101: None, 400: ERROR, 404: ERROR, 426: ERROR, 429: ERROR, 503: ERROR})
    api.add("GET", "/api/agents/{agent_id}/chats/{chat_id}/ws", guarded(agent_websocket),
            params=[agent_param, chat_param, after_param],
            summary="The agent follows a chat it holds (or held) and writes in it, as on /api/chats/{chat_id}/ws; "
                    "the API token or the agent's own (a `bearer.<token>` subprotocol beside `ivrpowers.chat`)",
            returns={101: None, 400: ERROR, 404: ERROR, 409: ERROR, 426: ERROR, 429: ERROR, 503: ERROR})
    api.add("POST", "/api/agents/{agent_id}/chats/{chat_id}/{action}", guarded(agent_action),
            params=[agent_param, chat_param,
                    Param("action", "path", {"type": "string", "enum": ["accept", "decline", "close"]})],
            summary="The agent accepts or declines a chat offered to it, or closes one it holds",
            returns={200: CHAT, 204: None, 404: ERROR, 409: ERROR, 503: ERROR})
    api.add("GET", "/api/agents/{agent_id}/chats", guarded(agent_chats), params=[agent_param],
            summary="The chats offered to the agent now, and those it holds", returns={200: AGENT_CHATS, 404: ERROR})


def _upgradable(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=30, max_msg_size=8 * MAX_TEXT)
    if not ws.can_prepare(request).ok:
        raise api_error(426, "this is a websocket: connect with an Upgrade: websocket request")
    return ws


def _sender(caller: Who, agent: str | None) -> tuple[Literal["customer", "agent"], str | None]:
    if caller == "customer":
        if agent is not None:
            raise api_error(422, "agent: only an API-token caller writes as an agent", problems=[])
        return "customer", None
    if agent is None:
        raise api_error(422, "agent: with the API token, say which agent writes (the one who holds the chat)",
                     problems=[{"field": "agent", "message": "required with the API token"}])
    return "agent", agent


async def _follow(ws: web.WebSocketResponse, chats: ChatService, chat_id: str, caller: Who, agent: str | None,
                  after: int, listener: Listener | None) -> None:
    """Send the transcript after `after`, then what happens; take messages the other way."""
    chat, history = await chats.record(chat_id, after)
    last = after
    for message in history:
        await ws.send_json({"type": "message", **message.to_dict()})
        last = message.id
    await ws.send_json({"type": "status", "status": chat.status, "outcome": chat.outcome, "agent": chat.agent_id})
    if listener is None:  # closed: nothing more will happen
        await ws.close()
        return

    async def forward() -> None:
        while (event := await listener.next()) is not None:
            if event["type"] == "message" and event["id"] <= last:
                continue  # already sent with the transcript
            await ws.send_json(event)
        await ws.close()

    sender = asyncio.create_task(forward())
    try:
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            await _take(ws, chats, chat_id, caller, agent, frame.data)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _take(ws: web.WebSocketResponse, chats: ChatService, chat_id: str, caller: Who, agent: str | None,
                data: str) -> None:
    """One frame from the client: `{"type": "message", "text": ...}`; a problem is answered with
    `{"type": "error", "error": ...}` and the socket stays open."""
    try:
        try:
            frame = json.loads(data)
        except (ValueError, RecursionError):
            raise api_error(400, "a frame is a JSON object") from None
        if not isinstance(frame, dict) or frame.get("type") != "message":
            raise api_error(400, 'a frame is {"type": "message", "text": "..."}')
        body: NewMessage = _validated(NewMessage, {"text": frame.get("text"), "agent": agent})
        sender, writer = _sender(caller, body.agent)
        await chats.post(chat_id, sender, body.text, writer)
    except web.HTTPException as exc:
        await ws.send_json({"type": "error", "error": json.loads(exc.text or "{}").get("error", "refused")})
    except ChatError as exc:
        await ws.send_json({"type": "error", "error": str(exc)})
    except (SQLAlchemyError, OSError):
        await ws.send_json({"type": "error", "error": "the database is not available; try again"})
