"""`ivrpowers flow validate`: FILE:LINE: message on stderr, one per problem, and the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivrpowers.cli.demo import stock_sounds
from ivrpowers.config import PROJECT_ROOT, load_settings
from ivrpowers.demo.video import install_prompts
from ivrpowers.media.library import MediaLibrary, media_root
from ivrpowers.resources import demo_flow

GOOD_HEAD = "name: t\nstart: a\nnodes:\n  a:\n    type: answer\n    next: b\n"


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory of the test's own: its media library is what `video:` prompts are checked against."""
    monkeypatch.setenv("IVRPOWERS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivrpowers", "flow", "validate", *map(str, paths)],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=dict(os.environ),
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_demo_flow_is_valid_and_its_video_menu_is_checked_against_the_library(state_dir: Path) -> None:
    out = validate(demo_flow())
    assert out.returncode == 0, out.stderr  # a missing prompt is a warning
    assert "plays video:demo-menu, which the media library does not have" in out.stderr
    install_prompts(MediaLibrary(media_root(load_settings(state_dir=state_dir))), stock_sounds())  # as run --demo
    out = validate(demo_flow())
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_each_kind_of_mistake_names_file_and_line(tmp_path: Path) -> None:
    unknown = write(tmp_path, "unknown.yaml", GOOD_HEAD + "  b:\n    type: dance\n")
    missing = write(
        tmp_path, "missing.yaml", GOOD_HEAD + "  b:\n    type: play\n    media: [sound:beep]\n    next: nowhere\n"
    )
    syntax = write(
        tmp_path,
        "syntax.yaml",
        "name: t\nstart: a\nnodes:\n  a:\n    type: answer\n    next: [b\n  b:\n    type: hangup\n",
    )
    no_start = write(tmp_path, "nostart.yaml", "name: t\nstart: zz\nnodes:\n  a:\n    type: hangup\n")
    out = validate(unknown, missing, syntax, no_start)
    assert out.returncode != 0
    lines = out.stderr.splitlines()
    assert any(line.startswith(f"{unknown}:8: ") and "dance" in line for line in lines), lines
    assert any(line.startswith(f"{missing}:10: ") and "nowhere" in line for line in lines), lines
    assert any(line.startswith(f"{syntax}:6: YAML") for line in lines), lines
    assert any(line.startswith(f"{no_start}:2: ") and "zz" in line for line in lines), lines
    assert len(lines) == 4


def test_one_bad_file_fails_the_run_and_the_good_one_is_still_reported(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", GOOD_HEAD)  # `next: b` but there is no b
    out = validate(demo_flow(), bad)
    assert out.returncode == 1
    assert any(line.startswith(f"{bad}:6: ") for line in out.stderr.splitlines()), out.stderr
    assert "demo.yaml: ok" in out.stdout


def test_a_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    out = validate(tmp_path / "nope.yaml")
    assert out.returncode == 1
    assert out.stderr.startswith(f"{tmp_path / 'nope.yaml'}:1: cannot read")
    assert "Traceback" not in out.stderr
