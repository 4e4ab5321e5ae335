"""Asterisk and a controller inside the test's network namespace, with browsers' media on
MEDIA_ADDRESS (Asterisk never offers a loopback ICE candidate), and video prompts of known colours."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import (
    AsteriskUnderTest,
    ControllerUnderTest,
    running_asterisk,
    start_controller,
    stop_controller,
)

from .camera import RGB
from .netns import MEDIA_ADDRESS

FLOWS = Path(__file__).parent / "flows"

# Prompts: solid colours, far apart (the prompts' pictures are what the browser's pixels are checked for).
RED: RGB = (220, 0, 0)
BLUE: RGB = (0, 0, 220)
YELLOW: RGB = (230, 220, 0)
CYAN: RGB = (0, 210, 210)
ORANGE: RGB = (240, 120, 0)  # the video-desk queue's hold video
VIOLET: RGB = (120, 0, 200)  # the video-desk queue's welcome, before the hold
PROMPT_FPS = 10


@dataclass
class Stack:
    asterisk: AsteriskUnderTest
    controller: ControllerUnderTest

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.controller.web_port}"

    def video_agent(self, agent_id: str, queue: str = "video-desk") -> str:
        """An agent of `queue` on a browser account of its own, as an operator makes one; its password."""
        _, password = self.browser_account(f"{agent_id}-browser")
        self.controller.ivrpowers("agent", "create", agent_id, "--name", f"Agent {agent_id}",
                                  "--endpoint", f"{agent_id}-browser", "--queue", queue)
        return password

    def browser_account(self, name: str) -> tuple[str, str]:
        """A browser user made as an operator would (`endpoint create --webrtc`): (user, password)."""
        made = json.loads(self.controller.ivrpowers("endpoint", "create", name, "--webrtc", "--json").stdout)
        return made["username"], made["password"]


def colour_clip(path: Path, segments: list[tuple[RGB, float]], tone: int = 440) -> Path:
    """An mp4 of solid colours one after the other (`segments`: colour, seconds), with a tone."""
    inputs, labels = [], []
    for index, (rgb, seconds) in enumerate(segments):
        inputs += ["-f", "lavfi", "-i", f"color=c=0x{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}:s=320x240:r=25:d={seconds}"]
        labels.append(f"[{index}]")
    total = sum(seconds for _, seconds in segments)
    inputs += ["-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=8000:duration={total}"]
    graph = f"{''.join(labels)}concat=n={len(segments)}:v=1:a=0[v]"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs, "-filter_complex", graph,
                    "-map", "[v]", "-map", f"{len(segments)}:a", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(path)], check=True)
    return path


@contextmanager
def video_stack(workdir: Path, rtp_base: int) -> Iterator[Stack]:
    """Asterisk, a SQLite controller with the e2e flows routed (300: e2e-video) and the colour prompts."""
    with running_asterisk(workdir / "state", rtp_base, media_address=MEDIA_ADDRESS) as asterisk:
        ctl = start_controller("sqlite", f"sqlite+aiosqlite:///{workdir / 'ivrpowers.db'}", asterisk,
                               workdir / "controller.log", flows=sorted(FLOWS.glob("*.yaml")),
                               routes={"300": "e2e-video"})
        try:
            clips = {"e2e-menu": [(RED, 2.0), (BLUE, 2.0)], "e2e-one": [(YELLOW, 3.0)], "e2e-two": [(CYAN, 3.0)],
                     "e2e-hold": [(ORANGE, 3.0)], "e2e-welcome": [(VIOLET, 4.0)]}
            for name, segments in clips.items():
                source = colour_clip(workdir / f"{name}.mp4", segments)
                ctl.ivrpowers("media", "import", str(source), "--name", name)
            # Option 3's queue: video agents in browsers; video callers wait watching e2e-hold.
            ctl.ivrpowers("queue", "create", "video-desk", "--channel", "voice", "--channel", "video",
                          "--video-hold", "video:e2e-hold", "--wrapup", "0", "--ring-timeout", "30",
                          "--no-agents", "wait")
            # Where an agent of video-desk may transfer a caller (no route leads there otherwise).
            ctl.ivrpowers("queue", "create", "video-two", "--channel", "voice", "--channel", "video",
                          "--video-hold", "video:e2e-hold", "--wrapup", "0", "--ring-timeout", "30",
                          "--no-agents", "wait")
            # Option 4's: the same, recording its calls.
            ctl.ivrpowers("queue", "create", "video-rec", "--channel", "voice", "--channel", "video",
                          "--video-hold", "video:e2e-hold", "--wrapup", "0", "--ring-timeout", "30",
                          "--no-agents", "wait", "--record")
            yield Stack(asterisk, ctl)
        finally:
            stop_controller(ctl)
            ctl.proxy.stop()
