"""Chromium driven by Playwright (async API), one process per fake camera.

Debian's /usr/bin/chromium is launched directly (Playwright never downloads a browser here). Each browser
is its own chromium process because the camera file is a command-line flag. What the pages print and
throw is collected and attached to a failing test's report; a failing test also leaves a screenshot of
every page under test-artifacts/e2e/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, async_playwright

from ivrpowers.config import PROJECT_ROOT

from .camera import Camera

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "e2e"
PROBE_JS = Path(__file__).with_name("media_probe.js")

# Fake media without prompts, the camera from a file, loopback ICE candidates (chromium drops them
# otherwise), media that plays without a click.
MEDIA_FLAGS = ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
               "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]
# No GPU on the test machines, and nothing that reaches out on its own (there is no network anyway).
QUIET_FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]

BROWSER_LOG = pytest.StashKey[list[str]]()
PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@dataclass
class BrowserUnderTest:
    name: str
    camera: Camera
    browser: Browser
    context: BrowserContext
    page: Page

    def crash(self) -> int:
        """SIGKILL this chromium's processes, as a crash or a machine that loses power does: no BYE,
        no unload handler. Returns how many processes were killed."""
        flag = f"--use-file-for-fake-video-capture={self.camera.path}".encode()
        parents: dict[int, int] = {}
        mine: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat, cmdline = (entry / "stat").read_text(), (entry / "cmdline").read_bytes()
            except OSError:
                continue  # gone meanwhile
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            if flag in cmdline.split(b"\0"):
                mine.add(int(entry.name))
        assert mine, f"no chromium process with {flag!r}"
        while grown := {pid for pid, parent in parents.items() if parent in mine} - mine:
            mine |= grown  # its renderers, network service (the SIP websocket's), GPU process...
        for pid in mine:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(mine)


@dataclass
class Browsers:
    """Opens chromium processes for one test; the fixture closes them."""

    playwright: Playwright
    log: list[str]
    opened: list[BrowserUnderTest] = field(default_factory=list)

    async def open(self, name: str, camera: Camera, extra_args: Sequence[str] = ()) -> BrowserUnderTest:
        # launch() gives each process a fresh temporary profile (user-data-dir) and deletes it at close.
        browser = await self.playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*MEDIA_FLAGS, f"--use-file-for-fake-video-capture={camera.path}", *QUIET_FLAGS, *extra_args])
        context = await browser.new_context(viewport={"width": 800, "height": 600})
        # The probe is in every page before the page's own scripts, so it sees every RTCPeerConnection.
        await context.add_init_script(path=PROBE_JS)
        page = await context.new_page()
        self._listen(name, page)
        opened = BrowserUnderTest(name, camera, browser, context, page)
        self.opened.append(opened)
        return opened

    async def open_many(self, cameras: dict[str, Camera]) -> list[BrowserUnderTest]:
        """One browser per (name, camera), launched side by side."""
        return list(await asyncio.gather(*(self.open(name, cam) for name, cam in cameras.items())))

    def _listen(self, name: str, page: Page) -> None:
        def console(msg: ConsoleMessage) -> None:
            self.log.append(f"[{name}] console.{msg.type}: {msg.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: self.log.append(f"[{name}] page error: {error}"))
        page.on("crash", lambda _: self.log.append(f"[{name}] page crashed"))
        page.on("requestfailed", lambda r: self.log.append(f"[{name}] request failed: {r.url} {r.failure}"))

    async def close(self, screenshots_prefix: str | None) -> None:
        for opened in self.opened:
            if screenshots_prefix is not None and not opened.page.is_closed():
                try:
                    await screenshot(opened.page, f"{screenshots_prefix}-{opened.name}")
                except Exception as e:  # a dead page must not hide the test's own failure
                    self.log.append(f"[{opened.name}] no screenshot: {e}")
            try:
                await opened.browser.close()
            except Exception as e:  # one that was crashed on purpose
                self.log.append(f"[{opened.name}] close: {e}")


async def screenshot(page: Page, name: str) -> Path:
    """Saves the page as test-artifacts/e2e/NAME.png (overwriting the last run's) and returns the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    await page.screenshot(path=path)
    return path


@pytest.fixture
async def browsers(request: pytest.FixtureRequest) -> AsyncIterator[Browsers]:
    log: list[str] = []
    request.node.stash[BROWSER_LOG] = log
    async with async_playwright() as playwright:
        opened = Browsers(playwright, log)
        try:
            yield opened
        finally:
            call = request.node.stash.get(PHASE_REPORTS, {}).get("call")
            await opened.close(request.node.name if call is not None and call.failed else None)
