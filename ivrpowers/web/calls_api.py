"""`/api/calls`: the call records, found by the same filters as `ivrpowers cdr list` (JSON, or CSV
with `format=csv`), a page at a time; and one call by its id or the start of it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ivrpowers.store.cdr_search import CallQuery, parse_query, search, to_csv
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
from ivrpowers.web.formats import CSV, FORMAT, csv_response, wants_csv
from ivrpowers.web.json_body import json_error
from ivrpowers.web.openapi import ERROR, Api, Param

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

_WHEN = {"type": "string", "examples": ["2026-11-30", "2026-11-30T08:00", "2026-11-30T08:00:00+01:00", "24h"]}
_FILTERS = [
    Param("since", "query", _WHEN, "started at or after: a date (its start), a date and time (the controller's "
          "time zone unless it has an offset), or a time ago (90m, 24h, 7d)"),
    Param("until", "query", _WHEN, "started before (the same forms)"),
    Param("number", "query", {"type": "string"}, "the caller's number or the number dialed contains this"),
    Param("disposition", "query", {"type": "string"}, "how it ended (completed, caller_hangup, failed, ...)"),
    Param("flow", "query", {"type": "string"}, "the flow it ran"),
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "at most this many (20)"),
    Param("before", "query", {"type": "string"}, "the page after this call (the last of the previous page; a "
          "full page's Link header says so)"),
    FORMAT,
]


def add_call_routes(api: Api, cdrs: CdrRepository, timezone: str) -> None:
    async def list_calls(request: web.Request) -> web.Response:
        as_csv = wants_csv(request)
        try:
            query = parse_query(request.query, timezone)
            calls = await search(cdrs.db, query)
        except (ValueError, LookupError) as exc:
            raise json_error(web.HTTPBadRequest, str(exc)) from None
        records = [call_to_dict(c) for c in calls]
        headers = {"Link": _next_page(request, query, calls[-1].id)} if len(calls) == query.limit else {}
        if as_csv:
            return csv_response(to_csv(records), headers)
        return web.json_response(records, headers=headers)

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

    call = api.component("Call", CALL)
    api.add("GET", "/api/calls", list_calls, summary="Calls, newest first, those that match the filters",
            params=_FILTERS, returns={200: {"type": "array", "items": call}, 400: ERROR},
            also=CSV)
    api.add("GET", "/api/calls/{call_id}", get_call, summary="One call, by its id or the start of it",
            params=[Param("call_id", "path", CALL_ID_PARAM, f"the id, or its first {MIN_PREFIX} characters or more")],
            returns={200: call, 400: ERROR, 404: ERROR, 409: ERROR})


def _next_page(request: web.Request, query: CallQuery, last: str) -> str:
    """The Link header to the next page: the same filters, after `last`."""
    params = {**request.query, "before": last, "limit": str(query.limit)}
    return f'<{request.path}?{urlencode(params)}>; rel="next"'
