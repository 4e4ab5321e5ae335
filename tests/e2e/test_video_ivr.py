"""The video IVR from a browser: the /call page calls a flow whose prompts are video, over the real
Asterisk. Proof by what the browser decodes and shows: the prompt's codec, its frames counted, its
colours in order, and the branch a digit from the page's keypad chose (RFC 4733 or SIP INFO). The
same from the page embedded in another site's frame, which hears the call's states."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from .browser import ARTIFACTS, Browsers, screenshot
from .camera import GREEN, Cameras
from .probe import inbound_video, wait_colour, wait_frames_decoded
from .stack import BLUE, CYAN, PROMPT_FPS, RED, YELLOW, Stack, video_stack

MENU_SECONDS = 4.0  # e2e-menu: 2 s red, 2 s blue


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with video_stack(tmp_path_factory.mktemp("video-ivr"), rtp_base=34000) as running:
        yield running


FIRST_FRAME_JS = """() => {
  const video = document.getElementById('remote');
  video.requestVideoFrameCallback(() => { window.firstFrameAt = performance.now(); });
}"""


@pytest.mark.parametrize(("codec", "dtmf", "digit", "branch"),
                         [("vp8", "RFC2833", "1", YELLOW), ("h264", "INFO", "2", CYAN)])
async def test_video_menu_in_the_browser(stack: Stack, browsers: Browsers, cameras: Cameras,
                                         codec: str, dtmf: str, digit: str, branch: tuple[int, int, int]) -> None:
    user, password = stack.browser_account(f"visitor{codec}")
    caller = await browsers.open("caller", cameras.get("caller", GREEN))
    page = caller.page
    await page.goto(f"{stack.web}/call#user={user}&password={password}&number=300&codec={codec}")
    await page.select_option("#dtmf", dtmf)
    await page.evaluate(FIRST_FRAME_JS)
    await page.click("#video-call")
    await page.wait_for_function("document.body.dataset.state === 'in-call'", timeout=10_000)

    # The menu's first half, then its second: the prompt's own pictures, in order.
    await wait_colour(page, "#remote", RED, timeout=5)
    streams = await inbound_video(page)
    assert [s["mimeType"].lower() for s in streams] == [f"video/{codec}"], streams
    await screenshot(page, f"call-video-ivr-{codec}")
    await wait_colour(page, "#remote", BLUE, timeout=5)

    # Every frame of the prompt decoded once it has played (the flow then waits for a digit).
    await stack.controller.wait_event(user, "prompt_played", node="menu", timeout=15)
    frames = int(MENU_SECONDS * PROMPT_FPS)
    menu = await wait_frames_decoded(page, frames, timeout=5)
    assert menu["framesDecoded"] == frames, menu
    assert menu["keyFramesDecoded"] >= 1, menu

    await page.click(f"#keypad button:text-is('{digit}')")
    await wait_colour(page, "#remote", branch, timeout=5)
    record = await stack.controller.wait_event(user, "dtmf_received", node="menu", timeout=5)
    assert [e["detail"]["digit"] for e in record["events"] if e["type"] == "dtmf_received"] == [digit]

    timing = await page.evaluate("window.firstFrameAt - window.ivrpowers.answeredAt")
    finished = await stack.controller.wait_cdr(user, timeout=20)
    assert finished["disposition"] == "completed", finished
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    Path(ARTIFACTS / f"video-ivr-{codec}.json").write_text(json.dumps({
        "codec": codec, "dtmf": dtmf, "answer_to_first_frame_ms": round(timing, 1),
        "menu_frames_decoded": menu["framesDecoded"], "decoder": menu.get("decoderImplementation"),
    }, indent=2))


# A shop's page on another origin than the controller's (http://127.0.0.1:PORT): http://localhost on a
# port of its own, a secure context as a camera needs.
STATES_JS = """window.states = [];
addEventListener('message', (e) => {
  if (e.data && e.data.source === 'ivrpowers') window.states.push([e.origin, e.data.type, e.data.state]);
});"""


@contextlib.asynccontextmanager
async def website(body: str) -> AsyncIterator[str]:
    """Serves `body` at /shop on localhost; yields the page's URL."""
    app = web.Application()

    async def shop(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    app.router.add_get("/shop", shop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://localhost:{port}/shop"
    finally:
        await runner.cleanup()


async def test_a_website_embeds_the_call_page_whose_visitor_calls_the_video_ivr(
        stack: Stack, browsers: Browsers, cameras: Cameras) -> None:
    user, password = stack.browser_account("embedded")
    caller = await browsers.open("caller", cameras.get("caller", GREEN))
    page = caller.page
    shop = (f"<!doctype html><title>Shop</title><h1>Talk to us</h1><script>{STATES_JS}</script>"
            f'<iframe id="call" src="{stack.web}/call#user={user}&password={password}&number=300&codec=vp8" '
            'allow="camera; microphone; autoplay" width="640" height="420"></iframe>'
            f'<iframe id="desk" src="{stack.web}/agent" width="320" height="200"></iframe>')
    async with website(shop) as url:
        await page.goto(url)
    frame = await (await page.wait_for_selector("#call")).content_frame()
    assert frame is not None
    await frame.wait_for_selector("#video-call")
    assert await frame.is_hidden("#account")  # the shop gave the account: its visitor sees the call only

    await frame.click("#video-call")
    await frame.wait_for_function("document.body.dataset.state === 'in-call'", timeout=10_000)
    await wait_colour(frame, "#remote", RED, timeout=5)
    await wait_colour(frame, "#remote", BLUE, timeout=5)
    await frame.click("#keypad button:text-is('1')")
    await wait_colour(frame, "#remote", YELLOW, timeout=5)
    await screenshot(page, "call-embedded")
    finished = await stack.controller.wait_cdr(user, timeout=20)
    assert finished["disposition"] == "completed", finished
    assert [e["detail"]["digit"] for e in finished["events"] if e["type"] == "dtmf_received"] == ["1"]
    await frame.wait_for_function("document.body.dataset.state === 'ended'", timeout=10_000)
    # The shop's page heard how the call went, from the controller's origin.
    states = await page.evaluate("window.states")
    assert [s for _, _, s in states] == ["calling", "in-call", "ended"], states
    assert {(origin, kind) for origin, kind, _ in states} == {(stack.web, "call-state")}, states

    # The agent desktop refuses to be framed (frame-ancestors 'none'): nothing of it renders there.
    desk = await (await page.wait_for_selector("#desk")).content_frame()
    assert desk is not None
    await desk.wait_for_load_state()
    assert await desk.query_selector("#signin-button") is None
    assert await frame.query_selector("#video-call") is not None  # while the call page did
