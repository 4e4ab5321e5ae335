"""The controller's web app: health (open) and the REST API (bearer token from the secrets)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from ivrpowers.store.cdrs import CdrRepository, call_to_dict

OPEN_PATHS = {"/health"}


class HealthSource(Protocol):
    def health(self) -> dict[str, object]: ...


def _auth_middleware(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise web.HTTPUnauthorized(
                    text='{"error": "missing or wrong bearer token"}', content_type="application/json",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await handler(request)

    return check


def create_app(*, health: HealthSource, cdrs: CdrRepository, api_token: str) -> web.Application:
    app = web.Application(middlewares=[_auth_middleware(api_token)])

    async def get_health(request: web.Request) -> web.Response:
        report = health.health()
        return web.json_response(report, status=200 if report.get("status") == "ok" else 503)

    async def list_calls(request: web.Request) -> web.Response:
        try:
            limit = max(1, min(int(request.query.get("limit", "20")), 1000))
        except ValueError:
            raise web.HTTPBadRequest(text='{"error": "limit must be a number"}', content_type="application/json")
        return web.json_response([call_to_dict(c) for c in await cdrs.latest(limit)])

    async def get_call(request: web.Request) -> web.Response:
        call = await cdrs.get(request.match_info["call_id"])
        if call is None:
            raise web.HTTPNotFound(text='{"error": "no such call"}', content_type="application/json")
        return web.json_response(call_to_dict(call))

    app.router.add_get("/health", get_health)
    app.router.add_get("/api/calls", list_calls)
    app.router.add_get("/api/calls/{call_id}", get_call)
    return app
