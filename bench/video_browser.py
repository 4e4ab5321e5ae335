"""The video bench's first part: answer to the first decoded video frame, from a real browser.

The e2e harness, imported as it is (tests/e2e: `video_stack`'s Asterisk, controller and colour
prompts, the e2e-video flow on 300, chromium driven by Playwright, the media probe), in the private
network namespace the bench entered. One chromium calls from the /call page, VP8 and H.264 calls
alternating, each as the e2e test calls: press Video call, the menu's first picture (red) shows, the
keypad's 1 (RFC 4733) plays the branch (yellow), the flow hangs up. The figure is the page's own:
JsSIP's `confirmed` (the 200 OK taken, the ACK sent) to the first frame the <video> presents
(requestVideoFrameCallback, so decoded and shown), both on the page's clock.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

from bench.report import percentile
from tests.e2e.browser import Browsers
from tests.e2e.camera import GREEN, Cameras
from tests.e2e.probe import inbound_video, wait_colour, wait_until
from tests.e2e.stack import RED, YELLOW, Stack, video_stack
from tests.e2e.test_video_ivr import FIRST_FRAME_JS

CODECS = ("vp8", "h264")
NUMBER = "300"  # the e2e-video flow's route in video_stack
RTP_BASE = 36000


async def one_call(page: Page, stack: Stack, codec: str, account: tuple[str, str]) -> dict[str, Any]:
    """One video call from a freshly loaded /call page; what the page measured and decoded."""
    user, password = account
    await page.goto("about:blank")  # a new document each call: a fragment-only change would not load one
    await page.goto(f"{stack.web}/call#user={user}&password={password}&number={NUMBER}&codec={codec}")
    await page.select_option("#dtmf", "RFC2833")
    await page.evaluate(FIRST_FRAME_JS)
    await page.click("#video-call")
    await page.wait_for_function("document.body.dataset.state === 'in-call'", timeout=10_000)
    # The prompt's own first picture, not anything else the <video> might show.
    await wait_colour(page, "#remote", RED, timeout=5)
    first = await wait_until(lambda: page.evaluate("window.firstFrameAt ?? null"), lambda v: v is not None,
                             timeout=5, what="the first presented frame")
    answered = await page.evaluate("window.ivrpowers.answeredAt")
    streams = await inbound_video(page)
    mime = [s["mimeType"].lower() for s in streams if s.get("mimeType")]
    if mime != [f"video/{codec}"]:
        raise AssertionError(f"a {codec} call received {mime}")
    await page.click("#keypad button:text-is('1')")
    await wait_colour(page, "#remote", YELLOW, timeout=10)
    await page.wait_for_function("document.body.dataset.state === 'ended'", timeout=20_000)
    return {"codec": codec, "answer_to_first_frame_ms": round(float(first) - float(answered), 1),
            "decoder": streams[0].get("decoderImplementation")}


def summarize(calls: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for codec in CODECS:
        values = [c["answer_to_first_frame_ms"] for c in calls if c["codec"] == codec]
        out[codec] = {
            "calls": len(values),
            "answer_to_first_frame_ms": {
                q: None if (v := percentile(values, p)) is None else round(v, 1)
                for q, p in (("p50", 0.5), ("p95", 0.95), ("min", 0.0), ("max", 1.0))
            },
            "values_ms": values,
            "decoders": sorted({str(c["decoder"]) for c in calls if c["codec"] == codec}),
        }
    return out


async def first_frames(work: Path, calls_per_codec: int) -> dict[str, Any]:
    """`calls_per_codec` calls of each codec, alternating; their figures and the failures."""
    calls: list[dict[str, Any]] = []
    failures: list[str] = []
    log: list[str] = []
    with video_stack(work, RTP_BASE) as stack:
        accounts = {codec: stack.browser_account(f"bench-{codec}") for codec in CODECS}
        cameras = Cameras(work / "cameras")
        (work / "cameras").mkdir(exist_ok=True)
        async with async_playwright() as playwright:
            browsers = Browsers(playwright, log)
            try:
                caller = await browsers.open("caller", cameras.get("caller", GREEN))
                for n in range(calls_per_codec):
                    for codec in CODECS:
                        try:
                            calls.append(await one_call(caller.page, stack, codec, accounts[codec]))
                        except Exception as exc:  # counted and told; the next call starts afresh
                            failures.append(f"{codec} call {n + 1}: {type(exc).__name__}: {exc}"[:500])
                            print(f"  {failures[-1]}", file=sys.stderr, flush=True)
                            continue
                        print(f"  {codec} call {n + 1}: answer to first frame "
                              f"{calls[-1]['answer_to_first_frame_ms']} ms", file=sys.stderr, flush=True)
            finally:
                await browsers.close(None)
    # The page's own errors and warnings; chromium's verbose advice is noise here.
    told = [line for line in log if "console.verbose" not in line and "console.debug" not in line]
    return {"by_codec": summarize(calls), "calls": calls, "failures": failures, "browser_log": told[-40:]}
