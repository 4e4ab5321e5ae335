"""Fake cameras for chromium (`--use-file-for-fake-video-capture`): y4m files made with ffmpeg.

Each picture is one solid colour (what a pixel check in the other browser looks for) with a white square
moving along the bottom band, one step per frame, so every frame differs from the one before, including
where chromium loops the file: a frozen picture is then measurable.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

WIDTH, HEIGHT, FPS = 320, 240, 15
SQUARE = 32  # the moving square; it stays in the band y >= BAND_TOP
BAND_TOP = HEIGHT - 40
STEP = 8
FRAMES = (WIDTH - SQUARE) // STEP  # one sweep, then the file loops: 36 frames, 2.4 s

# Region of the picture (fractions of width and height: x, y, w, h) that only ever shows the colour.
COLOUR_REGION = (0.1, 0.1, 0.8, 0.6)

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Camera:
    name: str
    rgb: RGB
    path: Path


# Far apart in RGB and in YUV, so neither coding loss nor chroma subsampling confuses them.
GREEN: RGB = (0, 200, 0)  # the caller's camera
MAGENTA: RGB = (200, 0, 200)  # the agent's camera
BLUE: RGB = (0, 0, 220)
YELLOW: RGB = (230, 220, 0)


class Cameras:
    """Makes camera files on demand under `directory`, once per colour."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._made: dict[RGB, Camera] = {}

    def get(self, name: str, rgb: RGB) -> Camera:
        if rgb not in self._made:
            path = self.directory / f"camera-{hex_colour(rgb)}.y4m"
            make_camera_file(path, rgb)
            self._made[rgb] = Camera(name, rgb, path)
        cam = self._made[rgb]
        return cam if cam.name == name else Camera(name, rgb, cam.path)


def make_camera_file(path: Path, rgb: RGB) -> None:
    colour = "0x" + hex_colour(rgb)
    moving = f"overlay=x='mod(n*{STEP},{WIDTH - SQUARE})':y={BAND_TOP + 4}:format=yuv420"
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
               "-f", "lavfi", "-i", f"color=c={colour}:s={WIDTH}x{HEIGHT}:r={FPS}",
               "-f", "lavfi", "-i", f"color=c=white:s={SQUARE}x{SQUARE}:r={FPS}",
               "-filter_complex", f"[0][1]{moving}", "-frames:v", str(FRAMES),
               "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(path)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"ffmpeg could not make {path.name}: {out.stderr.strip()}")


def hex_colour(rgb: RGB) -> str:
    return "".join(f"{c:02x}" for c in rgb)
