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


async def sales_then_support(db: Database) -> tuple[Router, RouteRepository]:
    """A router that has learnt 100 -> sales, and the route changed to support since."""
    flows, routes = FlowRepository(db), RouteRepository(db)
    await flows.import_source("sales", FLOW.format(name="sales"), publish=True)
    await flows.import_source("support", FLOW.format(name="support"), publish=True)
    await routes.set("100", "sales")
    router = Router(routes, flows, ttl=3600)
    assert (await router.resolve("100"))[0].name == "sales"
    await routes.set("100", "support")
    return router, routes


async def test_a_numbers_route_is_kept_for_ttl_seconds(db: Database) -> None:
    router, _ = await sales_then_support(db)
    assert (await router.resolve("100"))[0].name == "sales"  # still within the ttl
    router.ttl = 0
    assert (await router.resolve("100"))[0].name == "support"


async def test_a_stale_route_is_served_at_once_while_it_is_refreshed(db: Database) -> None:
    router, routes = await sales_then_support(db)
    router.ttl = 1e-9  # everything known is stale from now on, but not too stale to serve
    router.max_stale = 3600
    lookups = 0
    real = routes.published_flow

    async def counted(number: str) -> tuple[str, int | None] | None:
        nonlocal lookups
        lookups += 1
        return await real(number)

    routes.published_flow = counted  # type: ignore[method-assign]
    # The stale answer at once, for every call until the one refresh lands...
    assert [(await router.resolve("100"))[0].name for _ in range(3)] == ["sales"] * 3
    await router.settle()
    assert lookups == 1
    # ...then the new one.
    assert (await router.resolve("100"))[0].name == "support"


async def test_a_failing_refresh_keeps_the_last_known_route(db: Database) -> None:
    flows, routes = FlowRepository(db), RouteRepository(db)
    await flows.import_source("sales", FLOW.format(name="sales"), publish=True)
    await routes.set("100", "sales")
    router = Router(routes, flows, ttl=3600, max_stale=3600)
    assert (await router.resolve("100"))[0].name == "sales"
    router.ttl = 1e-9

    async def down(number: str) -> tuple[str, int | None] | None:
        raise ConnectionError("database unreachable")

    routes.published_flow = down  # type: ignore[method-assign]
    assert (await router.resolve("100"))[0].name == "sales"
    await router.settle()
    assert (await router.resolve("100"))[0].name == "sales"  # the outage does not unroute the number
    await router.settle()
    with pytest.raises(ConnectionError):  # a number never seen has nothing to fall back on
        await router.resolve("200")


async def test_a_route_older_than_max_stale_is_looked_up_before_the_call_goes_on(db: Database) -> None:
    router, routes = await sales_then_support(db)
    router.ttl, router.max_stale = 1e-9, 1e-9  # a quiet number: its known answer is too old to serve
    assert (await router.resolve("100"))[0].name == "support"  # this very call sees the change

    async def down(number: str) -> tuple[str, int | None] | None:
        raise ConnectionError("database unreachable")

    routes.published_flow = down  # type: ignore[method-assign]
    assert (await router.resolve("100"))[0].name == "support"  # an outage keeps the last known route


ANSWERING = "name: {name}\nstart: hi\nnodes:\n  hi: {{type: answer, next: bye}}\n  bye: {{type: hangup}}\n"


async def test_a_call_is_answered_at_once_only_when_its_known_flow_starts_by_answering(db: Database) -> None:
    flows, routes = FlowRepository(db), RouteRepository(db)
    await flows.import_source("sales", ANSWERING.format(name="sales"), publish=True)
    await flows.import_source("closed", FLOW.format(name="closed"), publish=True)  # hangs up unanswered
    await routes.set("100", "sales")
    await routes.set("200", "closed")
    router = Router(routes, flows, ttl=3600, max_stale=3600)
    assert not router.answers_first("100")  # not looked up yet: only `resolve` may tell
    await router.resolve("100")
    await router.resolve("200")
    assert router.answers_first("100") and not router.answers_first("200")
    assert not router.answers_first("999")
    # Known too long ago: `resolve` will look it up again, and the answer may have changed.
    router.ttl, router.max_stale = 1e-9, 1e-9
    assert not router.answers_first("100")
    router.ttl, router.max_stale = 0, 3600  # every call looks its route up
    assert not router.answers_first("100")
