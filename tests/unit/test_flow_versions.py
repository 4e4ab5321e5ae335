"""Flow versions through the CLI: messages, history, diff, rollback, export byte for byte, edit in $EDITOR."""

from __future__ import annotations

import asyncio
import io
import json
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowRepository, NothingToRollBack
from ivrpowers.store.migrate import upgrade

from .cli_run import Run

FLOW = "name: {name}\nstart: bye\nnodes:\n  bye: {{type: hangup}}\n"


def flow_file(tmp_path: Path, name: str, extra: str = "") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(FLOW.format(name=name) + extra)
    return str(path)


def data(run: Run, *args: str) -> object:
    ran = run(*args, "--json")
    assert ran.code == 0, (args, ran.err)
    return json.loads(ran.out)


def test_messages_and_publishes_make_the_history(run: Run, state: Path, tmp_path: Path) -> None:
    assert run("flow", "import", flow_file(tmp_path, "demo"), "--publish", "-m", "first cut").code == 0
    v2 = flow_file(tmp_path, "demo", "# louder\n")
    assert run("flow", "import", v2, "-m", "louder greeting").code == 0
    ran = run("flow", "import", v2, "-m", "not kept")
    assert ran.code == 0 and "unchanged" in ran.out  # nothing stored, the message neither
    ran = run("flow", "publish", "demo", "--message", "ship the louder one")
    assert ran.out.strip() == "demo v2 is live now (was v1)"
    assert run("flow", "publish", "demo", "-m", "again").out.strip() == "demo v2 is live now (it already was)"

    history = data(run, "flow", "history", "demo")
    assert isinstance(history, dict) and set(history) == {"name", "live_version", "versions", "publishes"}
    assert (history["name"], history["live_version"]) == ("demo", 2)
    versions, publishes = history["versions"], history["publishes"]
    assert set(versions[0]) == {"version", "created_at", "message", "live", "published_at"}
    assert [(v["version"], v["message"], v["live"]) for v in versions] == [
        (2, "louder greeting", True), (1, "first cut", False)]
    assert all(datetime.fromisoformat(v["published_at"]).tzinfo is not None for v in versions)
    assert set(publishes[0]) == {"version", "at", "message", "previous_version", "rollback"}
    # A publish that changes nothing ("again") is no change of the live version: not in the log.
    assert [(p["version"], p["previous_version"], p["message"], p["rollback"]) for p in publishes] == [
        (2, 1, "ship the louder one", False), (1, None, "first cut", False)]

    text = run("flow", "history", "demo")
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[0].split() == ["VERSION", "IMPORTED", "(UTC)", "LIVE", "LAST", "PUBLISHED", "MESSAGE"]
    assert lines[1].startswith("v2 ") and " live " in lines[1] and lines[1].endswith("louder greeting")
    assert lines[2].startswith("v1 ") and " live " not in lines[2] and lines[2].endswith("first cut")
    assert any(line.split()[2:] == ["v2", "v1", "ship", "the", "louder", "one"] for line in lines)
    assert run("flow", "history", "nosuch").code == 3


def test_history_of_a_flow_never_published(run: Run, state: Path, tmp_path: Path) -> None:
    assert run("flow", "import", flow_file(tmp_path, "draft")).code == 0
    history = data(run, "flow", "history", "draft")
    assert history == {"name": "draft", "live_version": None, "publishes": [], "versions": [
        {"version": 1, "created_at": history["versions"][0]["created_at"],  # type: ignore[index]
         "message": None, "live": False, "published_at": None}]}
    assert "no version of draft was ever published" in run("flow", "history", "draft").out


def test_diff_shows_what_would_change(run: Run, state: Path, tmp_path: Path) -> None:
    one = flow_file(tmp_path, "demo")
    assert run("flow", "import", one).code == 0
    ran = run("flow", "diff", "demo")  # a single version, none live: all of it is new
    assert ran.code == 0 and ran.out.startswith("--- /dev/null\n+++ demo v1\n@@ -0,0 +1,4 @@\n+name: demo\n")
    two = Path(one)
    two.write_text(FLOW.format(name="demo").replace("start: bye", "start: bye  # the end"))
    assert run("flow", "import", str(two)).code == 0

    expected = ("--- demo v1\n+++ demo v2\n@@ -1,4 +1,4 @@\n name: demo\n-start: bye\n+start: bye  # the end\n"
                " nodes:\n   bye: {type: hangup}\n")
    ran = run("flow", "diff", "demo")  # none live: the latest against the one before it
    assert (ran.code, ran.out) == (0, expected)
    assert run("flow", "diff", "demo", "1", "2").out == expected
    assert run("flow", "diff", "demo", "1").out == expected  # V1 against the latest
    assert run("flow", "diff", "demo", "2", "1").out.startswith("--- demo v2\n+++ demo v1\n")

    three = Path(one)
    three.write_text(three.read_text() + "# no newline at the end")
    assert run("flow", "import", str(three)).code == 0
    assert run("flow", "publish", "demo", "--version", "1").code == 0
    ran = run("flow", "diff", "demo")  # the latest (v3) against the live one (v1)
    assert ran.out.startswith("--- demo v1\n+++ demo v3\n")
    assert ran.out.endswith("+# no newline at the end\n\\ No newline at end of file\n")

    ran = run("flow", "diff", "demo", "3", "3")
    assert (ran.code, ran.out) == (0, "") and "no difference between demo v3 and demo v3" in ran.err
    assert run("flow", "diff", "demo", "9").code == 3
    assert run("flow", "diff", "nosuch").code == 3


def test_rollback_walks_back_through_what_was_live(run: Run, state: Path, tmp_path: Path) -> None:
    for n in (1, 2, 3):
        assert run("flow", "import", flow_file(tmp_path, "demo", f"# v{n}\n"), "--publish").code == 0
    ran = run("flow", "rollback", "demo", "-m", "v3 drops calls")
    assert (ran.code, ran.out.strip()) == (0, "demo v2 is live now (rolled back; was v3)")
    # Again: one further back, not back to v3.
    assert data(run, "flow", "rollback", "demo") == {
        "name": "demo", "version": 1, "published": True, "live_version": 1, "previous_live_version": 2}
    ran = run("flow", "rollback", "demo")
    assert ran.code == 1 and ran.error_lines == [ran.err.strip()]
    assert "demo v1 is live and no version was live before it" in ran.err and "flow publish demo" in ran.err
    assert data(run, "flow", "list")[0]["published_version"] == 1  # type: ignore[index]

    publishes = data(run, "flow", "history", "demo")["publishes"]  # type: ignore[index]
    assert [(p["version"], p["previous_version"], p["rollback"], p["message"]) for p in publishes][:2] == [
        (1, 2, True, None), (2, 3, True, "v3 drops calls")]
    assert "(rollback) v3 drops calls" in run("flow", "history", "demo").out


def test_rollback_after_republishing_an_old_version(run: Run, state: Path, tmp_path: Path) -> None:
    assert run("flow", "import", flow_file(tmp_path, "demo"), "--publish").code == 0
    assert run("flow", "import", flow_file(tmp_path, "demo", "# v2\n"), "--publish").code == 0
    assert run("flow", "publish", "demo", "--version", "1").code == 0
    assert run("flow", "rollback", "demo").out.strip() == "demo v2 is live now (rolled back; was v1)"
    assert run("flow", "rollback", "demo").out.strip() == "demo v1 is live now (rolled back; was v2)"
    assert run("flow", "rollback", "demo").code == 1


def test_rollback_with_nothing_live(run: Run, state: Path, tmp_path: Path) -> None:
    assert run("flow", "import", flow_file(tmp_path, "draft")).code == 0
    ran = run("flow", "rollback", "draft")
    assert ran.code == 1 and ran.error_lines == ["error: draft has no live version to roll back "
                                                 "(publish a version by number: `ivrpowers flow publish draft "
                                                 "--version N`)"]
    assert run("flow", "rollback", "nosuch").code == 3


def test_export_gives_back_the_imported_bytes(run: Run, state: Path, tmp_path: Path) -> None:
    lf = ("# Sales line: Peña & Associés ☎\nname: sales  # the name routes use\nstart: bye\n"
          "nodes:\n  # the only node\n  bye: {type: hangup}\n").encode()
    crlf = b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n") + b"# v2, from Windows, no final newline"
    source = tmp_path / "sales.yaml"
    source.write_bytes(lf)
    assert run("flow", "import", str(source), "-m", "first").code == 0
    source.write_bytes(crlf)
    ran = run("flow", "import", str(source))
    assert ran.code == 0 and "sales v2 imported" in ran.out  # line endings and a BOM are changes too

    out = tmp_path / "out.yaml"
    ran = run("flow", "export", "sales", "-o", str(out))
    assert ran.code == 0 and out.read_bytes() == crlf and ran.out == "" and "sales v2" in ran.err
    assert run("flow", "export", "sales", "--version", "1", "--output", str(out)).code == 0
    assert out.read_bytes() == lf
    ran = run("flow", "export", "sales", "--version", "1")
    assert (ran.code, ran.out.encode()) == (0, lf)
    assert run("flow", "export", "sales").out.encode() == crlf
    assert json.loads(run("flow", "show", "sales", "--json").out)["source"].encode() == crlf
    assert run("flow", "export", "sales", "--version", "3").code == 3
    ran = run("flow", "export", "sales", "-o", str(tmp_path / "no" / "such" / "dir.yaml"))
    assert ran.code == 1 and len(ran.error_lines) == 1


# The editor: records what it was shown, then writes the next planned text (if any) into the file.
EDITOR = """\
import os, pathlib, subprocess, sys
plan = pathlib.Path(os.environ["EDIT_PLAN"])
target = pathlib.Path(sys.argv[1])
n = len(list(plan.glob("seen-*")))
(plan / f"seen-{n}").write_bytes(target.read_bytes())
if (plan / f"text-{n}").exists():
    target.write_bytes((plan / f"text-{n}").read_bytes())
if (plan / f"run-{n}").exists():
    subprocess.run(["sh", "-c", (plan / f"run-{n}").read_text()], check=True)
sys.exit(int((plan / "exit").read_text()) if (plan / "exit").exists() else 0)
"""


class Editor:
    def __init__(self, plan: Path) -> None:
        self.plan = plan
        self.steps = 0

    def then(self, text: str | None = None, *, run: str | None = None) -> Editor:
        """The next time the editor opens: it writes `text` (None: saves unchanged), then runs `run`."""
        if text is not None:
            (self.plan / f"text-{self.steps}").write_text(text)
        if run is not None:
            (self.plan / f"run-{self.steps}").write_text(run)
        self.steps += 1
        return self

    @property
    def seen(self) -> list[str]:
        """What the editor was shown, each time it opened."""
        return [(self.plan / f"seen-{n}").read_text() for n in range(len(list(self.plan.glob("seen-*"))))]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Editor:
    plan = tmp_path / "plan"
    plan.mkdir()
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")
    monkeypatch.setenv("EDIT_PLAN", str(plan))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # an abandoned edit is kept there
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return Editor(plan)


def versions(run: Run, name: str = "demo") -> list[tuple[int, str | None, bool]]:
    history = data(run, "flow", "history", name)
    return [(v["version"], v["message"], v["live"]) for v in history["versions"]]  # type: ignore[index]


def test_edit_stores_a_valid_change_as_a_new_version(
    run: Run, state: Path, tmp_path: Path, editor: Editor
) -> None:
    original = FLOW.format(name="demo") + "# café\n"
    assert run("flow", "import", flow_file(tmp_path, "demo", "# café\n"), "--publish").code == 0
    edited = original.replace("start: bye", "start: bye  # edited")
    editor.then(edited)
    ran = run("flow", "edit", "demo", "-m", "say why")
    assert ran.code == 0, ran.err
    assert ran.out.strip() == ("demo v2 stored; v1 is still the live one "
                               "(`ivrpowers flow publish demo --version 2` to change)")
    assert editor.seen == [original]  # the latest version, as stored
    assert versions(run) == [(2, "say why", False), (1, None, True)]  # never published unasked
    assert run("flow", "export", "demo").out == edited
    assert list((tmp_path / "tmp").iterdir()) == []  # the edit's file is gone


def test_edit_asks_for_the_message_on_a_terminal_and_can_publish(
    run: Run, state: Path, tmp_path: Path, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("flow", "import", flow_file(tmp_path, "demo")).code == 0
    editor.then(FLOW.format(name="demo") + "# two\n")
    monkeypatch.setattr(sys, "stdin", Terminal("typed at the prompt\n"))
    ran = run("flow", "edit", "demo", "--publish", "--json")
    assert ran.code == 0 and "message" in ran.err
    assert json.loads(ran.out) == {"name": "demo", "version": 2, "published": True, "created": True,
                                   "live_version": 2, "previous_live_version": None}
    assert versions(run) == [(2, "typed at the prompt", True), (1, None, False)]


def test_an_invalid_edit_is_shown_and_edited_again_until_valid(
    run: Run, state: Path, tmp_path: Path, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("flow", "import", flow_file(tmp_path, "demo")).code == 0
    broken = FLOW.format(name="demo").replace("start: bye", "start: nowhere")
    fixed = FLOW.format(name="demo").replace("start: bye", "start: bye  # fixed")
    editor.then(broken).then(fixed)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))  # Enter: the default, yes
    ran = run("flow", "edit", "demo", "-m", "fixed on the second try")
    assert ran.code == 0, ran.err
    assert "demo.yaml:2: start: start node 'nowhere' does not exist" in ran.err
    assert "edit again? [Y/n]" in ran.err
    assert editor.seen == [FLOW.format(name="demo"), broken]  # the second round goes on from the broken text
    assert versions(run) == [(2, "fixed on the second try", False), (1, None, False)]
    assert run("flow", "export", "demo").out == fixed


def test_an_abandoned_invalid_edit_stores_nothing_and_keeps_the_text(
    run: Run, state: Path, tmp_path: Path, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("flow", "import", flow_file(tmp_path, "demo")).code == 0
    broken = FLOW.format(name="demo") + "  oops: [\n"
    editor.then(broken)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    ran = run("flow", "edit", "demo", "--publish")
    assert ran.code == 1 and ran.out == ""
    [problem_line] = [line for line in ran.err.splitlines() if line.startswith(str(tmp_path / "tmp"))]
    assert problem_line.split(":")[1].isdigit()  # FILE:LINE: message
    [error] = ran.error_lines
    assert "demo not changed: the edit has 1 problem(s), nothing stored" in error
    kept = Path(error.split("your edit is kept in ")[1].rstrip(")"))
    assert kept.read_text() == broken
    assert versions(run) == [(1, None, False)]

    # No answer at all (stdin closed, not a terminal) is a no too.
    editor.then(broken)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    ran = run("flow", "edit", "demo")
    assert ran.code == 1 and "nothing stored" in ran.err and versions(run) == [(1, None, False)]


def test_an_unchanged_edit_stores_nothing(run: Run, state: Path, tmp_path: Path, editor: Editor) -> None:
    assert run("flow", "import", flow_file(tmp_path, "demo"), "--publish").code == 0
    editor.then()
    ran = run("flow", "edit", "demo", "--publish")
    assert (ran.code, ran.out.strip()) == (0, "demo unchanged: same as v1, no new version; v1 is live (it already was)")
    assert versions(run) == [(1, None, True)]


def test_an_edit_may_not_rename_the_flow(
    run: Run, state: Path, tmp_path: Path, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("flow", "import", flow_file(tmp_path, "demo")).code == 0
    editor.then(FLOW.format(name="other"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    ran = run("flow", "edit", "demo")
    assert ran.code == 1 and "demo.yaml:1: name: 'other': this edits flow 'demo'" in ran.err
    assert data(run, "flow", "list") == [{"name": "demo", "latest_version": 1, "published_version": None,
                                         "versions": 1}]


def test_an_edit_never_replaces_a_version_stored_meanwhile(
    run: Run, state: Path, tmp_path: Path, editor: Editor
) -> None:
    assert run("flow", "import", flow_file(tmp_path, "demo")).code == 0
    meanwhile = flow_file(tmp_path, "demo", "# someone else\n")
    editor.then(FLOW.format(name="demo") + "# mine\n",
                run=f"{shlex.quote(sys.executable)} -m ivrpowers flow import {shlex.quote(meanwhile)}")
    ran = run("flow", "edit", "demo")
    assert ran.code == 1 and len(ran.error_lines) == 1
    assert "latest version is v2, the edit started from v1; nothing stored" in ran.err
    assert run("flow", "export", "demo").out == FLOW.format(name="demo") + "# someone else\n"


def test_edit_fails_cleanly(run: Run, state: Path, tmp_path: Path, editor: Editor) -> None:
    assert run("flow", "edit", "nosuch").code == 3
    assert run("flow", "import", flow_file(tmp_path, "demo")).code == 0
    (editor.plan / "exit").write_text("3")
    editor.then(FLOW.format(name="demo") + "# changed, then the editor quit with an error\n")
    ran = run("flow", "edit", "demo")
    assert ran.code == 1 and "exited with status 3; nothing stored" in ran.err and len(ran.error_lines) == 1
    assert versions(run) == [(1, None, False)]


async def test_the_migration_rebuilds_the_publish_history(tmp_path: Path) -> None:
    """Flows published before the publish log existed can be rolled back after the upgrade."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(upgrade, url, "0003")
    flows = sa.table("flows", sa.column("name"), sa.column("version"), sa.column("source"),
                     sa.column("published"), sa.column("created_at"), sa.column("published_at"))

    def at(hour: int) -> datetime:
        return datetime(2026, 1, 1, hour, tzinfo=UTC)

    # demo: v1 live at 10, v3 at 11, v1 again at 12 (live), v2 never; draft: never published.
    rows = [("demo", 1, True, at(12)), ("demo", 2, False, None), ("demo", 3, False, at(11)), ("draft", 1, False, None)]
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    with engine.begin() as conn:
        conn.execute(sa.insert(flows), [{"name": n, "version": v, "source": f"{n} {v}", "published": live,
                                         "created_at": at(9), "published_at": when} for n, v, live, when in rows])
    engine.dispose()
    await asyncio.to_thread(upgrade, url)

    db = Database(url)
    try:
        repo = FlowRepository(db)
        history = await repo.history("demo")
        assert [(p.version, p.previous_version, p.at) for p in history.publishes] == [(1, 3, at(12)), (3, None, at(11))]
        assert (await repo.rollback("demo")).version.version == 3
        with pytest.raises(NothingToRollBack):
            await repo.rollback("demo")
        assert (await repo.history("draft")).publishes == []
    finally:
        await db.close()
