"""The controller's web app: health (open) and the REST API (bearer token from the secrets).

Whatever a client sends, a malformed request is refused with a 4xx and logged in one line: no 5xx,
no traceback (those are kept for the app's own bugs).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ivrpowers import __version__
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.cdrs import (
    MAX_LIMIT,
    AmbiguousCall,
    CdrRepository,
    NoSuchCall,
    PrefixTooShort,
    call_to_dict,
)
from ivrpowers.web.acd_api import AcdRuntime, add_acd_routes
from ivrpowers.web.index import INDEX_HTML
from ivrpowers.web.openapi import ERROR, Api, Param

OPEN_PATHS = {"/", "/health", "/api/openapi.json"}

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


def _json_error(error: type[web.HTTPException], message: str, **kwargs: Any) -> web.HTTPException:
    extra = kwargs.pop("extra", {})
    return error(text=json.dumps({"error": message, **extra}), content_type="application/json", **kwargs)


def _bearer_matches(given: str, token: str) -> bool:
    # aiohttp keeps bytes that are not UTF-8 as lone surrogates: such a header is no token of ours.
    try:
        raw = given.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(raw, f"Bearer {token}".encode())


def _auth_middleware(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path not in OPEN_PATHS and not _bearer_matches(request.headers.get("Authorization", ""), token):
            raise _json_error(web.HTTPUnauthorized, "missing or wrong bearer token",
                              headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check


def create_app(*, health: HealthSource, cdrs: CdrRepository, api_token: str,
               acd: AcdRepository | None = None, acd_runtime: AcdRuntime | None = None) -> web.Application:
    handler_args: Mapping[str, Any] = {"logger": _RequestLog(logging.getLogger("aiohttp.server"), {})}
    # The largest body is an agent or queue definition, a few hundred bytes: 64 KiB is plenty,
    # anything larger is refused with 413 unread.
    app = web.Application(middlewares=[_auth_middleware(api_token)], handler_args=handler_args,
                          client_max_size=64 * 1024)
    api = Api(app, "ivrpowers", __version__)

    async def get_health(request: web.Request) -> web.Response:
        report = health.health()
        return web.json_response(report, status=200 if report.get("status") == "ok" else 503)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=INDEX_HTML, content_type="text/html")

    async def list_calls(request: web.Request) -> web.Response:
        raw = request.query.get("limit", "20")
        limit = int(raw) if raw.isdigit() else 0
        if not 1 <= limit <= MAX_LIMIT:
            raise _json_error(web.HTTPBadRequest, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        return web.json_response([call_to_dict(c) for c in await cdrs.latest(limit)])

    async def get_call(request: web.Request) -> web.Response:
        # The same lookup as `ivrpowers cdr show`: an id, or the start of one; the same errors.
        try:
            call = await cdrs.find(request.match_info["call_id"])
        except NoSuchCall as exc:
            raise _json_error(web.HTTPNotFound, str(exc)) from None
        except PrefixTooShort as exc:
            raise _json_error(web.HTTPBadRequest, str(exc)) from None
        except AmbiguousCall as exc:
            raise _json_error(web.HTTPConflict, str(exc), extra={"candidates": exc.candidates}) from None
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
    call = {"type": "object", "description": "A CDR with its timeline (the shape of `cdr show --json`)"}
    api.add("GET", "/api/calls", list_calls, summary="The latest calls, newest first",
            params=[Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})],
            returns={200: {"type": "array", "items": call}, 400: ERROR})
    api.add("GET", "/api/calls/{call_id}", get_call, summary="One call, by its id or the start of it",
            params=[Param("call_id", "path", {"type": "string"})],
            returns={200: call, 400: ERROR, 404: ERROR, 409: ERROR})
    if acd is not None:
        add_acd_routes(api, acd, acd_runtime)
    return app
