"""Dialed number -> the published flow version: one query per call, each version parsed once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivrpowers.calls.routing import Router, RoutingError
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowRepository
from ivrpowers.store.models import Base
from ivrpowers.store.routes import RouteRepository

FLOW = "name: {name}\nstart: bye\nnodes:\n  bye: {{type: hangup}}\n"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield database
    await database.close()


async def test_route_to_the_published_version_and_clear_reasons_otherwise(db: Database) -> None:
    flows, routes = FlowRepository(db), RouteRepository(db)
    router = Router(routes, flows, ttl=0)
    with pytest.raises(RoutingError, match="no route for number '100'"):
        await router.resolve("100")
    await flows.import_source("sales", FLOW.format(name="sales"))
    await routes.set("100", "sales")
    with pytest.raises(RoutingError, match="'sales' has no published version"):
        await router.resolve("100")
    await flows.publish("sales")
    flow, version = await router.resolve("100")
    assert (flow.name, version) == ("sales", 1)
    await flows.import_source("sales", FLOW.format(name="sales") + "# v2\n", publish=True)
    assert (await router.resolve("100"))[1] == 2  # a new publication takes the next call
    assert (await router.resolve("100"))[0] is (await router.resolve("100"))[0]  # parsed once


async def test_a_numbers_route_is_kept_for_ttl_seconds(db: Database) -> None:
    flows, routes = FlowRepository(db), RouteRepository(db)
    await flows.import_source("sales", FLOW.format(name="sales"), publish=True)
    await flows.import_source("support", FLOW.format(name="support"), publish=True)
    await routes.set("100", "sales")
    router = Router(routes, flows, ttl=3600)
    assert (await router.resolve("100"))[0].name == "sales"
    await routes.set("100", "support")
    assert (await router.resolve("100"))[0].name == "sales"  # still within the ttl
    router.ttl = 0
    assert (await router.resolve("100"))[0].name == "support"
