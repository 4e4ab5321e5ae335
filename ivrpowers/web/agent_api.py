"""`POST /api/agent/login`: an agent signs in with its account's password and gets a token that
speaks for it alone (`agent_auth`), with what its page needs to register the browser."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from ivrpowers.acd.definitions import _NAME
from ivrpowers.store.acd import AcdRepository, NoSuchAgent
from ivrpowers.web.agent_auth import SignedTokens, Throttle
from ivrpowers.web.json_body import json_error, read_object
from ivrpowers.web.openapi import ERROR, Api

LOGIN_PATH = "/api/agent/login"
PasswordCheck = Callable[[str, str], Awaitable[bool]]  # (endpoint, password) -> is it its password


@dataclass(frozen=True)
class SipServer:
    websocket: str
    domain: str


_SIGNED_IN = {"type": "object", "required": ["token", "expires", "agent", "sip"], "properties": {
    "token": {"type": "string"}, "expires": {"type": "integer", "description": "Unix time"},
    "agent": {"type": "object"},
    "sip": {"type": "object", "required": ["websocket", "domain", "user"],
            "properties": {"websocket": {"type": "string"}, "domain": {"type": "string"}, "user": {"type": "string"}}},
}}
_LOGIN = {"type": "object", "required": ["agent", "password"], "additionalProperties": False, "properties": {
    "agent": {"type": "string", "pattern": f"^{_NAME.pattern}$"}, "password": {"type": "string", "maxLength": 200}}}


def add_agent_login(api: Api, acd: AcdRepository, tokens: SignedTokens, password_ok: PasswordCheck,
                    sip: SipServer, throttle: Throttle | None = None) -> None:
    throttle = throttle or Throttle()
    refused = "wrong agent or password"  # the same whether the agent exists or not

    async def login(request: web.Request) -> web.Response:
        body = await read_object(request)
        agent_id, password = body.get("agent"), body.get("password")
        if not isinstance(agent_id, str) or not isinstance(password, str) or not _NAME.fullmatch(agent_id) \
                or len(password) > 200:
            raise json_error(web.HTTPBadRequest, "give agent (its id) and password (its account's)")
        if wait := throttle.locked(agent_id):
            raise web.HTTPTooManyRequests(
                text=json.dumps({"error": f"too many wrong passwords: try again in {wait:.0f} s"}),
                content_type="application/json", headers={"Retry-After": str(int(wait) + 1)})
        try:
            agent = await acd.agent(agent_id)
        except NoSuchAgent:
            agent = None
        except SQLAlchemyError as exc:
            raise json_error(web.HTTPServiceUnavailable, "the database is not answering: try again") from exc
        if agent is None or agent.endpoint is None or not await password_ok(agent.endpoint, password):
            throttle.failed(agent_id)
            raise json_error(web.HTTPUnauthorized, refused)
        throttle.succeeded(agent_id)
        token, expires = tokens.issue(agent.id)
        answer: dict[str, Any] = {
            "token": token, "expires": expires,
            "agent": {"id": agent.id, "name": agent.name, "endpoint": agent.endpoint,
                      "queues": sorted(agent.queues), "capacity": agent.capacity.model_dump(),
                      "supervisor": agent.supervisor},
            "sip": {"websocket": sip.websocket, "domain": sip.domain, "user": agent.endpoint},
        }
        return web.json_response(answer)

    api.add("POST", LOGIN_PATH, login, open=True, body=_LOGIN,
            summary="An agent signs in with its account's password (open; wrong passwords are throttled): a "
                    "token for its own routes (`Authorization: Bearer agent....`) and its SIP account",
            returns={200: _SIGNED_IN, 400: ERROR, 401: ERROR, 429: ERROR, 503: ERROR})
