"""REST for the ACD's definitions: `/api/queues` and `/api/agents` (the same checks and errors as
`ivrpowers queue|agent ...`)."""

from __future__ import annotations

import copy
import re
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ivrpowers.acd.definitions import _HOLD, _NAME, _VIDEO_HOLD, AgentDef, QueueDef
from ivrpowers.store.acd import AcdRepository, NoSuchAgent, NoSuchQueue, QueueInUse
from ivrpowers.web.json_body import json_error, read_object
from ivrpowers.web.openapi import ERROR, Api, Param, Schema
from ivrpowers.yamlfile import describe

INVALID: Schema = {"type": "object", "required": ["error", "problems"], "properties": {
    "error": {"type": "string"},
    "problems": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "message": {"type": "string"}}}}}}
NAME: Schema = {"type": "string", "pattern": f"^{_NAME.pattern}$"}
# A pause's reason is stored as text: no control characters (PostgreSQL refuses NUL in text).
_REASON = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
REASON: Schema = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": f"^{_REASON.pattern}$"}


class AcdRuntime(Protocol):
    """What the controller's running ACD answers (`calls.acd_service.AcdService`)."""

    async def reload(self) -> None: ...

    def agent_event(self, agent_id: str, event: str, reason: str | None = None) -> None: ...

    def agent_state(self, agent_id: str) -> dict[str, Any]: ...

    async def hold_call(self, agent_id: str, on: bool) -> None: ...

    async def transfer_call(self, agent_id: str, queue: str) -> None: ...

    def queue_now(self, queue: str) -> dict[str, Any]: ...


AGENT_ACTIONS = {"login": "login", "logout": "logout", "pause": "pause", "unpause": "unpause",
                 "end-wrap-up": "end_wrap_up"}
CALL_ACTIONS = ("hold", "unhold", "transfer")
_QUEUE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


async def _transfer_target(request: web.Request) -> str:
    """The queue a transfer's body names: `{"queue": "sales"}`."""
    try:
        body = await request.json()
    except ValueError:
        raise json_error(web.HTTPBadRequest, 'the body must be JSON: {"queue": NAME}') from None
    queue = body.get("queue") if isinstance(body, dict) else None
    if not isinstance(queue, str) or not _QUEUE_NAME.fullmatch(queue):
        raise json_error(web.HTTPUnprocessableEntity, 'a transfer names a queue: {"queue": NAME}')
    return queue


def _validated(model: type[QueueDef] | type[AgentDef], key: str, name: str, body: dict[str, Any]) -> Any:
    if body.get(key, name) != name:
        raise json_error(web.HTTPUnprocessableEntity, f"{key} in the body ({body[key]!r}) is not the one in the path",
                         problems=[])
    try:
        return model.model_validate({**body, key: name})
    except ValidationError as exc:
        problems = [describe(error) for error in exc.errors()]
        more = f" (and {len(problems) - 1} more in problems)" if len(problems) > 1 else ""
        raise json_error(web.HTTPUnprocessableEntity, problems[0][1] + more, problems=[
            {"field": ".".join(map(str, loc)), "message": message} for loc, message in problems]) from None


def _checked_by_validators(name: str, schema: Schema) -> Schema:
    """`schema` (pydantic's, of QueueDef or AgentDef) with what the models' validators check besides
    (names, hold media, lists without repeats, rules across fields), so that what the document
    calls valid is, as far as JSON Schema can say it, what the API takes."""
    schema = copy.deepcopy(schema)
    props = schema["properties"]
    if name == "Queue":
        props["name"].update(NAME)
        props["channels"].update(minItems=1, uniqueItems=True)
        props["hold"]["pattern"] = f"^(?:{_HOLD.pattern})$"
        props["video_hold"]["anyOf"][0]["pattern"] = f"^(?:{_VIDEO_HOLD.pattern})$"
        props["skill_relaxation"]["description"] = "for the 'skills' strategy only; steps in order of 'after'"
        schema["anyOf"] = [{"required": ["strategy"], "properties": {"strategy": {"const": "skills"}}},
                           {"properties": {"skill_relaxation": {"maxItems": 0}}}]
    else:
        props["id"].update(NAME)
        props["endpoint"]["anyOf"][0].update(NAME)
        props["skills"]["propertyNames"] = NAME
        props["queues"]["propertyNames"] = NAME
        # An agent that takes calls has a phone to ring.
        schema["anyOf"] = [{"required": ["endpoint"], "properties": {"endpoint": {"type": "string"}}},
                           {"required": ["capacity"], "properties": {"capacity": {
                               "required": ["voice", "video"], "properties": {"voice": {"const": 0},
                                                                              "video": {"const": 0}}}}}]
    return schema


def _body_schema(api: Api, name: str, model: type[BaseModel], key: str) -> tuple[Schema, Schema]:
    """(the stored definition's schema, the body's: the same without the key, which the path gives)."""
    full = _checked_by_validators(name, model.model_json_schema(mode="serialization"))
    stored = api.component(name, full)
    body = {k: v for k, v in copy.deepcopy(full).items() if k != "$defs"}
    body["properties"] = {k: v for k, v in body["properties"].items() if k != key}
    body["required"] = [r for r in body.get("required", []) if r != key]
    if "queues" in body["properties"]:  # the short form too: a list of queues, each with penalty 0
        body["properties"]["queues"] = {"anyOf": [body["properties"]["queues"], {"type": "array", "items": NAME}],
                                        "default": {}}
    return stored, api.component(f"{name}Body", body)


def _with_agents(api: Api, name: str, stored: Schema, agents: Schema) -> Schema:
    """A queue as listed or shown: its definition and its agents."""
    schema = copy.deepcopy(api.components[stored["$ref"].rsplit("/", 1)[1]])
    schema["properties"]["agents"] = agents
    schema["required"] = [*schema.get("required", []), "agents"]
    return api.component(name, schema)


def _named(request: web.Request, key: str, what: str) -> str:
    """The path's queue name or agent id; one that no definition can have is none of ours (404), and
    goes no further (PostgreSQL, for one, refuses a NUL in a query's text)."""
    name = request.match_info[key]
    if not _NAME.fullmatch(name):
        raise json_error(web.HTTPNotFound, f"there is no {what} {name[:80]!r}")
    return name


def add_acd_routes(api: Api, repo: AcdRepository, runtime: AcdRuntime | None = None) -> None:
    queue_schema, queue_body = _body_schema(api, "Queue", QueueDef, "name")
    agent_schema, agent_body = _body_schema(api, "Agent", AgentDef, "id")
    listed_queue = _with_agents(api, "ListedQueue", queue_schema, {"type": "array", "items": NAME})
    shown_queue = _with_agents(api, "QueueWithAgents", queue_schema, {
        "type": "object", "description": "agent id -> penalty", "propertyNames": NAME,
        "additionalProperties": {"type": "integer"}})
    queue_name = Param("name", "path", NAME, "the queue's name")
    agent_id = Param("agent_id", "path", NAME, "the agent's id")

    async def _reload() -> None:
        if runtime is not None:
            await runtime.reload()

    async def list_queues(request: web.Request) -> web.Response:
        agents = (await repo.agents()).values()
        return web.json_response([{**q.model_dump(mode="json"), "agents": sorted(a.id for a in agents
                                                                                 if q.name in a.queues)}
                                  for q in (await repo.queues()).values()])

    async def get_queue(request: web.Request) -> web.Response:
        name = _named(request, "name", "queue")
        try:
            queue = await repo.queue(name)
        except NoSuchQueue as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None
        members = {a.id: a.queues[name] for a in (await repo.agents()).values() if name in a.queues}
        return web.json_response({**queue.model_dump(mode="json"), "agents": members})

    async def put_queue(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        queue = _validated(QueueDef, "name", name, await read_object(request))
        created = name not in await repo.queues()
        await repo.put_queue(queue)
        await _reload()
        return web.json_response(queue.model_dump(mode="json"), status=201 if created else 200)

    async def delete_queue(request: web.Request) -> web.Response:
        force = request.query.get("force", "false")
        if force not in ("true", "false"):
            raise json_error(web.HTTPBadRequest, "force must be true or false")
        try:
            await repo.delete_queue(_named(request, "name", "queue"), force=force == "true")
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
            return web.json_response((await repo.agent(_named(request, "agent_id", "agent"))).model_dump(mode="json"))
        except NoSuchAgent as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None

    async def put_agent(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        agent = _validated(AgentDef, "id", agent_id, await read_object(request))
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
            await repo.delete_agent(_named(request, "agent_id", "agent"))
        except NoSuchAgent as exc:
            raise json_error(web.HTTPNotFound, str(exc)) from None
        await _reload()
        return web.Response(status=204)

    api.add("GET", "/api/queues", list_queues, summary="Every queue, with its agents",
            returns={200: {"type": "array", "items": listed_queue}})
    api.add("GET", "/api/queues/{name}", get_queue, summary="One queue, with its agents and their penalties",
            params=[queue_name], returns={200: shown_queue, 404: ERROR})
    api.add("PUT", "/api/queues/{name}", put_queue, summary="Create or replace a queue",
            params=[queue_name], body=queue_body, returns={200: queue_schema, 201: queue_schema, 422: INVALID})
    api.add("DELETE", "/api/queues/{name}", delete_queue, summary="Delete a queue (force=true: its agents leave it)",
            params=[queue_name, Param("force", "query", {"type": "string", "enum": ["true", "false"]},
                                      "true: delete it even if agents are in it (they leave it)")],
            returns={204: None, 400: ERROR, 404: ERROR, 409: ERROR})
    api.add("GET", "/api/agents", list_agents, summary="Every agent",
            returns={200: {"type": "array", "items": agent_schema}})
    api.add("GET", "/api/agents/{agent_id}", get_agent, summary="One agent", params=[agent_id],
            returns={200: agent_schema, 404: ERROR})
    api.add("PUT", "/api/agents/{agent_id}", put_agent, summary="Create or replace an agent (its queues must exist)",
            params=[agent_id], body=agent_body, returns={200: agent_schema, 201: agent_schema, 422: INVALID})
    api.add("DELETE", "/api/agents/{agent_id}", delete_agent, summary="Delete an agent", params=[agent_id],
            returns={204: None, 404: ERROR})
    if runtime is not None:
        _add_runtime_routes(api, repo, runtime, agent_id, queue_name)


AGENT_STATE: Schema = {"type": "object", "required": ["agent", "state"], "properties": {
    "agent": NAME, "state": {"type": "string", "enum": [
        "logged_out", "available", "reserved", "busy", "wrap_up", "paused", "unreachable"]},
    "reason": {"type": ["string", "null"]}, "logged_in": {"type": "boolean"}, "reachable": {"type": "boolean"},
    "answered": {"type": "integer", "minimum": 0}, "offers": {"type": "array", "items": {"type": "string"}},
    "tasks": {"type": "array", "items": {"type": "string"}},
    "wrap_up_until": {"type": ["string", "null"], "format": "date-time"}}}
QUEUE_NOW: Schema = {"type": "object", "required": ["queue", "waiting", "longest_wait", "agents"], "properties": {
    "queue": NAME, "waiting": {"type": "integer", "minimum": 0},
    "longest_wait": {"type": "number", "minimum": 0, "description": "seconds"},
    "tasks": {"type": "array", "items": {"type": "string"}, "description": "the waiting tasks, next served first"},
    "agents": {"type": "object", "description": "state -> how many of the queue's agents are in it",
               "additionalProperties": {"type": "integer", "minimum": 1}}}}
PAUSE: Schema = {"type": "object", "additionalProperties": False, "properties": {"reason": REASON},
                 "description": "why ('break' when not given)"}


def _add_runtime_routes(api: Api, repo: AcdRepository, runtime: AcdRuntime, agent_id: Param,
                        queue_name: Param) -> None:
    from ivrpowers.acd import AcdError

    async def agent_action(request: web.Request) -> web.Response:
        agent, action = _named(request, "agent_id", "agent"), request.match_info.get("action", "pause")
        if action not in AGENT_ACTIONS:
            raise json_error(web.HTTPNotFound, f"no such action {action[:80]!r} (one of {', '.join(AGENT_ACTIONS)})")
        reason = None
        if action == "pause" and request.can_read_body:
            body = await read_object(request)
            reason = body.pop("reason", None)
            if body:
                raise json_error(web.HTTPUnprocessableEntity, "a pause takes a reason and nothing else",
                                 problems=[{"field": str(k), "message": "unknown field"} for k in body])
            if reason is not None and (not isinstance(reason, str) or not _REASON.fullmatch(reason)):
                raise json_error(web.HTTPUnprocessableEntity,
                                 "reason must be text of 1 to 200 characters, without control characters",
                                 problems=[{"field": "reason", "message": "1 to 200 characters"}])
        if agent not in await repo.agents():
            raise json_error(web.HTTPNotFound, f"there is no agent {agent!r}")
        await runtime.reload()  # an agent made a moment ago by the CLI
        try:
            runtime.agent_event(agent, AGENT_ACTIONS[action], reason)
        except AcdError as exc:
            raise json_error(web.HTTPConflict, str(exc)) from None
        return web.json_response(runtime.agent_state(agent))

    async def call_action(request: web.Request) -> web.Response:
        agent = _named(request, "agent_id", "agent")
        action = request.match_info["action"]
        if action not in CALL_ACTIONS:
            raise json_error(web.HTTPNotFound, f"no call action {action[:20]!r} (actions: {', '.join(CALL_ACTIONS)})")
        try:
            if action == "transfer":
                queue = await _transfer_target(request)
                await runtime.transfer_call(agent, queue)
                return web.json_response({"agent": agent, "transferred_to": queue})
            await runtime.hold_call(agent, action == "hold")
        except AcdError as exc:
            raise json_error(web.HTTPConflict, str(exc)) from None
        return web.json_response({"agent": agent, "held": action == "hold"})

    async def agent_state(request: web.Request) -> web.Response:
        agent = _named(request, "agent_id", "agent")
        try:
            return web.json_response(runtime.agent_state(agent))
        except AcdError:
            raise json_error(web.HTTPNotFound, f"there is no agent {agent!r}") from None

    async def queue_now(request: web.Request) -> web.Response:
        name = _named(request, "name", "queue")
        if name not in await repo.queues():
            raise json_error(web.HTTPNotFound, f"there is no queue named {name!r}")
        try:
            return web.json_response(runtime.queue_now(name))
        except AcdError:  # stored a moment ago by the CLI, not taken yet: take it
            await runtime.reload()
            return web.json_response(runtime.queue_now(name))

    async def reload(request: web.Request) -> web.Response:
        await runtime.reload()
        return web.Response(status=204)

    # A pause is the one action with a body: described apart, before the route that takes the others.
    api.add("POST", "/api/agents/{agent_id}/pause", agent_action, params=[agent_id], summary="Pause, with a reason",
            body=PAUSE, body_required=False, returns={200: AGENT_STATE, 404: ERROR, 409: ERROR, 422: INVALID})
    action = Param("action", "path", {"type": "string", "enum": [a for a in AGENT_ACTIONS if a != "pause"]})
    api.add("POST", "/api/agents/{agent_id}/{action}", agent_action, params=[agent_id, action],
            summary="login, logout, unpause, end-wrap-up", returns={200: AGENT_STATE, 404: ERROR, 409: ERROR})
    call_action_param = Param("action", "path", {"type": "string", "enum": list(CALL_ACTIONS)})
    api.add("POST", "/api/agents/{agent_id}/call/{action}", call_action, params=[agent_id, call_action_param],
            summary="The agent's call: hold puts the caller on hold (the queue's hold, video hold for video "
                    "callers), unhold takes them back, transfer (body {\"queue\": NAME}) sends them to another "
                    "queue to wait again", returns={200: {"type": "object"}, 400: ERROR, 404: ERROR, 409: ERROR,
                                                    422: ERROR})
    api.add("GET", "/api/agents/{agent_id}/state", agent_state, params=[agent_id],
            summary="What the agent is doing now", returns={200: AGENT_STATE, 404: ERROR})
    api.add("GET", "/api/queues/{name}/now", queue_now, params=[queue_name],
            summary="Callers waiting, the longest wait, agents by state", returns={200: QUEUE_NOW, 404: ERROR})
    api.add("POST", "/api/acd/reload", reload, summary="Take the queues and agents as now stored",
            returns={204: None})
