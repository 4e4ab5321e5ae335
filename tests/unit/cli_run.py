"""Running the CLI in-process through its real entry point, isolated from the developer's own setup."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivrpowers.cli.main import main


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


Run = Callable[..., Ran]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Iterator[Run]:
    # Nothing of the developer's own: no state dir, config file or home leaks into these runs.
    for name in ("IVRPOWERS_STATE_DIR", "IVRPOWERS_USER_CONFIG", "IVRPOWERS_CONFIG", "IVRPOWERS_DB_URL",
                 "IVRPOWERS_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "home" / ".local" / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("IVRPOWERS_AMI_PORT", "1")  # nothing listens there: never a real Asterisk's AMI

    def ivrpowers(*args: str) -> Ran:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["ivrpowers", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    yield ivrpowers


@pytest.fixture
def state(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installation (migrated database) in its own state directory, named by IVRPOWERS_STATE_DIR."""
    state = tmp_path / "state"
    monkeypatch.setenv("IVRPOWERS_STATE_DIR", str(state))
    assert run("db", "upgrade").code == 0
    return state


