"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .cli_run import run, state  # noqa: F401  (fixtures: the CLI in-process, an installation)
from .fake_asterisk import FakeAsterisk


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAsterisk]:
    """A fake Asterisk (ARI REST and events) on 127.0.0.1, for the controller's and the client's tests."""
    fake = FakeAsterisk()
    await fake.start()
    yield fake
    await fake.close()
