"""The browser pages: `/call` (a customer calls by voice or video), `/agent` (the agent desktop),
`/wallboard` (queues and agents, live), with their scripts under `/static/`. Open like `/`: a page
holds nothing secret; what it does needs credentials (the SIP account's password for a call, the
agent's for the desktop, a view token from `ivrpowers wallboard` for the wallboard).

A page learns where Asterisk's SIP websocket is from `<meta name="ivrpowers-sip">`, filled in when
it is served: the page and its scripts need no build step.
"""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PAGES = ("call", "agent", "wallboard")
OPEN_PREFIXES = ("/static/",)
FAVICON = "/favicon.ico"  # what every browser asks for: none, rather than a 401 in the page's console


def is_page(path: str) -> bool:
    return path.lstrip("/") in PAGES or path.startswith(OPEN_PREFIXES) or path == FAVICON


def add_page_routes(app: web.Application, *, sip_websocket: str, sip_domain: str) -> None:
    def page(name: str) -> web.Response:
        text = (STATIC / f"{name}.html").read_text()
        meta = (f'<meta name="ivrpowers-sip" content="{html.escape(sip_websocket)}" '
                f'data-domain="{html.escape(sip_domain)}">')
        return web.Response(text=text.replace("<!--ivrpowers-meta-->", meta), content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    for name in PAGES:
        async def serve(request: web.Request, name: str = name) -> web.Response:
            return page(name)

        app.router.add_get(f"/{name}", serve)
    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app.router.add_get(FAVICON, no_icon)
    app.router.add_static("/static/", STATIC, follow_symlinks=False, append_version=False)
