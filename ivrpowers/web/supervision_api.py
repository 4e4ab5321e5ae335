"""`/api/supervision`: the queue conversations going on now, and a supervisor listening to, whispering
to, barging into or watching one of them (`calls.supervision`).

Who may: the API token, or the token of an agent defined a supervisor (`AgentDef.supervisor`); any
other agent's token is refused (403), so the agent desktop shows its Supervise panel only when its
first listing succeeds. An agent is rung at its own endpoint; the API token names an endpoint, or
a supervisor to ring (at theirs) and act as.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ivrpowers.acd.definitions import AgentDef
from ivrpowers.acd.supervision import MODES, SupervisionError, may_supervise
from ivrpowers.calls.supervision import Supervision
from ivrpowers.web.agent_auth import AGENT
from ivrpowers.web.json_body import json_error, read_json
from ivrpowers.web.openapi import ERROR, Api, Param

LIST_PATH = "/api/supervision"
ONE_PATH = "/api/supervision/{call_id}"
_CALL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

_SUPERVISION = {"type": ["object", "null"], "required": ["by", "endpoint", "mode", "status", "started"],
                "properties": {"by": {"type": "string"}, "endpoint": {"type": "string"},
                               "mode": {"type": "string", "enum": list(MODES)},
                               "status": {"type": "string", "enum": ["ringing", "live"]},
                               "started": {"type": "string", "format": "date-time"}}}
CONVERSATION = {"type": "object", "required": ["call_id", "queue", "agent", "caller", "media", "since", "supervision"],
                "properties": {"call_id": {"type": "string"}, "queue": {"type": "string"}, "agent": {"type": "string"},
                               "caller": {"type": "string"}, "media": {"type": "string", "enum": ["audio", "video"]},
                               "since": {"type": ["string", "null"], "format": "date-time"},
                               "supervision": _SUPERVISION}}
_FIELDS = ("mode", "endpoint", "supervisor")
_START = {"type": "object", "required": ["mode"], "additionalProperties": False, "properties": {
    "mode": {"type": "string", "enum": list(MODES)},
    "endpoint": {"type": "string", "pattern": f"^{_NAME.pattern}$", "description": "API token: the endpoint to ring"},
    "supervisor": {"type": "string", "pattern": f"^{_NAME.pattern}$",
                   "description": "API token: the supervisor to act as (rung at its endpoint unless one is named)"}}}





# What the app needs to serve these routes: the supervisions, and the agents the running ACD knows.
SupervisionRoutes = tuple[Supervision, Callable[[], Mapping[str, AgentDef]]]

_STATUS: dict[int, type[web.HTTPException]] = {400: web.HTTPBadRequest, 403: web.HTTPForbidden,
                                               404: web.HTTPNotFound, 409: web.HTTPConflict}


def who_supervises(agent_id: str | None, body: Mapping[str, Any], agents: Mapping[str, AgentDef]) -> tuple[str, str]:
    """(who supervises, the endpoint rung) for a request by `agent_id` (None: the API token).
    Raises SupervisionError."""
    named, endpoint = body.get("supervisor"), body.get("endpoint")
    if agent_id is not None:
        if named is not None or endpoint is not None:
            raise SupervisionError(403, "an agent supervises from its own endpoint, as itself")
        named = agent_id
    elif named is None:
        if not isinstance(endpoint, str) or not _NAME.fullmatch(endpoint):
            raise SupervisionError(400, "name the endpoint to ring (endpoint) or a supervisor (supervisor)")
        return "api", endpoint
    if not isinstance(named, str) or not may_supervise(named, agents):
        raise SupervisionError(403, f"{str(named)[:63]!r} is not a supervisor (agent update ID --supervisor)")
    if endpoint is None:
        endpoint = agents[named].endpoint
        if endpoint is None:
            raise SupervisionError(409, f"supervisor {named} has no endpoint to ring")
    elif not isinstance(endpoint, str) or not _NAME.fullmatch(endpoint):
        raise SupervisionError(400, "endpoint: an endpoint's name")
    return named, endpoint


def add_supervision_routes(api: Api, supervision: Supervision, agents: Callable[[], Mapping[str, AgentDef]]) -> None:
    """`agents`: the agents as the running ACD knows them (who is a supervisor)."""

    def agent_of(request: web.Request) -> str | None:
        agent_id: str | None = request.get(AGENT, None)
        if not may_supervise(agent_id, agents()):
            raise json_error(web.HTTPForbidden, f"agent {agent_id} is not a supervisor")
        return agent_id

    def call_id_of(request: web.Request) -> str:
        call_id = request.match_info["call_id"]
        if not _CALL_ID.fullmatch(call_id):
            raise json_error(web.HTTPNotFound, f"{call_id[:40]!r} is not a call id")
        return call_id

    async def listing(request: web.Request) -> web.Response:
        agent_of(request)
        return web.json_response(await supervision.listing())

    async def start(request: web.Request) -> web.Response:
        agent_id, call_id = agent_of(request), call_id_of(request)
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("mode"), str) or set(body) - set(_FIELDS):
            raise json_error(web.HTTPBadRequest, f"give mode ({', '.join(MODES)}), and endpoint or supervisor")
        try:
            by, endpoint = who_supervises(agent_id, body, agents())
            view, started = await supervision.start(call_id, body["mode"], by=by, endpoint=endpoint)
        except SupervisionError as exc:
            raise json_error(_STATUS.get(exc.status, web.HTTPConflict), str(exc)) from None
        return web.json_response(view, status=202 if started else 200)

    async def stop(request: web.Request) -> web.Response:
        agent_id, call_id = agent_of(request), call_id_of(request)
        try:
            await supervision.stop(call_id, agent_id or "api")
        except SupervisionError as exc:
            raise json_error(_STATUS.get(exc.status, web.HTTPConflict), str(exc)) from None
        return web.json_response({"call_id": call_id, "stopping": True}, status=202)

    conversation = api.component("Conversation", CONVERSATION)
    call_param = [Param("call_id", "path", {"type": "string", "pattern": f"^{_CALL_ID.pattern}$"},
                        "the call's id (`GET /api/supervision`)")]
    api.add("GET", LIST_PATH, listing, summary="The queue conversations going on now, and who supervises them "
            "(the API token or a supervisor's)", returns={200: {"type": "array", "items": conversation}, 403: ERROR})
    api.add("POST", ONE_PATH, start, body=_START, params=call_param, summary=(
        "Supervise a conversation: the supervisor's endpoint is rung, then listens (hears both), whispers (the agent "
        "alone hears it), barges in (all three hear each other) or watches a video call (both pictures, heard by "
        "nobody). 202: rung; 200: the mode of its supervision changed"),
        returns={200: conversation, 202: conversation, 403: ERROR, 404: ERROR, 409: ERROR})
    api.add("DELETE", ONE_PATH, stop, params=call_param, summary="Stop supervising a conversation (its supervisor "
            "hung up)", returns={202: {"type": "object"}, 403: ERROR, 404: ERROR})
