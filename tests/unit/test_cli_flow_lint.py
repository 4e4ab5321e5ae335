"""`flow validate` lints (warnings, --strict, outside numbers from the settings, subflow cycles among
the files), and import refuses what lint calls an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_run import Run

TRANSFER = """name: out
start: a
nodes:
  a: {type: transfer, to: "number:+34600111222", on_failure: b}
  b: {type: play, media: sound:hello-world}
  orphan: {type: hangup}
"""


def test_warnings_pass_unless_strict_and_errors_fail(run: Run, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.yaml"
    path.write_text(TRANSFER)
    ran = run("flow", "validate", str(path))
    assert ran.code == 1
    assert f"{path}:4: no outbound trunk allows number:+34600111222" in ran.err
    assert f"{path}:6: warning: node 'orphan' is never reached" in ran.err
    monkeypatch.setenv("IVRPOWERS_OUTBOUND_TRUNK", "provider")
    monkeypatch.setenv("IVRPOWERS_OUTBOUND_ALLOW", json.dumps([r"\+34[6-9][0-9]{8}"]))
    ran = run("flow", "validate", str(path), "--json")
    assert ran.code == 0, ran.err
    (result,) = json.loads(ran.out)
    assert (result["ok"], result["errors"], result["warnings"]) == (True, 0, 1)
    assert result["problems"][0]["severity"] == "warning" and result["problems"][0]["line"] == 6
    assert run("flow", "validate", str(path), "--strict").code == 1


def test_import_refuses_a_lint_error_and_shows_warnings(run: Run, state: Path, tmp_path: Path) -> None:
    path = tmp_path / "out.yaml"
    path.write_text(TRANSFER)
    ran = run("flow", "import", str(path))
    assert ran.code == 1 and "not imported: 1 error" in ran.err and "warning: node 'orphan'" in ran.err
    path.write_text(TRANSFER.replace('to: "number:+34600111222"', "to: endpoint:agent1"))
    ran = run("flow", "import", str(path), "--publish")
    assert ran.code == 0 and "warning: node 'orphan'" in ran.err


def test_a_subflow_cycle_among_the_files_checked_together(run: Run, tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("name: a\nstart: s\nnodes:\n  s: {type: subflow, flow: b}\n")
    b.write_text("name: b\nstart: s\nnodes:\n  s: {type: subflow, flow: a}\n")
    assert run("flow", "validate", str(a)).code == 0
    ran = run("flow", "validate", str(a), str(b))
    assert ran.code == 1 and "subflow cycle: a -> b -> a" in ran.err
