"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ivrpowers.store import chat_models as _chat_models  # noqa: F401
from ivrpowers.store import endpoints as _endpoints  # noqa: F401  (its model joins Base.metadata)
from ivrpowers.store.db import create_engine
from ivrpowers.store.migrate import upgrade
from ivrpowers.store.models import Base


async def test_upgrade_head_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    await engine.dispose()
    assert diff == [], f"models and migrations differ (write a migration): {diff}"


async def test_check_schema_refuses_an_unmigrated_database_and_accepts_head(tmp_path: Path) -> None:
    import pytest

    from ivrpowers.store.migrate import SchemaOutdated, check_schema

    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    with pytest.raises(SchemaOutdated, match="ivrpowers db upgrade"):
        await check_schema(url)
    await asyncio.to_thread(upgrade, url, "0001")
    with pytest.raises(SchemaOutdated, match="0001"):
        await check_schema(url)
    await asyncio.to_thread(upgrade, url)
    await check_schema(url)
