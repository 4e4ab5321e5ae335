"""The video prompt library: `video:NAME` in a flow is a prompt imported here from any video file.

Each prompt is a set of files in one directory (the state directory's `media/`):

    NAME_vp8.vp8   + NAME_vp8.wav      what Asterisk plays to a caller whose video is VP8
    NAME_h264.h264 + NAME_h264.wav     ... H.264 (the same 8 kHz sound, hard-linked)
    NAME.json                          what was imported, when, how long, how big

Asterisk streams a prompt's video file as is (it never transcodes video) and finds it by name alone,
whatever codec the call negotiated: so each codec's file has a name of its own, and the call picks
the one for its codec (`variant`). The audio file is what Asterisk opens first: it must be there,
and as long as the video, for the playback to end when both have.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivrpowers.flows.lint_media import VIDEO_CODECS
from ivrpowers.media import MediaError, h264, vp8
from ivrpowers.media.convert import ffmpeg, probe
from ivrpowers.media.records import frame_records, prompt_steps, write_records

if TYPE_CHECKING:
    from ivrpowers.config import Settings

log = logging.getLogger("ivrpowers.media")

CODECS = VIDEO_CODECS  # the codecs flows check `video:` prompts for: one list
EXTENSIONS = {"vp8": ".vp8", "h264": ".h264"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Above 10 fps Asterisk still paces the frames right, but the RTP timestamp it sends advances by less
# than the frame interval (750 instead of 6000 per frame at 15 fps: its file reader adds the record's
# ts, at a quarter of 45 ticks per ms, and resyncs to the wall clock only past 7200): browsers then
# get wrong frame times. At 10 fps and below both are right (measured: 8910-9000 per frame at 10 fps).
MAX_FPS = 10
MAX_SIDE = 1920
MAX_SECONDS = 600.0  # a prompt, not a film: longer sources are refused, not cut
SAMPLE_RATE = 8000  # the .wav Asterisk plays with the video: 8 kHz mono 16-bit


@dataclass(frozen=True)
class MediaInfo:
    name: str
    duration: float  # s, of the video (the audio is made as long)
    width: int
    height: int
    fps: int
    frames: int
    codecs: tuple[str, ...]  # those whose video and audio files are present
    source: str  # the imported file's name
    created: str  # UTC, ISO 8601
    bytes: int  # on disk, all the prompt's files

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["codecs"] = list(self.codecs)
        return data


def media_root(settings: Settings) -> Path:
    """The library's directory, made if missing (private, like the rest of the state directory)."""
    root = settings.state_dir.resolve() / "media"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise MediaError(f"media name {name!r} is not allowed (letters, digits, - and _, up to 64)")
    return name


def check_shape(fps: int, width: int, height: int) -> None:
    if not 1 <= fps <= MAX_FPS:
        raise MediaError(f"{fps} fps is not possible: from 1 to {MAX_FPS} (Asterisk's timing is wrong above)")
    for side in (width, height):
        if not 16 <= side <= MAX_SIDE or side % 2:
            raise MediaError(f"size {width}x{height} is not possible: even sides from 16 to {MAX_SIDE}")


def _video_args(fps: int, width: int, height: int, vp8_out: Path, h264_out: Path) -> list[str]:
    # Fit inside the size, keeping the aspect ratio, and pad the rest black.
    fit = (f"fps={fps},scale={width}:{height}:force_original_aspect_ratio=decrease,"
           f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p")
    gop = ["-g", str(fps), "-keyint_min", str(fps)]  # a keyframe every second: a late joiner waits <= 1 s
    return ["-filter_complex", f"[0:v:0]{fit},split=2[a][b]",
            "-map", "[a]", "-an", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
            *gop, "-auto-alt-ref", "0", "-lag-in-frames", "0", "-error-resilient", "1", "-f", "ivf", str(vp8_out),
            "-map", "[b]", "-an", "-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1",
            "-tune", "zerolatency", *gop, "-sc_threshold", "0", "-bf", "0", "-x264-params", "repeat-headers=1",
            "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(h264_out)]


class MediaLibrary:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- paths -------------------------------------------------------------------------------------------
    def _meta(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.json"

    def _base(self, name: str, codec: str) -> Path:
        return (self.root / f"{check_name(name)}_{codec}").absolute()

    def _files(self, name: str, codec: str) -> tuple[Path, Path]:
        base = self._base(name, codec)
        return base.with_name(base.name + EXTENSIONS[codec]), base.with_name(base.name + ".wav")

    def _present(self, name: str) -> tuple[str, ...]:
        return tuple(c for c in CODECS if all(p.is_file() for p in self._files(name, c)))

    # -- reading -----------------------------------------------------------------------------------------
    def get(self, name: str) -> MediaInfo | None:
        meta = self._meta(name)
        try:
            data = json.loads(meta.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise MediaError(f"{meta.name} cannot be read: {exc}") from exc
        try:
            files = {os.stat(p).st_ino: os.stat(p).st_size
                     for c in CODECS for p in (*self._files(name, c), meta) if p.exists()}
            return MediaInfo(name=name, duration=float(data["duration"]), width=int(data["width"]),
                             height=int(data["height"]), fps=int(data["fps"]), frames=int(data["frames"]),
                             codecs=self._present(name), source=str(data.get("source", "")),
                             created=str(data.get("created", "")), bytes=sum(files.values()))
        except (KeyError, TypeError, ValueError) as exc:
            raise MediaError(f"{meta.name} is not a prompt's description: {exc}") from exc

    def list(self) -> list[MediaInfo]:
        found: list[MediaInfo] = []
        if not self.root.is_dir():
            return found
        for meta in sorted(self.root.glob("*.json")):
            if not NAME_RE.match(meta.stem):
                continue
            try:
                info = self.get(meta.stem)
            except MediaError as exc:
                log.warning("media library: %s", exc)
                continue
            if info is not None:
                found.append(info)
        return sorted(found, key=lambda i: i.name)

    def variant(self, name: str, codec: str | None) -> Path:
        """The prompt's file for `codec` without extension, as Asterisk's `sound:` wants it. For no codec,
        or one the prompt has no file for, the VP8 one if there, else any: an audio-only caller hears
        its .wav."""
        present = self._present(name)
        if codec in present:
            return self._base(name, codec)
        chosen = "vp8" if "vp8" in present or not present else present[0]
        return self._base(name, chosen)

    def missing_codecs(self, name: str) -> tuple[str, ...]:
        present = self._present(name)
        return tuple(c for c in CODECS if c not in present)

    # -- changing ----------------------------------------------------------------------------------------
    def delete(self, name: str) -> bool:
        paths = [self._meta(name), *(p for c in CODECS for p in self._files(name, c))]
        existed = False
        for path in paths:  # the description first: a half-deleted prompt is not listed
            try:
                path.unlink()
                existed = True
            except FileNotFoundError:
                pass
        return existed

    def import_file(self, source: Path, name: str, *, fps: int = 10, width: int = 320,
                    height: int = 240) -> MediaInfo:
        """Make the prompt `name` from any video file ffmpeg reads, replacing one of that name. All its
        files appear together or, when anything fails, none of them does."""
        check_name(name)
        check_shape(fps, width, height)
        if not source.is_file():
            raise MediaError(f"{source} is not a file")
        found = probe(source)
        if not found.has_video:
            raise MediaError(f"{source.name} has no video: a video prompt needs pictures "
                             "(for sound alone, play it as a sound: prompt)")
        if found.duration is not None and found.duration > MAX_SECONDS:
            raise MediaError(f"{source.name} lasts {found.duration:.0f} s: a prompt may last {MAX_SECONDS:.0f} s")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".import-", dir=self.root))
        try:
            made = self._make(source, name, found.has_audio, fps, width, height, work)
            for path in made:  # the description last: the prompt is listed once all of it is there
                path.replace(self.root / path.name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        info = self.get(name)
        if info is None:
            raise MediaError(f"media {name!r} was deleted while it was being imported")
        return info

    def _make(self, source: Path, name: str, has_audio: bool, fps: int, width: int, height: int,
              work: Path) -> builtins.list[Path]:
        ivf, annexb = work / "video.ivf", work / "video.264"
        # One decode of the source feeds both encoders: the two variants have the very same frames.
        # -t: the probe may not know a source's length (a stream, a broken index): never more than this.
        ffmpeg("-t", str(MAX_SECONDS), "-i", str(source), *_video_args(fps, width, height, ivf, annexb),
               what=f"cannot import {source.name}")
        _, vp8_frames = vp8.read_ivf(ivf)
        units = h264.read_annexb_units(annexb)
        if not vp8_frames:
            raise MediaError(f"cannot import {source.name}: ffmpeg made no picture of it")
        if len(units) != len(vp8_frames):
            raise MediaError(f"cannot import {source.name}: ffmpeg made {len(vp8_frames)} VP8 pictures "
                             f"and {len(units)} H.264 ones")
        frames = len(vp8_frames)

        made: builtins.list[Path] = []
        wav = work / f"{name}_vp8.wav"
        self._audio(source, has_audio, round(frames * SAMPLE_RATE / fps), wav)
        h264_wav = work / f"{name}_h264.wav"
        try:
            os.link(wav, h264_wav)
        except OSError:
            shutil.copyfile(wav, h264_wav)
        made += [wav, h264_wav]

        vp8_file = work / f"{name}_vp8.vp8"
        write_records(vp8_file, frame_records(vp8.packetize_frames(f.data for f in vp8_frames), prompt_steps(fps)))
        h264_file = work / f"{name}_h264.h264"
        write_records(h264_file, frame_records(h264.packetize_units(units), prompt_steps(fps)))
        made += [vp8_file, h264_file]

        meta = work / f"{name}.json"
        meta.write_text(json.dumps({
            "name": name, "duration": frames / fps, "width": width, "height": height, "fps": fps,
            "frames": frames, "codecs": list(CODECS), "source": source.name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }, indent=2) + "\n")
        return [*made, meta]

    @staticmethod
    def _audio(source: Path, has_audio: bool, samples: int, out: Path) -> None:
        """8 kHz mono 16-bit, exactly `samples` long: the source's sound padded with silence or cut, or
        silence when it has none."""
        shape = (f"aresample={SAMPLE_RATE},aformat=sample_fmts=s16:sample_rates={SAMPLE_RATE}:channel_layouts=mono,"
                 f"apad=whole_len={samples},atrim=end_sample={samples}")
        given = ["-i", str(source)] if has_audio else ["-f", "lavfi", "-i", f"anullsrc=r={SAMPLE_RATE}:cl=mono"]
        ffmpeg(*given, "-map", "0:a:0", "-vn", "-af", shape, "-c:a", "pcm_s16le", "-f", "wav", str(out),
               what=f"cannot import the sound of {source.name}")
