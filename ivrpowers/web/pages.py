"""The browser pages: `/call` (a customer calls by voice or video), `/agent` (the agent desktop),
`/wallboard` (queues and agents, live), with their scripts under `/static/`. Open like `/`: a page
holds nothing secret; what it does needs credentials (the SIP account's password for a call, the
agent's for the desktop, a view token from `ivrpowers wallboard` for the wallboard).

A page learns where Asterisk's SIP websocket is from `<meta name="ivrpowers-sip">`, filled in when
it is served: the page and its scripts need no build step.

`/call` is made to be embedded in a website (an iframe): it may be framed by the origins of the
`embed_origins` setting (any, by default: the page holds nothing, the embedding site gives the
account). The agent desktop and the wallboard act for signed-in people and are never framed, so
no other site can lay them under its own buttons (clickjacking).
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


EMBEDDABLE = ("call",)
NEVER_FRAMED = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def frame_headers(name: str, embed_origins: str) -> dict[str, str]:
    """Who may frame page `name`: `embed_origins` for an embeddable page, nobody for the others."""
    if name in EMBEDDABLE:
        return {"Content-Security-Policy": f"frame-ancestors {embed_origins}"}
    return dict(NEVER_FRAMED)


def add_page_routes(app: web.Application, *, sip_websocket: str, sip_domain: str, embed_origins: str = "*") -> None:
    def page(name: str) -> web.Response:
        text = (STATIC / f"{name}.html").read_text()
        meta = (f'<meta name="ivrpowers-sip" content="{html.escape(sip_websocket)}" '
                f'data-domain="{html.escape(sip_domain)}">')
        return web.Response(text=text.replace("<!--ivrpowers-meta-->", meta), content_type="text/html",
                            headers={"Cache-Control": "no-store", **frame_headers(name, embed_origins)})

    for name in PAGES:
        async def serve(request: web.Request, name: str = name) -> web.Response:
            return page(name)

        app.router.add_get(f"/{name}", serve)
    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app.router.add_get(FAVICON, no_icon)
    app.router.add_static("/static/", STATIC, follow_symlinks=False, append_version=False)
