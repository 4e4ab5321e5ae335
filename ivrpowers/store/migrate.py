"""Schema migrations (Alembic, scripts in the project's `migrations/`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from ivrpowers.config import PROJECT_ROOT


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`. Runs its own event loop: call it from a thread."""
    command.upgrade(alembic_config(url), revision)
