"""`ivrpowers media ...` through the CLI's real entry point (real ffmpeg, no Asterisk, no database): what
import says it made, --json shapes, the library in the state directory, one-line errors with the
conventions' exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_run import Run
from .test_media_library import colour_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_clip(tmp_path_factory.mktemp("cli-clip") / "clip.mp4", (("red", 1.0),), tone_seconds=1.0,
                       size="320x240")


def test_import_list_delete(run: Run, tmp_path: Path, clip: Path) -> None:
    state = tmp_path / "state"
    ran = run("--state-dir", str(state), "media", "import", str(clip), "--name", "hello", "--fps", "5",
              "--size", "160x120")
    assert ran.code == 0, ran.err
    size = sum(p.stat().st_size for p in (state / "media").iterdir()) - (state / "media/hello_vp8.wav").stat().st_size
    assert ran.out == f"imported hello: vp8, h264; 1.0 s, 5 frames, 160x120 at 5 fps; {size} bytes\n"
    assert sorted(p.name for p in (state / "media").iterdir()) == [
        "hello.json", "hello_h264.h264", "hello_h264.wav", "hello_vp8.vp8", "hello_vp8.wav"]
    assert (state / "media").stat().st_mode & 0o777 == 0o700

    made = json.loads(run("--state-dir", str(state), "media", "import", str(clip), "--name", "again", "--json").out)
    assert set(made) == {"name", "duration", "width", "height", "fps", "frames", "codecs", "source", "created", "bytes"}
    assert (made["name"], made["frames"], made["fps"], made["width"], made["height"], made["codecs"],
            made["source"]) == ("again", 10, 10, 320, 240, ["vp8", "h264"], "clip.mp4")

    listed = json.loads(run("--state-dir", str(state), "media", "list", "--json").out)
    assert [m["name"] for m in listed] == ["again", "hello"] and listed[0] == made
    table = run("--state-dir", str(state), "media", "list").out.splitlines()
    assert table[0].split() == ["NAME", "CODECS", "SECS", "FRAMES", "SIZE", "FPS", "BYTES"]
    assert table[2].split()[:6] == ["hello", "vp8,h264", "1.0", "5", "160x120", "5"]

    ran = run("--state-dir", str(state), "media", "delete", "hello")
    assert (ran.code, ran.out) == (0, "deleted hello\n")
    assert [m["name"] for m in json.loads(run("--state-dir", str(state), "media", "list", "--json").out)] == ["again"]
    ran = run("--state-dir", str(state), "media", "delete", "hello")
    assert ran.code == 3 and ran.error_lines == [
        "error: no media named 'hello' (see `ivrpowers media list`)"] and ran.out == ""


@pytest.mark.parametrize(("args", "code", "says"), [
    (["import", "{clip}", "--name", "a/b"], 2, "media name 'a/b' is not allowed (letters, digits, - and _, up to 64)"),
    (["delete", "x.y"], 2, "media name 'x.y' is not allowed"),
    (["import", "{clip}", "--name", "a", "--fps", "15"], 2, "15 is not in the range 1<=x<=10"),
    (["import", "{clip}", "--name", "a", "--size", "big"], 2, "'big' is not WIDTHxHEIGHT"),
    (["import", "{clip}", "--name", "a", "--size", "321x240"], 2, "size 321x240 is not possible"),
    (["import", "{notes}", "--name", "a"], 1, "error: cannot read notes.txt: Invalid data found when processing input"),
    (["import", "{missing}", "--name", "a"], 2, "does not exist"),
])
def test_errors_are_one_line_with_the_conventions_exit_codes(run: Run, tmp_path: Path, clip: Path,
                                                              args: list[str], code: int, says: str) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    paths = {"clip": clip, "notes": notes, "missing": tmp_path / "missing.mp4"}
    ran = run("--state-dir", str(tmp_path / "state"), "media", *(a.format(**paths) for a in args))
    assert ran.code == code and ran.error_lines == [ran.err.strip()] and says in ran.err, ran.err
    assert "Traceback" not in ran.err and ran.out == ""
    assert not any((tmp_path / "state" / "media").glob("*"))  # nothing left behind


def test_without_ffmpeg_import_is_unavailable(run: Run, tmp_path: Path, clip: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg, no ffprobe
    ran = run("--state-dir", str(tmp_path / "state"), "media", "import", str(clip), "--name", "a")
    assert ran.code == 4 and ran.error_lines == ["error: ffprobe is not installed (Debian: apt-get install ffmpeg)"]
