"""Routes that answer JSON or, with `?format=csv`, CSV (call records, reports)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ivrpowers.web.json_body import json_error
from ivrpowers.web.openapi import Param

FORMAT = Param("format", "query", {"type": "string", "enum": ["json", "csv"]}, "csv: one line per row")
CSV = {"text/csv": {"type": "string"}}  # `Api.add(also=...)`: what such a route may answer besides JSON


def wants_csv(request: web.Request) -> bool:
    """Whether `?format=` asks for CSV; 400 for a format that is neither."""
    form = request.query.get("format", "json")
    if form not in ("json", "csv"):
        raise json_error(web.HTTPBadRequest, "format must be json or csv")
    return form == "csv"


def csv_response(text: str, headers: dict[str, Any] | None = None) -> web.Response:
    return web.Response(text=text, content_type="text/csv", charset="utf-8", headers=headers)
