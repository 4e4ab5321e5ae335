"""Queues and agents from the CLI and from an ACD file: stored, shown, changed, refused with one
line (or FILE:LINE for a file), and a file applied twice changes nothing the second time."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest

from .cli_run import Run

ACD = dedent("""\
    # Support desk: two queues, three agents.
    queues:
      - name: sales
        strategy: round-robin
        channels: [voice, chat]
        ring_timeout: 15
        max_wait: 300
      - name: billing
        strategy: skills
        skill_relaxation:
          - {after: 30, lower_by: 2}
    agents:
      - id: ana
        name: Ana García
        endpoint: agent1
        skills: {billing: 7, spanish: 9}
        queues: {sales: 0, billing: 1}
      - id: bo
        name: Bo
        endpoint: agent2
        queues: [sales]
      - id: chatter
        name: Chat Only
        capacity: {voice: 0, video: 0, chat: 5}
        queues: [sales]
    """)


def write(tmp_path: Path, text: str, name: str = "acd.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_queue_lifecycle_with_defaults_updates_and_one_line_errors(run: Run, state: Path) -> None:
    made = run("queue", "create", "sales", "--channel", "voice", "--channel", "chat", "--json")
    assert made.code == 0, made.err
    queue = json.loads(made.out)
    assert queue["strategy"] == "longest-idle" and queue["channels"] == ["voice", "chat"]
    assert (queue["ring_timeout"], queue["wrapup_seconds"], queue["max_wait"], queue["hold"]) == (20, 10, None,
                                                                                                 "moh:default")
    assert run("queue", "update", "sales", "--strategy", "linear", "--max-wait", "120").code == 0
    shown = json.loads(run("queue", "show", "sales", "--json").out)
    assert (shown["strategy"], shown["max_wait"], shown["channels"]) == ("linear", 120, ["voice", "chat"])
    assert run("queue", "update", "sales", "--max-wait", "0").code == 0  # 0: no limit
    assert json.loads(run("queue", "show", "sales", "--json").out)["max_wait"] is None
    assert queue["chat_idle_timeout"] == 1800
    assert run("queue", "update", "sales", "--chat-idle-timeout", "300").code == 0
    assert "chat idle timeout 300s" in run("queue", "show", "sales").out
    negative = run("queue", "update", "sales", "--chat-idle-timeout", "-1")
    assert negative.error_lines == ["error: queue sales: --chat-idle-timeout -1: Input should be greater than or "
                                    "equal to 0"] and negative.code == 2
    dropped = run("queue", "update", "sales", "--channel", "chat")  # voice was one of its channels
    assert dropped.code == 0 and dropped.err == ("warning: queue sales no longer takes voice (--channel replaces the "
                                                 "queue's channels; to keep them: --channel chat --channel voice)\n")
    assert "max wait none" in run("queue", "show", "sales").out

    again = run("queue", "create", "sales")
    assert again.code == 1 and again.error_lines == ["error: queue 'sales' already exists "
                                                     "(change it with `ivrpowers queue update sales`)"]
    bad = run("queue", "create", "Bad Name")
    assert bad.code == 2 and "'Bad Name' is not a valid name" in bad.err and bad.err.count("\n") == 1
    slow = run("queue", "create", "slow", "--ring-timeout", "1")
    assert slow.code == 2 and slow.error_lines == [
        "error: queue slow: --ring-timeout 1: Input should be greater than or equal to 5"]  # the option, not the field
    relax = run("queue", "create", "x", "--relax", "30:1")
    assert relax.code == 2 and "skill_relaxation is for the 'skills' strategy" in relax.err
    assert run("queue", "show", "nope").code == 3
    assert run("queue", "delete", "sales").code == 0
    assert json.loads(run("queue", "list", "--json").out) == []


def test_agent_lifecycle_skills_queues_and_capacity(run: Run, state: Path) -> None:
    assert run("queue", "create", "sales").code == 0
    assert run("queue", "create", "billing").code == 0
    made = run("agent", "create", "ana", "--name", "Ana", "--endpoint", "agent1", "--skill", "billing=7",
               "--queue", "sales", "--queue", "billing:2", "--chat", "4", "--json")
    assert made.code == 0, made.err
    # No such endpoint yet: stored all the same (it may be made next), with a warning that says so.
    assert "warning: no endpoint 'agent1'" in made.err and "ivrpowers endpoint create agent1" in made.err
    ana = json.loads(made.out)
    assert ana["queues"] == {"sales": 0, "billing": 2} and ana["skills"] == {"billing": 7}
    assert ana["capacity"] == {"voice": 1, "video": 1, "chat": 4}
    updated = run("agent", "update", "ana", "--skill", "billing=0", "--skill", "es=9", "--leave-queue", "sales",
                  "--json")
    assert "warning" not in updated.err  # the endpoint is not what changed
    changed = json.loads(updated.out)
    assert changed["skills"] == {"es": 9} and changed["queues"] == {"billing": 2} and changed["name"] == "Ana"

    no_phone = run("agent", "create", "bo", "--name", "Bo")
    assert no_phone.code == 2 and "has no endpoint" in no_phone.err and no_phone.err.count("\n") == 1
    chat_only = run("agent", "create", "bo", "--name", "Bo", "--voice", "0", "--video", "0")
    assert chat_only.code == 0 and chat_only.err == ""
    missing = run("agent", "update", "bo", "--queue", "nowhere")
    assert missing.code == 3 and "no queue named 'nowhere'" in missing.err
    stranger = run("agent", "update", "ana", "--leave-queue", "sales")  # left already
    assert stranger.code == 3 and stranger.error_lines == [
        "error: --leave-queue sales: the agent is not in that queue (its queues: billing)"]
    too_skilled = run("agent", "update", "ana", "--skill", "es=11")
    assert too_skilled.code == 2 and too_skilled.error_lines == [
        "error: agent ana: --skill es=11: Input should be less than or equal to 10"]
    assert run("agent", "update", "ana", "--chat", "-1").error_lines == [
        "error: agent ana: --chat -1: Input should be greater than or equal to 0"]
    assert run("agent", "create", "cy", "--endpoint", "x").code == 2  # --name is required

    in_use = run("queue", "delete", "billing")
    assert in_use.code == 1 and "queue 'billing' has agents: ana" in in_use.err
    assert run("queue", "delete", "billing", "--force").code == 0
    assert json.loads(run("agent", "show", "ana", "--json").out)["queues"] == {}
    assert [a["id"] for a in json.loads(run("agent", "list", "--json").out)] == ["ana", "bo"]
    assert run("agent", "delete", "bo").code == 0 and run("agent", "delete", "bo").code == 3


def test_an_acd_file_applies_once_and_then_changes_nothing(run: Run, state: Path, tmp_path: Path) -> None:
    path = write(tmp_path, ACD)
    dry = json.loads(run("acd", "apply", path, "--dry-run", "--json").out)
    assert [(c["action"], c["kind"], c["name"]) for c in dry["changes"]] == [
        ("create", "queue", "sales"), ("create", "queue", "billing"),
        ("create", "agent", "ana"), ("create", "agent", "bo"), ("create", "agent", "chatter")]
    assert json.loads(run("queue", "list", "--json").out) == []  # a dry run stores nothing

    applied = run("acd", "apply", path)
    assert applied.code == 0 and applied.out.splitlines()[0] == "create queue sales"
    listed = {q["name"]: q for q in json.loads(run("queue", "list", "--json").out)}
    assert listed["sales"]["agents"] == ["ana", "bo", "chatter"] and listed["billing"]["agents"] == ["ana"]
    assert listed["billing"]["skill_relaxation"] == [{"after": 30, "lower_by": 2}]
    again = json.loads(run("acd", "apply", path, "--json").out)
    assert {c["action"] for c in again["changes"]} == {"unchanged"}

    chatter = "  - id: chatter\n    name: Chat Only\n    capacity: {voice: 0, video: 0, chat: 5}\n    queues: [sales]\n"
    assert chatter in ACD
    edited = write(tmp_path, ACD.replace("ring_timeout: 15", "ring_timeout: 25").replace(chatter, ""), "edited.yaml")
    changes = json.loads(run("acd", "apply", edited, "--prune", "--json").out)["changes"]
    assert [(c["action"], c["name"], c["fields"]) for c in changes if c["action"] != "unchanged"] == [
        ("update", "sales", ["ring_timeout"]), ("delete", "chatter", [])]
    assert [a["id"] for a in json.loads(run("agent", "list", "--json").out)] == ["ana", "bo"]


def test_an_acd_file_with_mistakes_says_where_and_stores_nothing(run: Run, state: Path, tmp_path: Path) -> None:
    broken = ACD.replace("ring_timeout: 15", "ring_timeout: fifteen").replace(
        "queues: [sales]\n  - id: chatter", "queues: [sales, nowhere]\n  - id: chatter")
    broken += "  - id: ana\n    name: Again\n    endpoint: agent3\n"
    path = write(tmp_path, broken)
    ran = run("acd", "apply", path)
    lines = ran.err.splitlines()
    assert ran.code == 1 and lines[-1] == f"error: {path}: 1 problem(s), nothing applied"
    # One problem at a time: validation of the fields comes before whole-file checks.
    assert lines[0] == f"{path}:6: queues.0.ring_timeout: Input should be a valid integer, got a string ('fifteen')"
    fixed = write(tmp_path, broken.replace("ring_timeout: fifteen", "ring_timeout: 15"), "fixed.yaml")
    ran = run("acd", "apply", fixed)
    assert ran.err.splitlines()[:2] == [f"{fixed}:21: agents.1.queues.nowhere: no queue named 'nowhere'",
                                        f"{fixed}:26: agents.3: agent 'ana' is defined twice"]
    assert json.loads(run("queue", "list", "--json").out) == []
    assert run("acd", "apply", str(tmp_path / "none.yaml")).code == 1


def test_agent_actions_need_the_running_controller_and_say_so(run: Run, state: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVRPOWERS_WEB_PORT", "1")  # nothing listens there
    for args in (("login", "ana"), ("pause", "ana", "--reason", "lunch"), ("state", "ana")):
        ran = run("agent", *args)
        assert ran.code == 4 and ran.error_lines and "the controller does not answer" in ran.err, ran.err
        assert "make run" in ran.err and ran.err.count("\n") == 1
    no_reason = run("agent", "pause", "ana", "--reason", " ")  # a usage error, found before asking anyone
    assert no_reason.code == 2 and "--reason cannot be empty" in no_reason.err and no_reason.err.count("\n") == 1
    # Changing definitions without a controller is fine: it reads them when it starts.
    assert run("queue", "create", "sales").code == 0
