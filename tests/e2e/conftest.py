"""End-to-end fixtures: the private network namespace, fake cameras, chromium driven by Playwright.

Nothing here skips: without root, unshare, chromium or ffmpeg the session stops and says why.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from .browser import BROWSER_LOG, PHASE_REPORTS, browsers  # noqa: F401  (fixture)
from .camera import Cameras
from .netns import MEDIA_ADDRESS, NamespaceError, enter_private_namespace

__all__ = ["MEDIA_ADDRESS"]

E2E_DIR = Path(__file__).resolve().parent
HOST_NETNS = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    # The namespace is for the whole process: tests collected alongside (PyPI installs, the host's
    # PostgreSQL...) would lose the network, so the e2e tests run in a pytest of their own.
    outside = [arg for arg in config.args if not _under_e2e(config, arg)]
    if outside:
        pytest.exit(f"tests/e2e runs in a private network namespace, so on its own (make e2e); "
                    f"also given: {' '.join(outside)}", returncode=pytest.ExitCode.USAGE_ERROR)
    try:
        config.stash[HOST_NETNS] = enter_private_namespace()
    except NamespaceError as e:
        pytest.exit(f"e2e: {e}", returncode=pytest.ExitCode.INTERNAL_ERROR)


def pytest_unconfigure(config: pytest.Config) -> None:
    fd = config.stash.get(HOST_NETNS, None)
    if fd is not None:
        os.close(fd)


def _under_e2e(config: pytest.Config, arg: str) -> bool:
    path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
    return path == E2E_DIR or E2E_DIR in path.parents


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                             pytest.TestReport]:
    report = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    lines = item.stash.get(BROWSER_LOG, None)
    if report.failed and lines:
        report.sections.append(("browser console and page errors", "\n".join(lines)))
    return report


@pytest.fixture(scope="session")
def host_netns(request: pytest.FixtureRequest) -> int:
    """A file descriptor on the network namespace the test process came from (the host's)."""
    return request.config.stash[HOST_NETNS]


@pytest.fixture(scope="session")
def cameras(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cameras]:
    """Fake camera files (y4m), made once per colour per session."""
    yield Cameras(tmp_path_factory.mktemp("cameras"))
