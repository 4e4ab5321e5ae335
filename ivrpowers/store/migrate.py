"""Schema migrations (Alembic, scripts in the package: `ivrpowers/store/migrations/`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from ivrpowers.resources import migrations


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`. Runs its own event loop: call it from a thread."""
    command.upgrade(alembic_config(url), revision)


class SchemaOutdated(RuntimeError):
    """`problem` is what is wrong with the schema; `str()` adds the fix."""

    FIX = "run `ivrpowers db upgrade`"

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}: {self.FIX}")
        self.problem = problem


async def check_schema(url: str) -> None:
    """Raise SchemaOutdated unless the database is at the newest migration.

    A database that cannot be reached is not an error here: the controller starts anyway and its
    CDR writer waits for the database to come back.
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from ivrpowers.store.db import create_engine

    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            current = set(await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_heads()))
    finally:
        await engine.dispose()
    if current != heads:
        have = ", ".join(sorted(current)) or "empty"
        raise SchemaOutdated(f"database schema is {have}, this version needs {', '.join(sorted(heads))}")
