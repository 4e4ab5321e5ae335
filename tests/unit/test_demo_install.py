"""`ivrpowers run --demo` sets the demo up once and never undoes an operator's changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivrpowers.cli.demo import DEMO_NUMBER, install_demo
from ivrpowers.config import load_settings
from ivrpowers.resources import demo_flow
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowRepository
from ivrpowers.store.routes import RouteRepository

DEMO = demo_flow()


def state(settings) -> tuple[int | None, str | None, int]:  # type: ignore[no-untyped-def]
    async def read() -> tuple[int | None, str | None, int]:
        db = Database(settings.database_url)
        try:
            published = await FlowRepository(db).published("demo")
            route = await RouteRepository(db).get(DEMO_NUMBER)
            latest = await FlowRepository(db).get("demo")
            return (published.version if published else None, route.flow_name if route else None, latest.version)
        finally:
            await db.close()

    return asyncio.run(read())


def test_first_run_publishes_and_routes_then_respects_the_operator(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)
    install_demo(settings)  # the packaged demo flow
    assert state(settings) == (1, "demo", 1)

    install_demo(settings, DEMO)  # unchanged file: nothing new
    assert state(settings) == (1, "demo", 1)

    async def operator_changes() -> None:
        db = Database(settings.database_url)
        await FlowRepository(db).import_source("demo", DEMO.read_text() + "\n# v2\n", publish=True)
        await RouteRepository(db).set(DEMO_NUMBER, "other")
        await db.close()

    asyncio.run(operator_changes())
    changed = tmp_path / "demo.yaml"
    changed.write_text(DEMO.read_text() + "\n# edited in the clone\n")
    install_demo(settings, changed)
    published, route, latest = state(settings)
    assert (published, route, latest) == (2, "other", 3)  # imported, but neither published nor rerouted
