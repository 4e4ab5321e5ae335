"""The video IVR from a browser: the /call page calls a flow whose prompts are video, over the real
Asterisk. Proof by what the browser decodes and shows: the prompt's codec, its frames counted, its
colours in order, and the branch a digit from the page's keypad chose (RFC 4733 or SIP INFO)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

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
