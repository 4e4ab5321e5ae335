"""The CLI's conventions, through its real entry point: where the installation is, one-line errors with
exit codes by kind, input checked at the edge, the same call lookups as the API, and --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .cli_run import Run

FLOW = "name: {name}\nstart: bye\nnodes:\n  bye: {{type: hangup}}\n"


def flow_file(tmp_path: Path, name: str, extra: str = "") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(FLOW.format(name=name) + extra)
    return str(path)


def test_a_missing_installation_is_one_line_with_where_it_looked_and_the_fix(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVRPOWERS_STATE_DIR", str(tmp_path / "nowhere"))
    ran = run("cdr", "list")
    assert ran.code == 4
    assert ran.err.count("\n") == 1 and ran.error_lines == [ran.err.strip()]
    assert str(tmp_path / "nowhere") in ran.err and "IVRPOWERS_STATE_DIR" in ran.err
    assert "db upgrade" in ran.err and "Traceback" not in ran.err


def test_the_default_installation_is_found_from_any_directory(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert run("db", "upgrade", "--json").code == 0
    made = tmp_path / "home" / ".local" / "state" / "ivrpowers"
    assert (made / "ivrpowers.db").exists()
    monkeypatch.chdir(tmp_path / "b")
    ran = run("cdr", "list", "--json")
    assert (ran.code, json.loads(ran.out)) == (0, [])


def test_the_user_config_file_names_the_state_directory(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "home" / ".config" / "ivrpowers" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'state_dir = "{tmp_path / "elsewhere"}"\n')
    assert run("db", "upgrade").code == 0
    assert (tmp_path / "elsewhere" / "ivrpowers.db").exists()
    ran = run("--state-dir", str(tmp_path / "given"), "route", "list")  # an explicit one wins
    assert ran.code == 4 and str(tmp_path / "given") in ran.err and "--state-dir" in ran.err
    config.write_text("state_dir = [\n")
    ran = run("route", "list")
    assert ran.code == 2 and len(ran.error_lines) == 1 and str(config) in ran.err


@pytest.mark.parametrize("number", ["abc", "", "12-34", "+34 600", "1+2", "1" * 33])
def test_a_number_no_caller_can_dial_is_refused(run: Run, state: Path, tmp_path: Path, number: str) -> None:
    assert run("flow", "import", flow_file(tmp_path, "sales"), "--publish").code == 0
    ran = run("route", "set", number, "sales")
    assert ran.code == 2 and len(ran.error_lines) == 1 and "digits" in ran.err
    assert json.loads(run("route", "list", "--json").out) == []


def test_routes_to_missing_or_unpublished_flows(run: Run, state: Path, tmp_path: Path) -> None:
    ran = run("route", "set", "200", "nosuch")
    assert ran.code == 3 and "no flow named 'nosuch'" in ran.err and "flow import" in ran.err
    assert run("flow", "import", flow_file(tmp_path, "draft")).code == 0
    ran = run("route", "set", "200", "draft")
    assert ran.code == 1 and "no published version" in ran.err and "--force" in ran.err
    ran = run("route", "set", "200", "draft", "--force")
    assert ran.code == 0 and "refused as unrouted" in ran.err  # said, not silent
    assert json.loads(run("route", "list", "--json").out) == [
        {"number": "200", "flow": "draft", "published_version": None}]
    assert run("flow", "import", flow_file(tmp_path, "sales"), "--publish").code == 0
    ran = run("route", "set", "+34600*1#", "sales")
    assert ran.code == 0 and ran.out.strip() == "+34600*1# -> sales (new route)"
    ran = run("route", "set", "200", "sales")
    assert ran.code == 0 and "(was draft)" in ran.out and ran.err == ""
    ran = run("route", "delete", "999")
    assert ran.code == 3 and len(ran.error_lines) == 1
    ran = run("route", "delete", "200", "--json")
    assert (ran.code, json.loads(ran.out)) == (0, {"number": "200", "flow": "sales"})


def test_reimporting_an_unchanged_flow_makes_no_version_and_says_what_is_live(
    run: Run, state: Path, tmp_path: Path
) -> None:
    path = flow_file(tmp_path, "demo")
    assert "demo v1 imported" in run("flow", "import", path).out
    ran = run("flow", "import", path)
    assert "unchanged" in ran.out and "no version is live" in ran.out
    ran = run("flow", "import", path, "--publish")
    assert ran.out.strip() == "demo unchanged: same as v1, no new version; v1 is live now"
    ran = run("flow", "import", path, "--publish", "--json")
    assert json.loads(ran.out) == {"name": "demo", "version": 1, "published": True, "created": False,
                                   "live_version": 1, "previous_live_version": 1}
    path = flow_file(tmp_path, "demo", "# v2\n")
    assert "v1 is still the live one" in run("flow", "import", path).out
    assert run("flow", "import", path, "--publish").out.strip().endswith("v2 is live now (was v1)")
    flows = json.loads(run("flow", "list", "--json").out)
    assert flows == [{"name": "demo", "latest_version": 2, "published_version": 2, "versions": 2}]


def test_calls_are_found_by_id_or_a_long_enough_unique_start(run: Run, state: Path) -> None:
    import asyncio

    from ivrpowers.store.cdrs import CdrRepository
    from ivrpowers.store.db import Database

    async def seed() -> None:
        db = Database(f"sqlite+aiosqlite:///{state / 'ivrpowers.db'}")
        repo = CdrRepository(db)
        for call_id in ("22aa1111", "22ab2222", "33cc3333"):
            await repo.start(id=call_id, channel_id=f"ch-{call_id}", started_at=datetime(2026, 1, 1, tzinfo=UTC))
        await db.close()

    asyncio.run(seed())
    ran = run("cdr", "show", "22")
    assert ran.code == 2 and "at least 4 characters" in ran.err
    ran = run("cdr", "show", "22a")
    assert ran.code == 2 and "at least 4" in ran.err
    ran = run("cdr", "show", "22aa")
    assert ran.code == 0 and "22aa1111" in ran.out
    assert run("cdr", "show", "22a", "--json").code == 2
    ran = run("cdr", "show", "22aX")
    assert ran.code == 3 and len(ran.error_lines) == 1
    assert json.loads(run("cdr", "show", "33cc3333", "--json").out)["id"] == "33cc3333"
    for limit in ("0", "-1", "1001", "x"):
        ran = run("cdr", "list", "--limit", limit)
        assert ran.code == 2 and len(ran.error_lines) == 1 and "Usage" not in ran.err


def test_an_ambiguous_start_names_the_candidates(run: Run, state: Path) -> None:
    import asyncio

    from ivrpowers.store.cdrs import CdrRepository
    from ivrpowers.store.db import Database

    async def seed() -> None:
        db = Database(f"sqlite+aiosqlite:///{state / 'ivrpowers.db'}")
        for call_id in ("abcd1111", "abcd2222"):
            await CdrRepository(db).start(id=call_id, channel_id=call_id, started_at=datetime.now(UTC))
        await db.close()

    asyncio.run(seed())
    ran = run("cdr", "show", "abcd")
    assert ran.code == 2 and "did you mean" in ran.err and "abcd1111" in ran.err and "abcd2222" in ran.err


def test_usage_errors_are_one_line_with_where_to_look(run: Run, state: Path, tmp_path: Path) -> None:
    for args in (["nosuch"], ["route", "set"], ["cdr", "list", "--bogus"], ["flow", "publish", "x", "--version", "0"],
                 ["flow", "import", str(tmp_path / "missing.yaml")]):
        ran = run(*args)
        assert ran.code == 2, args
        assert ran.err.count("\n") == 1 and ran.err.startswith("error: ") and "--help" in ran.err, ran.err


def test_missing_flows_and_versions_are_not_found(run: Run, state: Path, tmp_path: Path) -> None:
    assert run("flow", "import", flow_file(tmp_path, "sales")).code == 0
    for args in (["flow", "show", "nosuch"], ["flow", "publish", "nosuch"],
                 ["flow", "show", "sales", "--version", "9"]):
        ran = run(*args)
        assert ran.code == 3 and len(ran.error_lines) == 1 and "flow list" in ran.err, (args, ran.err)


def test_an_unforeseen_error_is_one_line_and_the_traceback_needs_debug(
    run: Run, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivrpowers.store.routes import RouteRepository

    async def broken(self: RouteRepository) -> list[object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(RouteRepository, "all", broken)
    ran = run("route", "list")
    assert ran.code == 1
    assert ran.err.strip() == "error: unexpected RuntimeError: disk on fire (run with --debug for the traceback)"
    ran = run("--debug", "route", "list")
    assert ran.code == 1 and "Traceback" in ran.err and "disk on fire" in ran.error_lines[0]


def test_a_schema_behind_the_code_says_to_upgrade(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    state = tmp_path / "old"
    state.mkdir()
    sqlite3.connect(state / "ivrpowers.db").close()  # a database file with no schema at all
    monkeypatch.setenv("IVRPOWERS_STATE_DIR", str(state))
    ran = run("flow", "list")
    assert ran.code == 4 and "ivrpowers db upgrade" in ran.err and len(ran.error_lines) == 1


def test_asterisk_commands_without_asterisk_fail_fast_in_one_line(run: Run, state: Path) -> None:
    ran = run("asterisk", "status", "--json")
    assert ran.code == 4 and json.loads(ran.out) == {"running": False, "pid": None, "version": None,
                                                     "ari_ready": False}
    ran = run("asterisk", "cli", "core", "show", "version")
    assert ran.code == 4 and ran.err.strip() == ("error: Asterisk is not running "
                                                 "(start it: `ivrpowers asterisk start`)")
    ran = run("asterisk", "contacts")
    assert ran.code == 4 and len(ran.error_lines) == 1 and ran.err.count("\n") == 1


def test_every_data_command_speaks_json_with_its_documented_keys(run: Run, state: Path, tmp_path: Path) -> None:
    def data(*args: str) -> object:
        ran = run(*args, "--json")
        assert ran.code == 0, (args, ran.err)
        return json.loads(ran.out)

    good, bad = flow_file(tmp_path, "sales"), tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstart: nowhere\nnodes: {}\n")
    ran = run("flow", "validate", good, str(bad), "--json")
    checked = json.loads(ran.out)
    assert ran.code == 1 and [c["ok"] for c in checked] == [True, False]
    assert set(checked[1]["problems"][0]) == {"file", "line", "severity", "message"}
    assert {"errors", "warnings"} <= set(checked[1])
    imported = data("flow", "import", good, "--publish")
    assert set(imported) >= {"name", "version", "published", "created", "live_version", "previous_live_version"}
    assert set(data("flow", "publish", "sales")) >= {"name", "version", "published", "live_version",  # type: ignore[arg-type]
                                                     "previous_live_version"}
    assert set(data("flow", "list")[0]) >= {"name", "latest_version", "published_version", "versions"}  # type: ignore[index]
    assert set(data("flow", "show", "sales")) >= {"name", "version", "published", "source"}  # type: ignore[arg-type]
    assert set(data("route", "set", "300", "sales")) >= {"number", "flow", "previous_flow",  # type: ignore[arg-type]
                                                          "published_version"}
    assert set(data("route", "list")[0]) >= {"number", "flow", "published_version"}  # type: ignore[index]
    assert data("cdr", "list") == []
    assert set(data("db", "upgrade")) >= {"revision", "state_dir"}  # type: ignore[arg-type]
    assert set(data("route", "delete", "300")) >= {"number", "flow"}  # type: ignore[arg-type]
    assert data("asterisk", "stop") == {"was_running": False}
