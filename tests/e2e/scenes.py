"""What the browser tests do over and over on the pages: an agent signs in, a caller calls the e2e
flow (number 300) with video and presses a digit, an agent answers the offer."""

from __future__ import annotations

from playwright.async_api import Page

from .probe import wait_colour
from .stack import RED, Stack


async def sign_in(page: Page, stack: Stack, agent_id: str, password: str) -> None:
    await page.goto(f"{stack.web}/agent")
    await page.fill("#agent", agent_id)
    await page.fill("#password", password)
    await page.click("#signin-button")
    await page.wait_for_function("document.body.dataset.agentState === 'logged_out'", timeout=10_000)


async def video_call(page: Page, stack: Stack, user: str, password: str, codec: str = "vp8") -> None:
    """Call the e2e flow with video, and wait for its menu (red)."""
    await page.goto(f"{stack.web}/call#user={user}&password={password}&number=300&codec={codec}")
    await page.click("#video-call")
    await wait_colour(page, "#remote", RED, timeout=10)


async def wait_in_queue(page: Page, stack: Stack, user: str, password: str) -> None:
    """Call the e2e flow with video and choose its queue (3): back once the caller waits in it."""
    await video_call(page, stack, user, password)
    await press(page, "3")
    await stack.controller.wait_event(user, "queue_joined", timeout=15)


async def press(page: Page, digit: str) -> None:
    await page.click(f"#keypad button:text-is('{digit}')")


async def answer(page: Page) -> None:
    """The agent's page rings; the agent answers."""
    await page.wait_for_function("document.body.dataset.state === 'ringing'", timeout=15_000)
    await page.click("#answer")
