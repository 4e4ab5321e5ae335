"""Chat between the /call page and the /agent page through the ACD's router.

A customer on /call opens a chat in the queue its fragment names (with the page's own browser
account); the agent signed in on /agent is offered it (the card says chat, the queue, who), accepts,
and each side reads the other's lines in its own page. A second customer's chat is offered to and
taken by the same agent while the first goes on (chat capacity 2), each in a panel of its own. The
customer leaving ends the first on the agent's side; the agent closing ends the second on its
customer's. Before any agent is ready, the page says so in one line.

A small stack: Asterisk (the agent's browser registers) and a controller, no flows, no prompts.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.async_api import Page

from ivrpowers.web.call_chat_api import FIRST_LINE
from tests.integration.conftest import running_asterisk, start_controller, stop_controller

from .browser import Browsers, screenshot
from .camera import GREEN, MAGENTA, Cameras
from .netns import MEDIA_ADDRESS
from .stack import Stack

QUEUE = "support"
AGENT = "chatter"
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("chat")
    with running_asterisk(workdir / "state", 36000, media_address=MEDIA_ADDRESS) as asterisk:
        ctl = start_controller("sqlite", f"sqlite+aiosqlite:///{workdir / 'ivrpowers.db'}", asterisk,
                               workdir / "controller.log", flows=[], routes={})
        try:
            # As an operator makes them: a chat queue, and an agent taking two chats at once (no calls),
            # signing in with its browser account.
            ctl.ivrpowers("queue", "create", QUEUE, "--channel", "chat", "--wrapup", "0", "--ring-timeout", "60")
            yield Stack(asterisk, ctl)
        finally:
            stop_controller(ctl)
            ctl.proxy.stop()


def call_page(stack: Stack, user: str, password: str, **extra: str) -> str:
    fragment = "&".join(f"{key}={quote(value)}" for key, value in {"user": user, "password": password,
                                                                   **extra}.items())
    return f"{stack.web}/call#{fragment}"


async def wait_for(page: Page, script: str, arg: object = None) -> None:
    await page.wait_for_function(script, arg=arg, timeout=WAIT_MS)


async def lines(page: Page, selector: str) -> list[tuple[str, str]]:
    """(sender, text) of each line of the transcript at `selector`."""
    found: list[list[str]] = await page.eval_on_selector_all(
        f"{selector} li", "items => items.map(li => [li.dataset.sender, li.textContent])")
    return [(sender, text) for sender, text in found]


async def has_line(page: Page, selector: str, sender: str, text: str) -> None:
    """Wait until the transcript at `selector` has a line from `sender` ending with `text`."""
    await wait_for(page, """([selector, sender, text]) => [...document.querySelectorAll(`${selector} li`)]
        .some(li => li.dataset.sender === sender && li.textContent.endsWith(text))""", [selector, sender, text])


async def sign_in(page: Page, stack: Stack, agent_id: str, password: str) -> None:
    await page.goto(f"{stack.web}/agent")
    await page.fill("#agent", agent_id)
    await page.fill("#password", password)
    await page.click("#signin-button")
    await wait_for(page, "document.body.dataset.agentState === 'logged_out'")


async def accept_offer(agent: Page, customer_name: str) -> str:
    """Wait for the offer card to show a chat from `customer_name` in QUEUE; accept it; its chat id."""
    await wait_for(agent, """name => !document.getElementById('offer').hidden
        && document.getElementById('offer-channel').textContent === 'chat'
        && document.getElementById('offer-caller').textContent === name""", customer_name)
    assert await agent.text_content("#offer-queue") == QUEUE
    assert await agent.text_content("#answer") == "Accept"
    chat_id: str = await agent.evaluate("window.ivrpowers.shown")
    await agent.click("#answer")
    await agent.wait_for_selector(f'.chat-panel[data-chat="{chat_id}"][data-status="active"]', timeout=WAIT_MS)
    return chat_id


async def test_customers_chat_with_an_agent_from_the_call_page_through_the_router(
        stack: Stack, browsers: Browsers, cameras: Cameras) -> None:
    _, agent_password = stack.browser_account(f"{AGENT}-browser")
    stack.controller.ivrpowers("agent", "create", AGENT, "--name", "Chat Agent", "--endpoint", f"{AGENT}-browser",
                               "--queue", QUEUE, "--voice", "0", "--video", "0", "--chat", "2")
    first_user, first_password = stack.browser_account("chat-lucia")
    second_user, second_password = stack.browser_account("chat-bob")
    agent_b, first_b, second_b = await browsers.open_many({
        "agent": cameras.get("agent", MAGENTA), "first": cameras.get("caller", GREEN),
        "second": cameras.get("caller", GREEN)})  # no camera is used: no calls here
    agent, first, second = agent_b.page, first_b.page, second_b.page
    await sign_in(agent, stack, AGENT, agent_password)

    # No queue in the fragment: no Chat button.
    await second.goto(call_page(stack, second_user, second_password))
    assert await second.is_hidden("#chat-open")
    # The agent is not ready yet: the queue refuses the chat, and the page says why in one line.
    await first.goto(call_page(stack, first_user, first_password, queue=QUEUE, name="Lucía Pérez"))
    assert await first.is_visible("#chat-open")  # the page's script read the fragment's queue
    await first.click("#chat-open")
    await wait_for(first, "document.getElementById('chat-error').textContent.includes('No agent')")
    assert await first.is_hidden("#chat")

    await agent.click("#ready")
    await wait_for(agent, "document.body.dataset.agentState === 'available'")
    await first.click("#chat-open")
    await first.wait_for_selector('#chat[data-status="waiting"]', timeout=WAIT_MS)
    assert await first.text_content("#chat-error") == ""
    first_chat = await accept_offer(agent, "Lucía Pérez")
    first_panel = f'.chat-panel[data-chat="{first_chat}"] .transcript'
    assert await first.evaluate("window.ivrpowers.chat.id") == first_chat

    # Both sides see it answered; the customer writes, the agent reads it in the chat's panel.
    await first.wait_for_selector('#chat[data-status="active"]', timeout=WAIT_MS)
    await has_line(first, "#chat-log", "system", "An agent joined the chat.")
    await has_line(agent, first_panel, "customer", FIRST_LINE)
    await first.fill("#chat-text", "My parcel is late")
    await first.click("#chat-send")
    await has_line(agent, first_panel, "customer", "My parcel is late")
    await agent.fill(f'.chat-panel[data-chat="{first_chat}"] .chat-text', "Hello Lucía, let me check")
    await agent.click(f'.chat-panel[data-chat="{first_chat}"] .chat-send')
    await has_line(first, "#chat-log", "agent", "Hello Lucía, let me check")
    await first.fill("#chat-text", "Thanks!")
    await first.press("#chat-text", "Enter")
    await has_line(agent, first_panel, "customer", "Thanks!")

    # A second customer while the first chat goes on: the same agent takes it too (capacity 2).
    await second.goto("about:blank")
    await second.goto(call_page(stack, second_user, second_password, queue=QUEUE, name="Bob Martin"))
    await second.click("#chat-open")
    second_chat = await accept_offer(agent, "Bob Martin")
    second_panel = f'.chat-panel[data-chat="{second_chat}"] .transcript'
    await second.wait_for_selector('#chat[data-status="active"]', timeout=WAIT_MS)
    await second.fill("#chat-text", "A second question")
    await second.press("#chat-text", "Enter")
    await has_line(agent, second_panel, "customer", "A second question")
    await agent.fill(f'.chat-panel[data-chat="{second_chat}"] .chat-text', "Hi Bob")
    await agent.click(f'.chat-panel[data-chat="{second_chat}"] .chat-send')
    await has_line(second, "#chat-log", "agent", "Hi Bob")
    assert await agent.locator('.chat-panel[data-status="active"]').count() == 2
    # Each panel holds its own chat's lines only, and each customer sees only their own.
    assert all("second question" not in text and "Hi Bob" not in text for _, text in await lines(agent, first_panel))
    assert all("Lucía" not in text and "parcel" not in text for _, text in await lines(second, "#chat-log"))
    await screenshot(first, "call-chat")
    await screenshot(agent, "agent-chat")

    # The first customer leaves: the agent's panel says so and takes no more lines.
    await first.click("#chat-leave")
    await agent.wait_for_selector(f'.chat-panel[data-chat="{first_chat}"][data-status="closed"]', timeout=WAIT_MS)
    await has_line(agent, first_panel, "system", "The customer left the chat.")
    assert await agent.is_disabled(f'.chat-panel[data-chat="{first_chat}"] .chat-text')
    await first.wait_for_selector('#chat[data-status="closed"]', timeout=WAIT_MS)
    # The agent closes the second: its customer sees the chat end.
    await agent.click(f'.chat-panel[data-chat="{second_chat}"] .chat-close')
    await second.wait_for_selector('#chat[data-status="closed"]', timeout=WAIT_MS)
    await has_line(second, "#chat-log", "system", "The agent closed the chat.")
    assert await second.is_disabled("#chat-text") and await second.is_hidden("#chat-leave")
    await screenshot(second, "call-chat-closed")
    # Ended chats are dismissed from the desk.
    for chat_id in (first_chat, second_chat):
        await agent.click(f'.chat-panel[data-chat="{chat_id}"] .chat-close')
    assert await agent.locator(".chat-panel").count() == 0
