"""REST for the ACD's definitions: `/api/queues` and `/api/agents` (the same checks and errors as
`ivrpowers queue|agent ...`)."""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ivrpowers.acd.definitions import AgentDef, QueueDef
from ivrpowers.store.acd import AcdRepository, NoSuchAgent, NoSuchQueue, QueueInUse
from ivrpowers.web.openapi import ERROR, Api, Param, Schema
from ivrpowers.yamlfile import describe

INVALID: Schema = {"type": "object", "required": ["error", "problems"], "properties": {
    "error": {"type": "string"},
    "problems": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "message": {"type": "string"}}}}}}
_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}


class AcdRuntime(Protocol):
    """What the controller's running ACD answers (`calls.acd_service.AcdService`)."""

    async def reload(self) -> None: ...

    def agent_event(self, agent_id: str, event: str, reason: str | None = None) -> None: ...

    def agent_state(self, agent_id: str) -> dict[str, Any]: ...

    def queue_now(self, queue: str) -> dict[str, Any]: ...


AGENT_ACTIONS = {"login": "login", "logout": "logout", "pause": "pause", "unpause": "unpause",
                 "end-wrap-up": "end_wrap_up"}


def json_error(error: type[web.HTTPException], message: str, **extra: Any) -> web.HTTPException:
    return error(text=json.dumps({"error": message, **extra}), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise json_error(web.HTTPBadRequest, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise json_error(web.HTTPUnprocessableEntity, "the body must be a JSON object", problems=[])
    return body


def _validated(model: type[QueueDef] | type[AgentDef], key: str, name: str, body: dict[str, Any]) -> Any:
    if body.get(key, name) != name:
        raise json_error(web.HTTPUnprocessableEntity, f"{key} in the body ({body[key]!r}) is not the one in the path",
                         problems=[])
    try:
        return model.model_validate({**body, key: name})
    except ValidationError as exc:
        problems = [describe(error) for error in exc.errors()]
        raise json_error(web.HTTPUnprocessableEntity, problems[0][1], problems=[
            {"field": ".".join(map(str, loc)), "message": message} for loc, message in problems]) from None


def _body_schema(api: Api, name: str, model: type[BaseModel], key: str) -> tuple[Schema, Schema]:
    """(the stored definition's schema, the body's: the same without the key, which the path gives)."""
    full = model.model_json_schema(mode="serialization")
    stored = api.component(name, full)
    body = {k: v for k, v in full.items() if k != "$defs"}
    body["properties"] = {k: v for k, v in body["properties"].items() if k != key}
    body["required"] = [r for r in body.get("required", []) if r != key]
    return stored, api.component(f"{name}Body", body)


def add_acd_routes(api: Api, repo: AcdRepository, runtime: AcdRuntime | None = None) -> None:
    queue_schema, queue_body = _body_schema(api, "Queue", QueueDef, "name")
    agent_schema, agent_body = _body_schema(api, "Agent", AgentDef, "id")
    queue_name = Param("name", "path", _NAME, "the queue's name")

    async def _reload() -> None:
        if runtime is not None:
            await runtime.reload()
    agent_id = Param("agent_id", "path", _NAME, "the agent's id")

    async def list_queues(request: web.Request) -> web.Response:
        agents = (await repo.agents()).values()
        return web.json_response([{**q.model_dump(mode="json"), "agents": sorted(a.id for a in agents
                                                                                 if q.name in a.queues)}
                                  for q in (await repo.queues()).values()])

    async def get_queue(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            queue = await repo.queue(name)
        except NoSuchQueue as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None
        members = {a.id: a.queues[name] for a in (await repo.agents()).values() if name in a.queues}
        return web.json_response({**queue.model_dump(mode="json"), "agents": members})

    async def put_queue(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        queue = _validated(QueueDef, "name", name, await _body(request))
        created = name not in await repo.queues()
        await repo.put_queue(queue)
        await _reload()
        return web.json_response(queue.model_dump(mode="json"), status=201 if created else 200)

    async def delete_queue(request: web.Request) -> web.Response:
        try:
            await repo.delete_queue(request.match_info["name"], force=request.query.get("force") == "true")
        except NoSuchQueue as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None
        except QueueInUse as exc:
            raise json_error(web.HTTPConflict, str(exc), agents=exc.agents) from None
        await _reload()
        return web.Response(status=204)

    async def list_agents(request: web.Request) -> web.Response:
        return web.json_response([a.model_dump(mode="json") for a in (await repo.agents()).values()])

    async def get_agent(request: web.Request) -> web.Response:
        try:
            return web.json_response((await repo.agent(request.match_info["agent_id"])).model_dump(mode="json"))
        except NoSuchAgent as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None

    async def put_agent(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        agent = _validated(AgentDef, "id", agent_id, await _body(request))
        created = agent_id not in await repo.agents()
        try:
            await repo.put_agent(agent)
        except NoSuchQueue as exc:
            raise json_error(web.HTTPUnprocessableEntity, str(exc), problems=[
                {"field": "queues", "message": str(exc)}]) from None
        await _reload()
        return web.json_response(agent.model_dump(mode="json"), status=201 if created else 200)

    async def delete_agent(request: web.Request) -> web.Response:
        try:
            await repo.delete_agent(request.match_info["agent_id"])
        except NoSuchAgent as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None
        await _reload()
        return web.Response(status=204)

    listed_queue = {"allOf": [queue_schema, {"type": "object", "properties": {"agents": {"type": "array",
                                                                                        "items": {"type": "string"}}}}]}
    api.add("GET", "/api/queues", list_queues, summary="Every queue, with its agents",
            returns={200: {"type": "array", "items": listed_queue}})
    api.add("GET", "/api/queues/{name}", get_queue, summary="One queue, with its agents and their penalties",
            params=[queue_name], returns={200: queue_schema, 404: ERROR})
    api.add("PUT", "/api/queues/{name}", put_queue, summary="Create or replace a queue",
            params=[queue_name], body=queue_body, returns={200: queue_schema, 201: queue_schema, 400: ERROR,
                                                          413: ERROR, 422: INVALID})
    api.add("DELETE", "/api/queues/{name}", delete_queue, summary="Delete a queue (force=true: its agents leave it)",
            params=[queue_name, Param("force", "query", {"type": "string", "enum": ["true", "false"]})],
            returns={204: None, 404: ERROR, 409: ERROR})
    api.add("GET", "/api/agents", list_agents, summary="Every agent",
            returns={200: {"type": "array", "items": agent_schema}})
    api.add("GET", "/api/agents/{agent_id}", get_agent, summary="One agent", params=[agent_id],
            returns={200: agent_schema, 404: ERROR})
    api.add("PUT", "/api/agents/{agent_id}", put_agent, summary="Create or replace an agent (its queues must exist)",
            params=[agent_id], body=agent_body, returns={200: agent_schema, 201: agent_schema, 400: ERROR,
                                                        413: ERROR, 422: INVALID})
    api.add("DELETE", "/api/agents/{agent_id}", delete_agent, summary="Delete an agent", params=[agent_id],
            returns={204: None, 404: ERROR})
    if runtime is not None:
        _add_runtime_routes(api, repo, runtime, agent_id, queue_name)


AGENT_STATE: Schema = {"type": "object", "required": ["agent", "state"], "properties": {
    "agent": {"type": "string"}, "state": {"type": "string", "enum": [
        "logged_out", "available", "reserved", "busy", "wrap_up", "paused"]},
    "reason": {"type": ["string", "null"]}}}


def _add_runtime_routes(api: Api, repo: AcdRepository, runtime: AcdRuntime, agent_id: Param,
                        queue_name: Param) -> None:
    from ivrpowers.acd import AcdError

    async def agent_action(request: web.Request) -> web.Response:
        agent, action = request.match_info["agent_id"], request.match_info["action"]
        if action not in AGENT_ACTIONS:
            raise json_error(web.HTTPNotFound, f"no such action {action!r} (one of {', '.join(AGENT_ACTIONS)})")
        reason = None
        if action == "pause" and request.can_read_body:
            reason = (await _body(request)).get("reason")
            if reason is not None and (not isinstance(reason, str) or not 0 < len(reason) <= 200):
                raise json_error(web.HTTPUnprocessableEntity, "reason must be text of 1 to 200 characters",
                                 problems=[{"field": "reason", "message": "1 to 200 characters"}])
        if agent not in await repo.agents():
            raise json_error(web.HTTPNotFound, f"there is no agent {agent!r}")
        await runtime.reload()  # an agent made a moment ago by the CLI
        try:
            runtime.agent_event(agent, AGENT_ACTIONS[action], reason)
        except AcdError as exc:
            raise json_error(web.HTTPConflict, str(exc)) from None
        return web.json_response(runtime.agent_state(agent))

    async def agent_state(request: web.Request) -> web.Response:
        agent = request.match_info["agent_id"]
        try:
            return web.json_response(runtime.agent_state(agent))
        except AcdError:
            raise json_error(web.HTTPNotFound, f"there is no agent {agent!r}") from None

    async def queue_now(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in await repo.queues():
            raise json_error(web.HTTPNotFound, f"there is no queue named {name!r}")
        return web.json_response(runtime.queue_now(name))

    async def reload(request: web.Request) -> web.Response:
        await runtime.reload()
        return web.Response(status=204)

    action = Param("action", "path", {"type": "string", "enum": list(AGENT_ACTIONS)})
    pause_body: Schema = {"type": "object", "properties": {"reason": {"type": "string", "minLength": 1,
                                                                      "maxLength": 200}}}
    api.add("POST", "/api/agents/{agent_id}/{action}", agent_action, params=[agent_id, action],
            summary="login, logout, pause (with a reason), unpause, end-wrap-up", body=pause_body,
            returns={200: AGENT_STATE, 400: ERROR, 404: ERROR, 409: ERROR, 422: INVALID})
    api.add("GET", "/api/agents/{agent_id}/state", agent_state, params=[agent_id],
            summary="What the agent is doing now", returns={200: AGENT_STATE, 404: ERROR})
    api.add("GET", "/api/queues/{name}/now", queue_now, params=[queue_name],
            summary="Callers waiting, the longest wait, agents by state", returns={200: {"type": "object"},
                                                                                 404: ERROR})
    api.add("POST", "/api/acd/reload", reload, summary="Take the queues and agents as now stored",
            returns={204: None})
