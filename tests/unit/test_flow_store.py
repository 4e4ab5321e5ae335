"""Flow versions in the store: import, unchanged re-import, publish, lookups."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowNotFound, FlowRepository
from ivrpowers.store.migrate import upgrade


@pytest.fixture
async def repo(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'flows.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    yield FlowRepository(db)
    await db.close()


async def test_versions_publish_and_lookup(repo: FlowRepository) -> None:
    v1, created = await repo.import_source("demo", "a", publish=True)
    assert (v1.version, created, v1.published) == (1, True, True)
    same, created = await repo.import_source("demo", "a")
    assert (same.version, created) == (1, False)
    v2, created = await repo.import_source("demo", "b")
    assert (v2.version, created, v2.published) == (2, True, False)
    assert (await repo.published("demo")).version == 1  # importing does not change what calls run
    assert (await repo.get("demo")).source == "b"
    assert (await repo.get("demo", 1)).source == "a"
    await repo.publish("demo", 2)
    assert (await repo.published("demo")).version == 2
    [summary] = await repo.summaries()
    assert (summary.latest_version, summary.published_version, summary.versions) == (2, 2, 2)


async def test_missing_flows_and_versions_are_named(repo: FlowRepository) -> None:
    with pytest.raises(FlowNotFound, match="'nope'"):
        await repo.get("nope")
    await repo.import_source("demo", "a")
    with pytest.raises(FlowNotFound, match="version 7"):
        await repo.publish("demo", 7)
    assert await repo.published("demo") is None
