"""REST for the ACD's live statistics (`acd.stats.Stats`): `GET /api/stats`, `/api/queues/{name}/stats`
and `/api/agents/{agent_id}/stats`, the same figures as `ivrpowers queue stats`, the `/api/events`
websocket's snapshot and `/metrics`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from ivrpowers.acd.events import AcdEvent
from ivrpowers.acd.model import AGENT_STATES
from ivrpowers.acd.stats import Stats
from ivrpowers.acd.stats_periods import COUNTS
from ivrpowers.store.acd import AcdRepository
from ivrpowers.web.json_body import json_error
from ivrpowers.web.openapi import ERROR, Api, Param, Schema

__all__ = ["LiveAcd", "add_stats_routes", "live_acd", "stats_schemas"]


@runtime_checkable
class LiveAcd(Protocol):
    """The running ACD as statistics and events see it (`calls.acd_service.AcdService`)."""

    @property
    def stats(self) -> Stats: ...

    def clock(self) -> float: ...

    def subscribe(self, subscriber: Callable[[AcdEvent], None]) -> Callable[[], None]: ...


def live_acd(runtime: object) -> LiveAcd | None:
    """`runtime` if it has statistics and events to give (the controller's ACD does, a test's fake may not)."""
    return runtime if isinstance(runtime, LiveAcd) else None


NAME: Schema = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}
_COUNT: Schema = {"type": "integer", "minimum": 0}
_SECONDS: Schema = {"type": "number", "minimum": 0, "description": "seconds"}
_MAYBE_SECONDS: Schema = {"type": ["number", "null"], "minimum": 0, "description": "seconds; null: nothing counted"}
_RATIO: Schema = {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                  "description": "0 to 1; null: nothing counted"}
_PERIOD: dict[str, Schema] = {
    **{name: _COUNT for name in COUNTS},
    "service_level": _RATIO, "abandon_rate": _RATIO, "asa": _MAYBE_SECONDS, "aht": _MAYBE_SECONDS,
    "abandoned_wait_avg": _MAYBE_SECONDS, "abandoned_wait_max": _MAYBE_SECONDS,
    "talk_time": _SECONDS, "wrap_up_time": _SECONDS,
}
_SINCE: Schema = {"type": ["number", "null"], "description": "when the day began (epoch seconds); null: not told"}


def _object(properties: dict[str, Schema], description: str = "") -> Schema:
    schema: Schema = {"type": "object", "required": sorted(properties), "properties": properties}
    if description:
        schema["description"] = description
    return schema


def stats_schemas(api: Api) -> tuple[Schema, Schema]:
    """(a queue's statistics, an agent's), kept once in the document's components."""
    if "QueueStats" in api.components:
        return {"$ref": "#/components/schemas/QueueStats"}, {"$ref": "#/components/schemas/AgentStats"}
    states = _object({state: _COUNT for state in AGENT_STATES}, "the queue's agents by state")
    queue = api.component("QueueStats", _object({
        "queue": {"type": "string"}, "sla_seconds": _SECONDS, "at": {"type": "number", "description": "now"},
        "waiting": _COUNT, "longest_wait": _SECONDS, "talking": _COUNT, "callbacks_waiting": _COUNT,
        "agents": states,
        "day": _object({"since": _SINCE, **_PERIOD}, "since the day began (the controller's time zone)"),
        "window": _object({"seconds": _SECONDS, **_PERIOD}, "the last `seconds` of the day"),
    }, "A queue now, today and over the last minutes (see docs/acd.md, Statistics)"))
    agent = api.component("AgentStats", _object({
        "agent": {"type": "string"}, "state": {"type": "string"}, "reason": {"type": ["string", "null"]},
        "since": {"type": ["number", "null"], "description": "in this state since (epoch seconds)"},
        "time_in_state": {"type": ["number", "null"], "minimum": 0, "description": "seconds"},
        "queues": {"type": "array", "items": {"type": "string"}},
        "day": _object({"since": _SINCE, "handled": _COUNT, "talk_time": _SECONDS, "wrap_up_time": _SECONDS,
                        "offers": _COUNT, "answered": _COUNT, "declined": _COUNT, "not_answered": _COUNT}),
    }, "An agent now and today"))
    return queue, agent





def add_stats_routes(api: Api, live: LiveAcd, repo: AcdRepository) -> None:
    queue_schema, agent_schema = stats_schemas(api)

    async def all_stats(request: web.Request) -> web.Response:
        now = live.clock()
        return web.json_response({"at": now, "queues": live.stats.queues(now), "agents": live.stats.agents(now)})

    async def queue_stats(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        # A queue stored a moment ago that the running ACD has not heard of yet has zeros.
        if not live.stats.knows_queue(name) and name not in await repo.queues():
            raise json_error(web.HTTPNotFound, f"there is no queue named {name[:80]!r}")
        return web.json_response(live.stats.queue(name, live.clock()))

    async def agent_stats(request: web.Request) -> web.Response:
        agent = request.match_info["agent_id"]
        if not live.stats.knows_agent(agent) and agent not in await repo.agents():
            raise json_error(web.HTTPNotFound, f"there is no agent {agent[:80]!r}")
        return web.json_response(live.stats.agent(agent, live.clock()))

    everything = _object({"at": {"type": "number"},
                          "queues": {"type": "object", "additionalProperties": queue_schema},
                          "agents": {"type": "object", "additionalProperties": agent_schema}})
    api.add("GET", "/api/stats", all_stats, summary="Every queue's and agent's statistics, now",
            returns={200: everything})
    api.add("GET", "/api/queues/{name}/stats", queue_stats, params=[Param("name", "path", NAME, "the queue's name")],
            summary="A queue's statistics: waiting now, the day's and the last minutes' figures",
            returns={200: queue_schema, 404: ERROR})
    api.add("GET", "/api/agents/{agent_id}/stats", agent_stats,
            params=[Param("agent_id", "path", NAME, "the agent's id")],
            summary="An agent's state, time in it, and the day's tasks and talk time",
            returns={200: agent_schema, 404: ERROR})


def snapshot(live: LiveAcd, queues: frozenset[str] | None = None, agents: frozenset[str] | None = None
             ) -> dict[str, Any]:
    """Every figure now (or only those of `queues` and `agents`), as the events websocket first sends."""
    now = live.clock()
    return {"kind": "snapshot", "at": now,
            "queues": {k: v for k, v in live.stats.queues(now).items() if queues is None or k in queues},
            "agents": {k: v for k, v in live.stats.agents(now).items() if agents is None or k in agents}}
