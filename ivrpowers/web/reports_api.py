"""`/api/reports/queues`: the queues' figures per interval of the past, as `ivrpowers queue report`
gives them (the same parameters, the same refusals), as JSON or CSV."""

from __future__ import annotations

from aiohttp import web

from ivrpowers.acd.report import FIGURES
from ivrpowers.store.db import Database
from ivrpowers.store.queue_report import queue_report, report_csv
from ivrpowers.web.formats import CSV, FORMAT, csv_response, wants_csv
from ivrpowers.web.json_body import json_error
from ivrpowers.web.openapi import ERROR, Api, Param

_WHEN = {"type": "string", "examples": ["2026-11-30", "2026-11-30T08:00", "7d"]}
_ROW = {"type": "object", "required": ["queue", "start", "end", *FIGURES], "properties": {
    "queue": {"type": "string"}, "start": {"type": "string", "format": "date-time"},
    "end": {"type": "string", "format": "date-time"},
    **{name: {"type": ["number", "null"]} for name in FIGURES}}}


def add_report_routes(api: Api, db: Database, timezone: str) -> None:
    async def queues(request: web.Request) -> web.Response:
        as_csv = wants_csv(request)
        try:
            rows = await queue_report(db, request.query, timezone)
        except ValueError as exc:
            raise json_error(web.HTTPBadRequest, str(exc)) from None
        except LookupError as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None
        return csv_response(report_csv(rows)) if as_csv else web.json_response(rows)

    api.add("GET", "/api/reports/queues", queues, summary="Each queue's figures per interval of the past", params=[
        Param("since", "query", _WHEN, "from (default: today's start in the controller's time zone)"),
        Param("until", "query", _WHEN, "to (default: now)"),
        Param("interval", "query", {"type": "string", "examples": ["15m", "1h", "1d"]}, "each row's length (1h)"),
        Param("queue", "query", {"type": "string"}, "this queue only"),
        FORMAT,
    ], returns={200: {"type": "array", "items": _ROW}, 400: ERROR, 404: ERROR}, also=CSV)
