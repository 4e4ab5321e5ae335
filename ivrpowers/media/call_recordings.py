"""Video recordings of calls, kept by the controller in `<state>/recordings/` (Asterisk keeps the
audio ones): a browser agent's page sends a WebM of both pictures and their sound, stored and made
into an MP4 (H.264 + AAC) that any player opens. Named after the call: `<call id>-video.mp4`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ivrpowers.config import Settings
from ivrpowers.media.convert import ffmpeg, probe

VIDEO_NAME = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-video\.mp4$")


def recordings_root(settings: Settings) -> Path:
    root = settings.state_dir.resolve() / "recordings"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def video_name(call_id: str) -> str:
    name = f"{call_id}-video.mp4"
    if not VIDEO_NAME.match(name):
        raise ValueError(f"{call_id!r} is not a call id")
    return name


@dataclass(frozen=True)
class Saved:
    name: str
    path: Path
    duration: float | None
    size: int


class CallRecordings:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path | None:
        """The file of a video recording `name`, if this controller has it (None: not one of ours)."""
        if not VIDEO_NAME.match(name):
            return None
        found = self.root / name
        return found if found.is_file() else None

    def save_webm(self, call_id: str, webm: Path) -> Saved:
        """Make `webm` (the page's upload) the call's MP4, written atomically; the WebM is removed.
        Blocking (ffmpeg): run it in a thread."""
        name = video_name(call_id)
        out = self.root / name
        partial = self.root / f".{name}.part.mp4"
        try:
            # A browser's MediaRecorder writes frames as they come (variable rate) and no duration: ffmpeg
            # keeps each frame's time and writes both.
            ffmpeg("-i", str(webm), "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "veryfast",
                   "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", str(partial),
                   what=f"cannot convert the recording of call {call_id}")
            os.chmod(partial, 0o600)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
            webm.unlink(missing_ok=True)
        return Saved(name, out, probe(out).duration, out.stat().st_size)
