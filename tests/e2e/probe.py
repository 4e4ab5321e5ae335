"""Python side of media_probe.js: what a page receives (getStats), shows (pixels) and how smoothly.

Every wait polls the page until a condition holds and fails after a timeout with the last value seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from playwright.async_api import Frame, Page

from tests.integration.conftest import poll

from .camera import COLOUR_REGION, RGB

T = TypeVar("T")

Region = tuple[float, float, float, float]


@dataclass(frozen=True)
class Colour:
    r: float
    g: float
    b: float
    width: int
    height: int

    def distance(self, rgb: RGB) -> float:
        """The largest difference over the three channels."""
        return max(abs(self.r - rgb[0]), abs(self.g - rgb[1]), abs(self.b - rgb[2]))

    def __str__(self) -> str:
        return f"rgb({self.r:.0f}, {self.g:.0f}, {self.b:.0f}) in {self.width}x{self.height}"


@dataclass(frozen=True)
class FreezeReport:
    elapsed_ms: float  # since the meter started
    first_change_ms: float | None  # first new picture after the start
    changes: int  # pictures that differed from the one before
    frames: int  # frames presented (changed or not)
    current_gap_ms: float | None  # since the last new picture
    longest_gap_ms: float  # the longest time without a new picture, the current one included


async def wait_until(fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], *, timeout: float,
                     what: str, interval: float = 0.05) -> T:
    """Poll `fetch()` until `ok(value)` (the integration tests' `poll`); returns that value,
    AssertionError naming `what` and the last value."""
    last: list[T] = []

    async def probe() -> tuple[T] | None:
        value = await fetch()
        last[:] = [value]
        return (value,) if ok(value) else None

    if (found := await poll(probe, timeout, interval)) is not None:
        return found[0]
    raise AssertionError(f"{what}: not seen within {timeout} s; last value: {last[0] if last else None!r}")


async def connections(page: Page | Frame) -> list[dict[str, Any]]:
    """State of every RTCPeerConnection the page created, in order."""
    result: list[dict[str, Any]] = await page.evaluate("window.__probe.connections()")
    return result


async def inbound_video(page: Page | Frame) -> list[dict[str, Any]]:
    """getStats() of every received video stream: framesDecoded, keyFramesDecoded, decoderImplementation,
    mimeType (codec), frameWidth/Height, packetsLost, freezeCount...; `pc` is the connection's index."""
    result: list[dict[str, Any]] = await page.evaluate("window.__probe.inboundVideo()")
    return result


async def sample_colour(page: Page | Frame, selector: str, region: Region = COLOUR_REGION) -> Colour | None:
    """The average colour of `region` of the picture the <video> shows now (None before its first one)."""
    found = await page.evaluate("([s, r]) => window.__probe.sample(s, r)", [selector, list(region)])
    return None if found is None else Colour(**found)


async def start_freeze_meter(page: Page | Frame, selector: str) -> None:
    await page.evaluate("s => window.__probe.startMeter(s)", selector)


async def freeze_report(page: Page | Frame, selector: str) -> FreezeReport:
    found = await page.evaluate("s => window.__probe.meterReport(s)", selector)
    return FreezeReport(found["elapsedMs"], found["firstChangeMs"], found["changes"], found["frames"],
                        found["currentGapMs"], found["longestGapMs"])


async def wait_colour(page: Page | Frame, selector: str, rgb: RGB, *, tolerance: float = 40, timeout: float = 10,
                      region: Region = COLOUR_REGION) -> Colour:
    """Wait until the <video> shows `rgb` (each channel within `tolerance`) in `region`."""
    found = await wait_until(lambda: sample_colour(page, selector, region),
                             lambda c: c is not None and c.distance(rgb) <= tolerance,
                             timeout=timeout, what=f"{selector} showing rgb{rgb}")
    assert found is not None
    return found


async def wait_frames_decoded(page: Page | Frame, at_least: int, *, timeout: float = 10,
                              select: Callable[[dict[str, Any]], bool] = lambda s: True) -> dict[str, Any]:
    """Wait until one received video stream (among those `select` accepts) has decoded `at_least` frames;
    returns its stats."""
    def enough(streams: list[dict[str, Any]]) -> bool:
        return any(select(s) and s["framesDecoded"] >= at_least for s in streams)

    streams = await wait_until(lambda: inbound_video(page), enough, timeout=timeout,
                               what=f"a video stream with {at_least} frames decoded")
    return next(s for s in streams if select(s) and s["framesDecoded"] >= at_least)


async def watch_for(page: Page | Frame, selector: str, ms: float, *, timeout: float | None = None) -> FreezeReport:
    """Let the freeze meter on `selector` watch for `ms` (page time) and return its report."""
    return await wait_until(lambda: freeze_report(page, selector), lambda r: r.elapsed_ms >= ms,
                            timeout=timeout if timeout is not None else ms / 1000 + 5,
                            what=f"freeze meter on {selector} running {ms} ms")
