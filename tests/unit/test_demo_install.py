"""`ivrpowers run --demo` sets the demo up once and never undoes an operator's changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivrpowers.cli.demo import DEMO_NUMBER, install_demo
from ivrpowers.config import load_settings
from ivrpowers.media.library import MediaLibrary, media_root
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


def test_the_demo_has_a_support_queue_with_two_always_logged_in_agents_and_a_second_phone(tmp_path: Path) -> None:
    from ivrpowers.endpoints.accounts import password_digest
    from ivrpowers.endpoints.fields import REALM
    from ivrpowers.store.acd import AcdRepository
    from ivrpowers.store.endpoints import EndpointRepository

    settings = load_settings(state_dir=tmp_path)
    install_demo(settings)

    async def read() -> tuple[dict, dict, object, object]:  # type: ignore[type-arg]
        db = Database(settings.database_url)
        try:
            repo, endpoints = AcdRepository(db), EndpointRepository(db)
            return (await repo.queues(), await repo.agents(), await endpoints.get("agent2"),
                    await endpoints.get("webagent"))
        finally:
            await db.close()

    queues, agents, phone, browser = asyncio.run(read())
    assert list(queues) == ["support"] and queues["support"].video_hold == "video:demo-hold"
    assert queues["support"].channels == ["voice", "video", "chat"]
    assert {a.id: (a.endpoint, a.queues, a.auto_login, a.capacity.chat) for a in agents.values()} == {
        "agent1": ("agent1", {"support": 0}, True, 0), "agent2": ("agent2", {"support": 0}, True, 0),  # phones
        "webagent": ("webagent", {"support": 0}, False, 3)}  # signs in on /agent, chats there
    # The printed passwords are those the accounts' digests were made from.
    for account, record in (("agent2", phone), ("webagent", browser)):
        assert record is not None and record.password_digest == password_digest(  # type: ignore[attr-defined]
            account, REALM, settings.secrets()[f"{account}_password"])
    assert browser.kind == "webrtc"  # type: ignore[attr-defined]
    # The demo's video prompts are in the library, with both codecs.
    library = MediaLibrary(media_root(settings))
    assert {info.name: set(info.codecs) for info in library.list()} == {
        "demo-menu": {"vp8", "h264"}, "demo-hold": {"vp8", "h264"}}
    install_demo(settings)  # again: nothing changes, nothing fails
    assert list(asyncio.run(read())[0]) == ["support"]
