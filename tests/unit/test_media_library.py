"""The video prompt library with the real ffmpeg: clips made with lavfi are imported, their record files
parsed back, depacketized and decoded again by ffmpeg (frame count, the pictures' colours in order),
the sound checked; atomic import, names, errors, delete, list, variants; recordings to mp4."""

from __future__ import annotations

import array
import itertools
import json
import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path

import pytest

from ivrpowers.media import MediaError, h264, vp8
from ivrpowers.media.convert import depacketize_file, prompt_to_ivf, recording_to_mp4
from ivrpowers.media.library import CODECS, MediaLibrary, media_root
from ivrpowers.media.records import MAX_PAYLOAD, Record, frame_records, read_records, write_records

RED, BLUE = (255, 0, 0), (0, 0, 255)
W, H = 320, 240


def colour_clip(path: Path, segments: Sequence[tuple[str, float]] = (("red", 2.0), ("blue", 2.0)), *,
                tone_seconds: float | None = 3.0, size: str = "640x360") -> Path:
    """A 25 fps clip of solid colours (16:9: the prompt gets black bars) with a sine tone, or no sound."""
    inputs: list[str] = []
    for colour, seconds in segments:
        inputs += ["-f", "lavfi", "-i", f"color=c={colour}:s={size}:r=25:d={seconds}"]
    audio: list[str] = []
    if tone_seconds is not None:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={tone_seconds}"]
        audio = ["-map", f"{len(segments)}:a", "-c:a", "aac"]
    graph = "".join(f"[{i}]" for i in range(len(segments))) + f"concat=n={len(segments)}:v=1:a=0[v]"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs, "-filter_complex", graph,
                    "-map", "[v]", *audio, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def decoded_pixels(ivf: Path, points: Sequence[tuple[int, int]]) -> list[list[tuple[int, ...]]]:
    """Each decoded frame's RGB at `points` (x, y)."""
    raw = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(ivf), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    size = W * H * 3
    assert len(raw) % size == 0
    return [[tuple(raw[n + (y * W + x) * 3: n + (y * W + x) * 3 + 3]) for x, y in points]
            for n in range(0, len(raw), size)]


def near(pixel: Sequence[int], colour: Sequence[int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def samples(path: Path) -> tuple[tuple[int, int, int], array.array[int]]:
    with wave.open(str(path)) as w:
        shape = (w.getnchannels(), w.getsampwidth(), w.getframerate())
        data = array.array("h", w.readframes(w.getnframes()))
    return shape, data


def peak(data: array.array[int], start: float, end: float) -> int:
    return max((abs(s) for s in data[int(start * 8000):int(end * 8000)]), default=0)


def frames_of(records: list[Record]) -> list[list[Record]]:
    frames: list[list[Record]] = [[]]
    for rec in records:
        frames[-1].append(rec)
        if rec.marker:
            frames.append([])
    assert frames[-1] == []  # the file ends at a frame's end
    return frames[:-1]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("clips")
    colour_clip(where / "red-blue.mp4")  # 4 s of pictures, 3 s of tone
    colour_clip(where / "long-tone.mp4", (("green", 1.0),), tone_seconds=2.5, size="320x240")
    colour_clip(where / "silent.mkv", (("yellow", 1.0),), tone_seconds=None, size="160x120")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", str(where / "tone.wav")], check=True)
    (where / "notes.mp4").write_text("not a video at all\n")
    return where


@pytest.fixture(scope="module")
def imported(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    library = MediaLibrary(tmp_path_factory.mktemp("library") / "media")
    library.import_file(clips / "red-blue.mp4", "menu")
    return library


def test_import_makes_one_file_pair_per_codec_and_describes_them(imported: MediaLibrary) -> None:
    info = imported.get("menu")
    assert info is not None
    assert (info.name, info.duration, info.frames, info.fps, info.width, info.height, info.codecs, info.source) == (
        "menu", 4.0, 40, 10, 320, 240, ("vp8", "h264"), "red-blue.mp4")
    names = sorted(p.name for p in imported.root.iterdir())
    assert names == ["menu.json", "menu_h264.h264", "menu_h264.wav", "menu_vp8.vp8", "menu_vp8.wav"]
    wav = (imported.root / "menu_vp8.wav").stat().st_size
    assert info.bytes == sum(p.stat().st_size for p in imported.root.iterdir()) - wav  # the wav counted once
    assert (imported.root / "menu_vp8.wav").samefile(imported.root / "menu_h264.wav")
    assert json.loads((imported.root / "menu.json").read_text())["created"].endswith("+00:00")
    assert imported.variant("menu", "h264") == imported.root.absolute() / "menu_h264"
    assert imported.missing_codecs("menu") == ()


@pytest.mark.parametrize("codec", CODECS)
def test_records_are_paced_at_1125_per_frame_with_markers(imported: MediaLibrary, codec: str) -> None:
    records = read_records(Path(f"{imported.variant('menu', codec)}.{codec}"))
    frames = frames_of(records)
    assert len(frames) == 40
    assert all(f[0].ts == 1125 and all(r.ts == 0 for r in f[1:]) for f in frames)
    assert all(0 < len(r.payload) <= MAX_PAYLOAD for r in records)
    if codec == "vp8":
        pids = [int.from_bytes(f[0].payload[2:4]) & 0x7FFF for f in frames]
        assert pids == list(range(40)) and all(r.payload[0] == (0x90 if n == 0 else 0x80)
                                               for f in frames for n, r in enumerate(f))
        assert vp8.is_keyframe(frames[0][0].payload[4:])
        return
    kinds = [[h264.nal_type(r.payload) if h264.nal_type(r.payload) != h264.FU_A else r.payload[1] & 0x1F
              for r in f] for f in frames]
    assert h264.IDR in kinds[0]
    assert not {h264.SEI, h264.AUD} & set(itertools.chain(*kinds))
    for frame_kinds in kinds:  # SPS and PPS before every IDR
        if h264.IDR in frame_kinds:
            assert frame_kinds[:2] == [h264.SPS, h264.PPS]


@pytest.mark.parametrize("codec", CODECS)
def test_the_prompt_decodes_red_then_blue_in_its_box(imported: MediaLibrary, codec: str, tmp_path: Path) -> None:
    ivf = tmp_path / "back.ivf"
    assert prompt_to_ivf(Path(f"{imported.variant('menu', codec)}.{codec}"), ivf) == 40
    pixels = decoded_pixels(ivf, [(160, 120), (160, 5)])
    assert len(pixels) == 40  # duration x fps
    assert all(near(p[0], RED) for p in pixels[:19]) and all(near(p[0], BLUE) for p in pixels[21:])
    assert all(near(p[1], (0, 0, 0), 20) for p in pixels)  # 16:9 fitted into 4:3: black bars
    assert [f.pts for f in depacketize_file(Path(f"{imported.variant('menu', codec)}.{codec}"))][:3] == [0, 1125, 2250]


def test_the_sound_is_8khz_mono_16bit_as_long_as_the_video_padded_with_silence(imported: MediaLibrary) -> None:
    shape, data = samples(imported.root / "menu_vp8.wav")
    assert shape == (1, 2, 8000) and len(data) == 4 * 8000
    assert peak(data, 0.1, 2.9) > 3000 and peak(data, 3.05, 4.0) == 0


def test_a_longer_sound_is_cut_and_a_missing_one_is_silence(clips: Path, tmp_path: Path) -> None:
    library = MediaLibrary(tmp_path / "media")
    info = library.import_file(clips / "long-tone.mp4", "cut", fps=5, width=160, height=120)
    assert (info.frames, info.duration, info.width) == (5, 1.0, 160)
    shape, data = samples(tmp_path / "media" / "cut_h264.wav")
    assert shape == (1, 2, 8000) and len(data) == 8000 and peak(data, 0.5, 1.0) > 3000
    assert {r.ts for r in read_records(tmp_path / "media" / "cut_vp8.vp8") if r.ts} == {2250}

    library.import_file(clips / "silent.mkv", "quiet")
    shape, data = samples(tmp_path / "media" / "quiet_vp8.wav")
    assert len(data) == 8000 and peak(data, 0, 1) == 0


@pytest.mark.parametrize(("file", "options", "says"), [
    ("notes.mp4", {}, "cannot read notes.mp4: Invalid data found when processing input"),
    ("tone.wav", {}, "tone.wav has no video"),
    ("absent.mp4", {}, "is not a file"),
    ("red-blue.mp4", {"fps": 15}, "15 fps is not possible"),
    ("red-blue.mp4", {"width": 321}, "321x240 is not possible"),
])
def test_refusals_are_one_line_and_leave_nothing(clips: Path, tmp_path: Path, file: str, options: dict[str, int],
                                                 says: str) -> None:
    library = MediaLibrary(tmp_path / "media")
    with pytest.raises(MediaError) as caught:
        library.import_file(clips / file, "n", **options)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").iterdir())
    assert library.list() == []


@pytest.mark.parametrize("name", ["a/b", "../x", "x.y", "", "-x", "_x", "a" * 65, "é"])
def test_names_that_cannot_be(tmp_path: Path, name: str) -> None:
    library = MediaLibrary(tmp_path)
    for call in (lambda: library.get(name), lambda: library.delete(name), lambda: library.variant(name, "vp8"),
                 lambda: library.import_file(tmp_path / "x.mp4", name)):
        with pytest.raises(MediaError, match=r"media name .* is not allowed \(letters, digits, - and _, up to 64\)"):
            call()


def test_a_failed_reimport_keeps_the_old_prompt_and_a_good_one_replaces_it(
        clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = MediaLibrary(tmp_path / "media")
    library.import_file(clips / "long-tone.mp4", "p")
    before = {p.name: p.read_bytes() for p in library.root.iterdir()}

    def broken(*args: object) -> None:
        raise MediaError("no sound today")

    with monkeypatch.context() as patch:
        patch.setattr(MediaLibrary, "_audio", staticmethod(broken))
        with pytest.raises(MediaError, match="no sound today"):
            library.import_file(clips / "red-blue.mp4", "p")
    assert {p.name: p.read_bytes() for p in library.root.iterdir()} == before  # no temp dir left either

    info = library.import_file(clips / "red-blue.mp4", "p", fps=2, width=160, height=90)
    assert (info.frames, info.fps, info.width, info.height, info.source) == (8, 2, 160, 90, "red-blue.mp4")
    assert sorted(p.name for p in library.root.iterdir()) == sorted(before)


def test_list_get_delete_variant_missing(clips: Path, tmp_path: Path) -> None:
    library = MediaLibrary(tmp_path / "media")
    assert library.list() == [] and library.get("x") is None and library.delete("x") is False
    for name in ("b", "a"):
        library.import_file(clips / "silent.mkv", name, fps=1)
    assert [i.name for i in library.list()] == ["a", "b"]
    (library.root / "a_h264.h264").unlink()  # a variant lost: callers on H.264 get the VP8 one's sound
    assert library.missing_codecs("a") == ("h264",) and library.get("a").codecs == ("vp8",)  # type: ignore[union-attr]
    assert library.variant("a", "h264") == library.root.absolute() / "a_vp8"
    (library.root / "a_vp8.vp8").unlink()
    assert library.variant("a", None) == library.variant("a", "vp8") == library.root.absolute() / "a_vp8"
    assert library.variant("b", None) == library.root.absolute() / "b_vp8"
    assert library.variant("b", "h263") == library.root.absolute() / "b_vp8"
    (library.root / "b_vp8.wav").unlink()
    assert library.variant("b", None) == library.root.absolute() / "b_h264"
    (library.root / "b.json").write_text("{broken")
    assert [i.name for i in library.list()] == ["a"]  # an unreadable description is skipped, not fatal
    assert library.delete("a") is True and library.delete("b") is True
    assert list(library.root.iterdir()) == []


def test_media_root_is_private_in_the_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ivrpowers.config import load_settings

    monkeypatch.chdir(tmp_path)
    root = media_root(load_settings(state_dir=Path("state")))
    assert root == tmp_path / "state" / "media" and root.is_absolute() and root.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("codec", CODECS)
def test_a_recording_converts_to_mp4_with_its_90khz_timing(imported: MediaLibrary, codec: str,
                                                           tmp_path: Path) -> None:
    # A recording as Asterisk writes one: empty records first, then 90 kHz deltas (15 fps: 6000).
    frames = [f.data for f in depacketize_file(Path(f"{imported.variant('menu', codec)}.{codec}"))]
    packets = vp8.packetize_frames(frames) if codec == "vp8" else (
        [p for nal in h264.split_annexb(f) for p in h264.fragment(nal)] for f in frames)
    recording = tmp_path / f"rec.{codec}"
    write_records(recording, [Record(0, False, b"")] * 17 + frame_records(packets, itertools.repeat(6000)))
    out = recording_to_mp4(recording, imported.root / "menu_vp8.wav", tmp_path / "rec.mp4", kind=codec)  # type: ignore[arg-type]
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_frames", "-of", "json",
                                       str(out)], check=True, capture_output=True, text=True).stdout)
    assert [s["codec_name"] for s in probe["streams"]] == ["h264", "aac"]
    times = [float(f["pts_time"]) for f in probe["frames"] if f["media_type"] == "video"]
    assert len(times) == 40 and all(abs(b - a - 1 / 15) < 0.002 for a, b in itertools.pairwise(times))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["rec.mp4", f"rec.{codec}"])  # no temp files left
