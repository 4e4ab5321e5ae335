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
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.web.acd_api import AcdRuntime, add_acd_routes
from ivrpowers.web.agent_api import LOGIN_PATH, PasswordCheck, SipServer, add_agent_login
from ivrpowers.web.agent_auth import AGENT, VIEWER, SignedTokens, agent_may, view_may
from ivrpowers.web.call_chat_api import add_call_chat, stored_kinds
from ivrpowers.web.calls_api import add_call_routes
from ivrpowers.web.chats_api import add_chat_routes, authenticates_itself
from ivrpowers.web.events_ws import TOKEN_PREFIX as TOKEN_SUBPROTOCOL
from ivrpowers.web.events_ws import add_events_route, offered_subprotocols, subprotocol_token_matches
from ivrpowers.web.index import INDEX_HTML
from ivrpowers.web.json_body import json_error
from ivrpowers.web.metrics import add_metrics_route
from ivrpowers.web.openapi import Api
from ivrpowers.web.pages import add_page_routes, is_page
from ivrpowers.web.recordings_api import Answered, Note, add_recording_routes
from ivrpowers.web.reports_api import add_report_routes
from ivrpowers.web.stats_api import add_stats_routes, live_acd
from ivrpowers.web.supervision_api import SupervisionRoutes, add_supervision_routes

OPEN_PATHS = {"/", "/health", "/api/openapi.json", LOGIN_PATH}

log = logging.getLogger("ivrpowers.web")


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
               supervision: SupervisionRoutes | None = None, embed_origins: str = "*",
               timezone: str = "UTC") -> web.Application:
    """`sip`: Asterisk's SIP websocket and domain, for the browser pages (none without it).
    `agent_tokens`, `password_ok`: agents sign in with their own account (`/api/agent/login`).
    `recordings`: where agents' pages send video recordings, and how they reach the CDR.
    `embed_origins`: who may frame the /call page (CSP frame-ancestors). `timezone`: what a time
    without an offset in a query means (`/api/calls?since=...`)."""
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
    add_call_routes(api, cdrs, timezone)
    if acd is not None:
        add_report_routes(api, cdrs.db, timezone)
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
