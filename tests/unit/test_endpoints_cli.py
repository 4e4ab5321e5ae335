"""`ivrpowers endpoint ...` through the CLI's real entry point, without an Asterisk: names checked at the
edge, one-line errors with the conventions' exit codes, the password shown once and only its digest
stored, --json shapes, and what each command says when Asterisk does not answer. (With Asterisk:
tests/integration/test_endpoints.py.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ivrpowers.endpoints.accounts import password_digest
from ivrpowers.endpoints.fields import REALM

from .cli_run import Run


@pytest.fixture(autouse=True)
def no_asterisk(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens there: never a real Asterisk's ARI (a developer's `make run` on 8088).
    monkeypatch.setenv("IVRPOWERS_ARI_URL", "http://127.0.0.1:1/ari")


def rows(state: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(state / "ivrpowers.db") as db:
        return db.execute("SELECT name, kind, realm, password_digest FROM endpoints ORDER BY name").fetchall()


def test_create_shows_the_password_once_and_keeps_only_its_digest(run: Run, state: Path) -> None:
    ran = run("endpoint", "create", "ana")
    assert ran.code == 0, ran.err
    password = ran.out.split("password ", 1)[1].split()[0]
    assert "ana: SIP phone created; user name ana" in ran.out and "sip:127.0.0.1:5060" in ran.out
    # Asterisk did not answer: said in one line, and what happens next.
    assert ran.err.count("\n") == 1 and ran.err.startswith("warning: Asterisk does not answer")
    assert "the controller gives it to Asterisk when it next connects" in ran.err
    assert rows(state) == [("ana", "phone", REALM, password_digest("ana", REALM, password))]
    assert password.encode() not in (state / "ivrpowers.db").read_bytes()

    created = json.loads(run("endpoint", "create", "bob", "--webrtc", "--json").out)
    assert set(created) == {"name", "kind", "created", "username", "password", "realm", "server", "pushed"}
    assert (created["name"], created["kind"], created["username"], created["pushed"]) == ("bob", "webrtc", "bob", False)
    assert created["server"] == "ws://127.0.0.1:8088/ws" and created["password"] != password
    assert rows(state)[1][3] == password_digest("bob", REALM, created["password"])


@pytest.mark.parametrize("name", ["Ana", "ana.b", "_x", "a" * 33, "ana@host"])
def test_a_name_that_cannot_be_is_a_usage_error(run: Run, state: Path, name: str) -> None:
    for args in (["endpoint", "create", name], ["endpoint", "delete", name]):
        ran = run(*args)
        assert ran.code == 2 and ran.error_lines == [ran.err.strip()] and "lower-case letters" in ran.err
    assert rows(state) == []


@pytest.mark.parametrize("name", ["agent1", "webrtc1", "trunk", "transport-udp", "agent-phone"])
def test_names_of_pjsip_conf_are_refused(run: Run, state: Path, name: str) -> None:
    ran = run("endpoint", "create", name)
    assert ran.code == 1 and ran.error_lines == [ran.err.strip()] and "choose another name" in ran.err
    assert rows(state) == []


def test_the_configured_outbound_trunk_is_taken_too(run: Run, state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVRPOWERS_OUTBOUND_TRUNK", "provider")
    assert run("endpoint", "create", "provider").code == 1


def test_an_endpoint_is_created_once(run: Run, state: Path) -> None:
    assert run("endpoint", "create", "ana").code == 0
    ran = run("endpoint", "create", "ana", "--webrtc")
    assert ran.code == 1 and ran.error_lines == [ran.err.strip()]
    assert "already an endpoint named 'ana'" in ran.err and "endpoint list" in ran.err
    assert [r[:2] for r in rows(state)] == [("ana", "phone")]


def test_list_says_what_it_knows_when_asterisk_does_not_answer(run: Run, state: Path) -> None:
    ran = run("endpoint", "list", "--json")
    assert (ran.code, json.loads(ran.out)) == (0, [])
    assert run("endpoint", "create", "bob", "--webrtc").code == 0
    assert run("endpoint", "create", "ana").code == 0
    ran = run("endpoint", "list", "--json")
    listed = json.loads(ran.out)
    assert ran.code == 0 and [e["name"] for e in listed] == ["ana", "bob"]
    assert set(listed[0]) == {"name", "kind", "created", "in_asterisk", "state", "registered", "contacts"}
    assert [(e["kind"], e["in_asterisk"], e["state"], e["registered"], e["contacts"]) for e in listed] == [
        ("phone", None, None, None, None), ("webrtc", None, None, None, None)]
    assert ran.err.startswith("warning: Asterisk does not answer") and ran.err.count("\n") == 1
    text = run("endpoint", "list").out.splitlines()
    assert text[0].split() == ["NAME", "KIND", "CREATED", "(UTC)", "STATE", "CONTACTS"]
    assert text[1].split()[:2] == ["ana", "phone"] and text[1].split()[-2:] == ["?", "-"]


def test_delete_removes_it_from_the_database_and_says_asterisk_will_follow(run: Run, state: Path) -> None:
    assert run("endpoint", "create", "ana").code == 0
    ran = run("endpoint", "delete", "ana", "--json")
    assert ran.code == 0 and json.loads(ran.out) == {"name": "ana", "kind": "phone", "removed_from_asterisk": None}
    assert "the controller removes ana from it when it next connects" in ran.err and ran.err.count("\n") == 1
    assert rows(state) == []
    ran = run("endpoint", "delete", "ana")
    assert ran.code == 3 and ran.error_lines == [ran.err.strip()]
    assert ran.err.strip() == "error: no endpoint named 'ana' (see `ivrpowers endpoint list`)"


def test_without_an_installation_nothing_is_generated(run: Run, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVRPOWERS_STATE_DIR", str(tmp_path / "nowhere"))
    for args in (["endpoint", "create", "ana"], ["endpoint", "list"], ["endpoint", "delete", "ana"]):
        ran = run(*args)
        assert ran.code == 4 and ran.error_lines == [ran.err.strip()] and "db upgrade" in ran.err
        assert "password" not in ran.out


async def test_the_migration_makes_the_endpoints_table_and_takes_it_away(tmp_path: Path) -> None:
    import asyncio

    from ivrpowers.store.migrate import alembic_config, upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await asyncio.to_thread(upgrade, url, "0005")
    with sqlite3.connect(tmp_path / "m.db") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(endpoints)")]
    assert columns == ["name", "kind", "realm", "password_digest", "created_at"]

    from alembic import command

    await asyncio.to_thread(command.downgrade, alembic_config(url), "0004")
    with sqlite3.connect(tmp_path / "m.db") as db:
        assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'endpoints'").fetchall()
