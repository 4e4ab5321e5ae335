"""A queue that records its calls: a video call between a caller on /call and an agent on /agent is
kept as an MP4 with both pictures (the caller's left, the agent's right) and the conversation's
sound, linked to the CDR within 60 s of the hangup and fetched with `recording get`; the bridge's
mixed audio is kept by Asterisk as well."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import ARTIFACTS, Browsers, screenshot
from .camera import GREEN, MAGENTA, Cameras
from .probe import start_freeze_meter, wait_colour, watch_for
from .scenes import answer, press, sign_in, video_call
from .stack import Stack, video_stack

TALK_MS = 3000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with video_stack(tmp_path_factory.mktemp("video-rec"), rtp_base=39000) as running:
        yield running


def frame_colours(mp4: Path, at: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean colour of the left and right halves of the frame at `at` seconds."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", str(at), "-i", str(mp4), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x24", "-"],
                         capture_output=True, check=True).stdout
    assert len(raw) == 64 * 24 * 3, len(raw)

    def mean(x0: int, x1: int) -> tuple[float, ...]:
        # The middle of each half: the cameras' moving square stays out of the average's way.
        pixels = [raw[(y * 64 + x) * 3:(y * 64 + x) * 3 + 3] for y in range(4, 20) for x in range(x0, x1)]
        return tuple(sum(p[c] for p in pixels) / len(pixels) for c in range(3))

    return mean(4, 28), mean(36, 60)


def looks(colour: tuple[float, ...], rgb: tuple[int, int, int]) -> bool:
    """Whether `colour` is `rgb`'s hue: each channel high where rgb's is, low where it is not (the
    recording's conversion stretches video levels to full range: 200 comes back near 250)."""
    return all((value > 150) if wanted > 100 else (value < 60) for value, wanted in zip(colour, rgb, strict=True))


async def test_a_recorded_video_call_gives_an_mp4_with_both_pictures_linked_to_its_cdr(
        stack: Stack, browsers: Browsers, cameras: Cameras, tmp_path: Path) -> None:
    agent_id = "recorder"
    password = stack.video_agent(agent_id, queue="video-rec")
    user, caller_password = stack.browser_account("custrec")
    caller, agent = await browsers.open_many({"caller": cameras.get("caller", GREEN),
                                              "agent": cameras.get("agent", MAGENTA)})
    await sign_in(agent.page, stack, agent_id, password)
    await agent.page.click("#ready")
    await video_call(caller.page, stack, user, caller_password)
    await press(caller.page, "4")
    await answer(agent.page)
    await wait_colour(agent.page, "#remote", GREEN, timeout=10)
    await wait_colour(caller.page, "#remote", MAGENTA, timeout=10)
    assert await agent.page.is_visible("#recording")
    await start_freeze_meter(agent.page, "#remote")
    await watch_for(agent.page, "#remote", TALK_MS)  # they talk a while
    await screenshot(agent.page, "agent-recording")
    await caller.page.click("#hangup")

    # The page sends its recording when the call ends; the MP4 is on the CDR within 60 s.
    record = await stack.controller.wait_record(
        lambda r: r.caller_number == user and any(
            e.type == "recording_saved" and (e.detail or {}).get("kind") == "video" for e in r.events),
        "the call's video recording", timeout=60)
    saved = {e["detail"]["kind"]: e["detail"] for e in record["events"] if e["type"] == "recording_saved"}
    video = saved["video"]
    assert video["name"].endswith("-video.mp4") and video["by"] == agent_id and video["size"] > 0
    mp4 = tmp_path / "call.mp4"
    stack.controller.ivrpowers("recording", "get", video["name"], "-o", str(mp4))
    info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                      str(mp4)], capture_output=True, check=True).stdout)
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac", streams
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 240)
    duration = float(info["format"]["duration"])
    assert duration >= TALK_MS / 1000 - 0.5, duration
    # Both pictures, the caller's left and the agent's right, in a frame from the middle of the call.
    left, right = frame_colours(mp4, duration / 2)
    (ARTIFACTS / "video-recording.json").write_text(json.dumps({
        "name": video["name"], "duration": duration, "bytes": video["size"], "left_rgb": left, "right_rgb": right,
        "cdr_recordings": saved}, indent=2, default=str))
    assert looks(left, GREEN) and looks(right, MAGENTA), (left, right)
    # The server's own recording of the conversation's sound, from Asterisk.
    audio = saved["audio"]
    assert audio["format"] == "wav" and audio["duration"] >= TALK_MS / 1000 - 1, audio
    assert await agent.page.evaluate("window.ivrpowers.recordings[0].status") == 201
