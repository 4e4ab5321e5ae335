"""The OpenAPI document the `Api` registry writes: what every route with a body may answer, and the
ACD bodies described as the models check them (the fuzzing in test_api_fuzz.py relies on both)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from aiohttp import web
from pydantic import ValidationError

from ivrpowers.acd.definitions import AgentDef, QueueDef
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.db import Database
from ivrpowers.web.acd_api import add_acd_routes
from ivrpowers.web.openapi import ERROR, Api


async def _nothing(request: web.Request) -> web.Response:
    return web.Response(status=204)


def test_a_route_with_a_body_documents_the_errors_any_body_can_get() -> None:
    api = Api(web.Application(), "t", "0")
    api.add("PUT", "/things/{id}", _nothing, summary="s", returns={204: None}, body={"type": "object"})
    api.add("POST", "/things/{id}/poke", _nothing, summary="s", returns={204: None}, body={"type": "object"},
            body_required=False)
    api.add("GET", "/open", _nothing, summary="s", returns={200: None}, open=True)
    paths = api.document()["paths"]
    put = paths["/things/{id}"]["put"]
    assert set(put["responses"]) == {"204", "400", "401", "413"}  # not JSON, no token, too large
    assert put["responses"]["413"]["content"]["application/json"]["schema"] == ERROR
    assert put["requestBody"]["required"] is True
    assert paths["/things/{id}/poke"]["post"]["requestBody"]["required"] is False
    opened = paths["/open"]["get"]
    assert opened["security"] == [] and set(opened["responses"]) == {"200"}


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    api = Api(web.Application(), "t", "0")
    add_acd_routes(api, AcdRepository(Database("sqlite+aiosqlite://")))
    return dict(api.document()["components"])


def _agrees(components: dict[str, Any], name: str, model: type[QueueDef] | type[AgentDef], key: str,
            body: dict[str, Any]) -> bool:
    """Whether the document and the model give the same verdict on `body`; the verdict."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": components}
    documented = jsonschema_rs.validator_for(schema).is_valid(body)
    try:
        model.model_validate({**body, key: "x1"})
        taken = True
    except ValidationError:
        taken = False
    assert documented == taken, (body, documented, taken)
    return taken


@pytest.mark.parametrize(("body", "valid"), [
    ({}, True),
    ({"strategy": "skills", "skill_relaxation": [{"after": 30, "lower_by": 1}]}, True),
    ({"skill_relaxation": [{"after": 30, "lower_by": 1}]}, False),  # for the skills strategy only
    ({"strategy": "linear", "skill_relaxation": []}, True),
    ({"channels": ["voice", "voice"]}, False),
    ({"channels": []}, False),
    ({"hold": "moh:default"}, True),
    ({"hold": "music"}, False),
    ({"ring_timeout": 30.5}, False),
    ({"ring_timeout": "30"}, False),
    ({"colour": "red"}, False),
])
def test_the_queue_body_is_valid_where_the_model_takes_it(components: dict[str, Any], body: dict[str, Any],
                                                          valid: bool) -> None:
    assert _agrees(components, "QueueBody", QueueDef, "name", body) is valid


@pytest.mark.parametrize(("body", "valid"), [
    ({"name": "Ana", "endpoint": "agent1"}, True),
    ({"name": "Ana"}, False),  # takes calls, no phone to ring
    ({"name": "Ana", "endpoint": None}, False),
    ({"name": "Ana", "capacity": {"voice": 0, "video": 0, "chat": 2}}, True),  # chats only
    ({"name": "Ana", "capacity": {"voice": 0}}, False),  # video still 1
    ({"name": "Ana", "endpoint": "Agent 1"}, False),
    ({"name": "Ana", "endpoint": "a1", "skills": {"Billing": 3}}, False),
    ({"name": "Ana", "endpoint": "a1", "skills": {"billing": 3}, "queues": ["sales", "support"]}, True),
    ({"name": "Ana", "endpoint": "a1", "queues": {"sales": 0, "Support!": 1}}, False),
    ({"name": "", "endpoint": "a1"}, False),
])
def test_the_agent_body_is_valid_where_the_model_takes_it(components: dict[str, Any], body: dict[str, Any],
                                                          valid: bool) -> None:
    assert _agrees(components, "AgentBody", AgentDef, "id", body) is valid
