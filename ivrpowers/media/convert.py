"""ffmpeg around the packetizers: running it, and turning Asterisk's video files into something a
player (or a test) reads: prompts back to frames, recordings to mp4."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ivrpowers.media import MediaError, ToolMissing, h264, vp8
from ivrpowers.media.records import PROMPT_CLOCK, RECORDING_CLOCK, Frame, read_records

Kind = Literal["vp8", "h264"]
TIMEOUT = 900.0  # s: a long source on a slow machine; a hung ffmpeg must not hang the CLI for ever
_FOURCC: dict[str, bytes] = {"vp8": b"VP80", "h264": b"H264"}  # ffmpeg's IVF reader takes any fourcc it knows
_CONTEXT = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")  # "[mov,mp4,... @ 0x55...] " before a message
_NOISE = ("Conversion failed!", "To ignore this", "Exiting normally")


def last_line(stderr: str) -> str:
    """The last line of ffmpeg's stderr that says something (its context prefix removed)."""
    lines = [_CONTEXT.sub("", line).strip() for line in stderr.splitlines()]
    useful = [line for line in lines if line and not line.startswith(_NOISE)]
    return useful[-1] if useful else "no message"


def run_tool(argv: list[str], what: str) -> str:
    """Run ffmpeg/ffprobe; its stdout, or MediaError naming `what` failed and ffmpeg's reason."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError as exc:
        raise ToolMissing(f"{argv[0]} is not installed (Debian: apt-get install ffmpeg)") from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{what}: {argv[0]} took more than {TIMEOUT:.0f} s") from exc
    if done.returncode != 0:
        line = last_line(done.stderr)
        for arg in argv[1:]:  # "/long/path/x.mp4: Invalid data...": `what` names the file already
            line = line.removeprefix(f"{arg}: ")
        raise MediaError(f"{what}: {line}")
    return done.stdout


def ffmpeg(*args: str, what: str) -> None:
    run_tool(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], what)


@dataclass(frozen=True)
class Probe:
    has_video: bool
    has_audio: bool
    duration: float | None  # s, when the container says


def probe(source: Path) -> Probe:
    out = run_tool(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(source)],
                   f"cannot read {source.name}")
    info: dict[str, Any] = json.loads(out or "{}")
    streams: list[dict[str, Any]] = info.get("streams", [])
    # A cover picture in an audio file is a "video" stream of one frame: not a video.
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    try:
        duration: float | None = float(info.get("format", {}).get("duration"))
    except (TypeError, ValueError):
        duration = None
    return Probe(bool(video), bool(audio), duration)


# -- reading Asterisk's files back ---------------------------------------------------------------------
def kind_of(path: Path) -> Kind:
    suffix = path.suffix.lstrip(".")
    if suffix == "vp8":
        return "vp8"
    if suffix in ("h264", "264"):
        return "h264"
    raise MediaError(f"{path.name}: not a .vp8 or .h264 file")


def depacketize_file(path: Path, kind: Kind | None = None) -> list[Frame]:
    """The frames of a `.vp8` / `.h264` file (pts: the sum of the records' ts, in the file's clock)."""
    records = read_records(path)
    return (vp8.depacketize if (kind or kind_of(path)) == "vp8" else h264.depacketize)(records)


def frames_to_ivf(frames: list[Frame], out: Path, kind: Kind, clock: int) -> int:
    """Frames in an IVF file ffmpeg reads with their timestamps (H.264 too, under fourcc H264)."""
    if not frames:
        raise MediaError("no complete video frame in the file")
    return vp8.write_ivf(out, frames, clock=clock, fourcc=_FOURCC[kind])


def prompt_to_ivf(variant: Path, out: Path) -> int:
    """A prompt's video file (`NAME_vp8.vp8`, `NAME_h264.h264`) as IVF with its timing; the frame count."""
    kind = kind_of(variant)
    return frames_to_ivf(depacketize_file(variant, kind), out, kind, PROMPT_CLOCK)


def recording_to_mp4(video: Path, audio: Path | None, out: Path, *, kind: Kind) -> Path:
    """An Asterisk recording (`NAME.vp8`/`NAME.h264`, with its `NAME.wav`) as an H.264 + AAC mp4. The
    recording's 90 kHz timestamps are kept as they are; ffmpeg makes the rest."""
    frames = depacketize_file(video, kind)
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix=".rec-", dir=out.parent) as tmp:
        ivf = Path(tmp) / "video.ivf"
        frames_to_ivf(frames, ivf, kind, RECORDING_CLOCK)
        partial = Path(tmp) / "out.mp4"
        inputs = ["-i", str(ivf)] + (["-i", str(audio)] if audio is not None else [])
        maps = ["-map", "0:v:0"] + (["-map", "1:a:0", "-c:a", "aac", "-shortest"] if audio is not None else [])
        # Each frame keeps its recorded time (a browser's frame rate varies): vfr, and the encoder on the
        # input's 90 kHz timebase. Otherwise ffmpeg encodes at a rate it guesses (an H.264 header's
        # rate, say) and drops or repeats frames.
        ffmpeg(*inputs, *maps, "-fps_mode", "vfr", "-enc_time_base:v", "-1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
               "-movflags", "+faststart",
               str(partial), what=f"cannot convert {video.name}")
        partial.replace(out)
    return out
