"""The REST API for queues and agents, and the OpenAPI document that describes every route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.web.app import create_app

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ok", "problems": []}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    app = create_app(health=Health(), cdrs=CdrRepository(db), api_token=TOKEN, acd=AcdRepository(db))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await db.close()


async def test_queues_and_agents_are_created_read_replaced_and_deleted(client: TestClient[Any, Any]) -> None:
    made = await client.put("/api/queues/sales", json={"strategy": "linear", "channels": ["voice", "chat"]},
                            headers=AUTH)
    assert made.status == 201 and (await made.json())["ring_timeout"] == 20
    again = await client.put("/api/queues/sales", json={"strategy": "ringall"}, headers=AUTH)
    assert again.status == 200 and (await again.json())["channels"] == ["voice"]  # replaced whole
    agent = {"name": "Ana", "endpoint": "agent1", "skills": {"billing": 7}, "queues": {"sales": 1}}
    assert (await client.put("/api/agents/ana", json=agent, headers=AUTH)).status == 201
    queue = await (await client.get("/api/queues/sales", headers=AUTH)).json()
    assert queue["strategy"] == "ringall" and queue["agents"] == {"ana": 1}
    assert [q["agents"] for q in await (await client.get("/api/queues", headers=AUTH)).json()] == [["ana"]]
    assert (await (await client.get("/api/agents/ana", headers=AUTH)).json())["skills"] == {"billing": 7}

    in_use = await client.delete("/api/queues/sales", headers=AUTH)
    assert in_use.status == 409 and (await in_use.json())["agents"] == ["ana"]
    assert (await client.delete("/api/queues/sales?force=true", headers=AUTH)).status == 204
    assert (await (await client.get("/api/agents/ana", headers=AUTH)).json())["queues"] == {}
    assert (await client.delete("/api/agents/ana", headers=AUTH)).status == 204
    assert (await client.get("/api/agents/ana", headers=AUTH)).status == 404
    assert await (await client.get("/api/agents", headers=AUTH)).json() == []


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/api/queues/sales", {"ring_timeout": "20"}, 422, "ring_timeout: Input should be a valid integer, got a string"),
    ("/api/queues/sales", {"name": "other"}, 422, "name in the body ('other') is not the one in the path"),
    ("/api/queues/Sales!", {}, 422, "'Sales!' is not a valid name"),
    ("/api/queues/sales", [1, 2], 422, "the body must be a JSON object"),
    ("/api/agents/ana", {"name": "Ana", "endpoint": "agent1", "queues": ["nowhere"]}, 422,
     "there is no queue named 'nowhere'"),
    ("/api/agents/ana", {"name": "Ana"}, 422, "has no endpoint to ring"),
])
async def test_invalid_definitions_are_refused_with_what_is_wrong(
    client: TestClient[Any, Any], path: str, body: Any, status: int, message: str
) -> None:
    resp = await client.put(path, json=body, headers=AUTH)
    answer = await resp.json()
    assert resp.status == status and message in answer["error"], answer
    assert await (await client.get("/api/queues", headers=AUTH)).json() == []


async def test_a_body_that_is_not_json_or_too_big_is_refused(client: TestClient[Any, Any]) -> None:
    assert (await client.put("/api/queues/sales", data=b"\xff{", headers=AUTH)).status == 400
    huge = await client.put("/api/queues/sales", data=b"{" + b" " * 70_000 + b"}", headers=AUTH)
    assert huge.status == 413
    assert (await client.put("/api/queues/sales", json={})).status == 401


async def test_the_openapi_document_describes_every_route_the_app_serves(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/openapi.json")  # open, like /health
    assert resp.status == 200
    document = await resp.json()
    assert document["openapi"].startswith("3.1")
    served = {(route.method.lower(), route.resource.canonical) for route in client.app.router.routes()
              if route.resource is not None and route.method != "HEAD"}
    described = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert described == served - {("get", "/")}  # the index page is not API
    put_queue = document["paths"]["/api/queues/{name}"]["put"]
    body = put_queue["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    schema = document["components"]["schemas"][body]
    assert "name" not in schema["properties"] and "strategy" in schema["properties"]
    assert set(put_queue["responses"]) >= {"200", "201", "401", "422"}
    refs = [v for v in _walk(document) if isinstance(v, str) and v.startswith("#/")]
    for ref in refs:  # every reference resolves
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part]


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
    else:
        yield value
