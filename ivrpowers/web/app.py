"""The controller's web app: health (open) and the REST API (bearer token from the secrets).

Whatever a client sends, a malformed request is refused with a 4xx and logged in one line: no 5xx,
no traceback (those are kept for the app's own bugs).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ivrpowers import __version__
from ivrpowers.chats.service import ChatService
from ivrpowers.media.call_recordings import CallRecordings
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.cdrs import (
    CALL_ID,
    MAX_LIMIT,
    MIN_PREFIX,
    AmbiguousCall,
    CdrRepository,
    NoSuchCall,
    PrefixTooShort,
    call_to_dict,
)
from ivrpowers.web.acd_api import AcdRuntime, add_acd_routes
from ivrpowers.web.agent_api import LOGIN_PATH, PasswordCheck, SipServer, add_agent_login
from ivrpowers.web.agent_auth import AGENT, VIEWER, SignedTokens, agent_may, view_may
from ivrpowers.web.call_chat_api import add_call_chat, stored_kinds
from ivrpowers.web.chats_api import add_chat_routes, authenticates_itself
from ivrpowers.web.events_ws import TOKEN_PREFIX as TOKEN_SUBPROTOCOL
from ivrpowers.web.events_ws import add_events_route, offered_subprotocols, subprotocol_token_matches
from ivrpowers.web.index import INDEX_HTML
from ivrpowers.web.json_body import json_error
from ivrpowers.web.metrics import add_metrics_route
from ivrpowers.web.openapi import ERROR, Api, Param
from ivrpowers.web.pages import add_page_routes, is_page
from ivrpowers.web.recordings_api import Answered, Note, add_recording_routes
from ivrpowers.web.stats_api import add_stats_routes, live_acd
from ivrpowers.web.supervision_api import SupervisionRoutes, add_supervision_routes

OPEN_PATHS = {"/", "/health", "/api/openapi.json", LOGIN_PATH}

log = logging.getLogger("ivrpowers.web")


_TEXT, _TIME = {"type": "string"}, {"type": ["string", "null"], "format": "date-time"}
CALL: dict[str, Any] = {
    "type": "object", "description": "A CDR with its timeline (the shape of `cdr show --json`)",
    "required": ["id", "started_at", "events"],
    "properties": {
        "id": _TEXT, "asterisk_id": _TEXT, "channel_id": _TEXT, "owner": {"type": ["string", "null"]},
        "recovered": {"type": "boolean"}, "role": _TEXT, "source": {"type": ["string", "null"]},
        "channels": {"type": "array", "items": {"type": "object"}}, "bridge_id": {"type": ["string", "null"]},
        "caller": _TEXT, "caller_name": _TEXT, "dialed": _TEXT, "flow": {"type": ["string", "null"]},
        "flow_version": {"type": ["integer", "null"]}, "started_at": {"type": "string", "format": "date-time"},
        "answered_at": _TIME, "ended_at": _TIME, "duration": {"type": ["number", "null"]},
        "disposition": {"type": ["string", "null"]}, "hangup_cause": {"type": ["integer", "null"]},
        "hangup_cause_text": {"type": ["string", "null"]},
        "events": {"type": "array", "items": {"type": "object", "required": ["type", "at", "detail"], "properties": {
            "type": _TEXT, "at": {"type": "string", "format": "date-time"}, "node": {"type": ["string", "null"]},
            "detail": {"type": "object"}}}},
    },
}
# What `CdrRepository.find` looks up: shorter is refused (400), anything else not an id is none (404).
CALL_ID_PARAM = {"type": "string", "minLength": MIN_PREFIX, "pattern": CALL_ID.pattern}


class HealthSource(Protocol):
    def health(self) -> dict[str, object]: ...


class _RequestLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log, where a request that is not valid HTTP is one line, not a traceback.

    aiohttp answers such requests with 400 itself (header or line too long, too many headers,
    bad syntax) but logs each one as an ERROR with a traceback: anyone could fill the log.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            remote = args[0] if args else "?"
            log.log(min(level, logging.INFO), "malformed HTTP request from %s refused (%d %s)", remote, exc.code,
                    type(exc).__name__)
            return
        super().log(level, msg, *args, **kwargs)





def _bearer_matches(given: str, token: str) -> bool:
    # aiohttp keeps bytes that are not UTF-8 as lone surrogates: such a header is no token of ours.
    try:
        raw = given.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(raw, f"Bearer {token}".encode())


def _agent_token(request: web.Request) -> str:
    """The bearer token of the request, from the header or (a browser's websocket) a subprotocol."""
    given = request.headers.get("Authorization", "")
    if given.startswith("Bearer "):
        return given.removeprefix("Bearer ")
    return next((p.removeprefix(TOKEN_SUBPROTOCOL) for p in offered_subprotocols(request)
                 if p.startswith(TOKEN_SUBPROTOCOL)), "")


def _auth_middleware(token: str, agents: SignedTokens | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    views = agents.views() if agents is not None else None
    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # Chat routes a customer may use check the API token or the chat's own token themselves.
        if request.path in OPEN_PATHS or is_page(request.path) or authenticates_itself(request) or \
                _bearer_matches(request.headers.get("Authorization", ""), token) or \
                subprotocol_token_matches(request, token):  # the events websocket, from a browser
            return await handler(request)
        presented = _agent_token(request)
        agent = agents.verify(presented) if agents is not None else None
        if agent is not None and agent_may(agent, request.method, request.path):
            request[AGENT] = agent  # what the route may show: this agent's alone
            return await handler(request)
        viewer = views.verify(presented) if views is not None else None
        if viewer is not None and view_may(request.method, request.path):
            request[VIEWER] = viewer  # statistics only
            return await handler(request)
        raise json_error(web.HTTPUnauthorized, "missing or wrong bearer token",
                          headers={"WWW-Authenticate": "Bearer"})

    return check


RecordingRoutes = tuple[CallRecordings, Answered, Note]


def create_app(*, health: HealthSource, cdrs: CdrRepository, api_token: str,
               acd: AcdRepository | None = None, acd_runtime: AcdRuntime | None = None,
               chats: ChatService | None = None, sip: SipServer | None = None,
               agent_tokens: SignedTokens | None = None, password_ok: PasswordCheck | None = None,
               recordings: RecordingRoutes | None = None,
               supervision: SupervisionRoutes | None = None, embed_origins: str = "*") -> web.Application:
    """`sip`: Asterisk's SIP websocket and domain, for the browser pages (none without it).
    `agent_tokens`, `password_ok`: agents sign in with their own account (`/api/agent/login`).
    `recordings`: where agents' pages send video recordings, and how they reach the CDR.
    `embed_origins`: who may frame the /call page (CSP frame-ancestors)."""
    handler_args: Mapping[str, Any] = {"logger": _RequestLog(logging.getLogger("aiohttp.server"), {})}
    # The largest body is an agent or queue definition, a few hundred bytes: 64 KiB is plenty,
    # anything larger is refused with 413 unread.
    app = web.Application(middlewares=[_auth_middleware(api_token, agent_tokens)], handler_args=handler_args,
                          client_max_size=64 * 1024)
    api = Api(app, "ivrpowers", __version__)

    async def get_health(request: web.Request) -> web.Response:
        report = health.health()
        return web.json_response(report, status=200 if report.get("status") == "ok" else 503)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=INDEX_HTML, content_type="text/html")

    async def list_calls(request: web.Request) -> web.Response:
        raw = request.query.get("limit", "20")
        # isascii: str.isdigit() is true of '²' too, which int() refuses.
        limit = int(raw) if raw.isascii() and raw.isdigit() else 0
        if not 1 <= limit <= MAX_LIMIT:
            raise json_error(web.HTTPBadRequest, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        return web.json_response([call_to_dict(c) for c in await cdrs.latest(limit)])

    async def get_call(request: web.Request) -> web.Response:
        # The same lookup as `ivrpowers cdr show`: an id, or the start of one; the same errors.
        try:
            call = await cdrs.find(request.match_info["call_id"])
        except NoSuchCall as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None
        except PrefixTooShort as exc:
            raise json_error(web.HTTPBadRequest, str(exc)) from None
        except AmbiguousCall as exc:
            raise json_error(web.HTTPConflict, str(exc), candidates=exc.candidates) from None
        return web.json_response(call_to_dict(call))

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(api.document())

    app.router.add_get("/", index)
    health_schema = {"type": "object", "required": ["status", "problems"], "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]}, "problems": {"type": "array",
                                                                               "items": {"type": "string"}}}}
    api.add("GET", "/health", get_health, summary="Is the controller fit to take calls (open: no token)",
            returns={200: health_schema, 503: health_schema}, open=True)
    api.add("GET", "/api/openapi.json", openapi, summary="This document (open: no token)",
            returns={200: {"type": "object"}}, open=True)
    call = api.component("Call", CALL)
    api.add("GET", "/api/calls", list_calls, summary="The latest calls, newest first",
            params=[Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})],
            returns={200: {"type": "array", "items": call}, 400: ERROR})
    api.add("GET", "/api/calls/{call_id}", get_call, summary="One call, by its id or the start of it",
            params=[Param("call_id", "path", CALL_ID_PARAM, f"the id, or its first {MIN_PREFIX} characters or more")],
            returns={200: call, 400: ERROR, 404: ERROR, 409: ERROR})
    if acd is not None:
        add_acd_routes(api, acd, acd_runtime)
    live = live_acd(acd_runtime)  # the running ACD's statistics and events
    if acd is not None and live is not None:
        add_stats_routes(api, live, acd)
        add_events_route(api, live)
    add_metrics_route(api, health.health, live)
    if chats is not None:
        add_chat_routes(api, chats, api_token)
    if sip is not None:
        add_page_routes(app, sip_websocket=sip.websocket, sip_domain=sip.domain, embed_origins=embed_origins)
    if acd is not None and agent_tokens is not None and password_ok is not None and sip is not None:
        add_agent_login(api, acd, agent_tokens, password_ok, sip)
    if chats is not None and password_ok is not None:  # the /call page's chats (call_chat_api)
        add_call_chat(api, chats, password_ok, stored_kinds(cdrs.db))
    if recordings is not None:
        add_recording_routes(api, *recordings)
    if supervision is not None:
        add_supervision_routes(api, *supervision)
    return app
