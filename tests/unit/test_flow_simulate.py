"""`flow simulate`: the real interpreter, a scripted caller and a simulated clock, from the CLI."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from textwrap import dedent
from zoneinfo import ZoneInfo

from ivrpowers.flows import load_flow
from ivrpowers.flows.simulate import simulate

from .cli_run import Run

FLOW = dedent("""
    name: hours
    timezone: America/New_York
    calendars:
      desk: {hours: {mon-fri: "09:00-17:00"}}
    start: check
    nodes:
      check:
        type: branch
        cases: [{when: "open('desk')", next: ask}]
        default: closed
      ask:
        type: gather
        prompt: sound:enter-account
        var: account
        min_digits: 3
        retries: 1
        next: tier
        on_timeout: closed
        on_invalid: closed
      tier:
        type: set
        vars: {gold: "vars.account in ['111', '222'] or vars.vip == true"}
        next: route
      route:
        type: menu
        prompt: ["sound:{{ now.time }}"]
        options: {"1": bye}
        timeout: 60
      bye: {type: hangup}
      closed: {type: play, media: sound:closed}
    """)


async def test_the_path_prompts_vars_and_end_of_a_simulated_call() -> None:
    at = datetime(2026, 12, 7, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    result = await simulate(load_flow(FLOW), dtmf="111#1", at=at)
    assert result.path == ["check", "ask", "tier", "route", "bye"]
    assert result.prompts == ["sound:enter-account", "sound:10:00"]
    assert result.vars == {"account": "111", "gold": True}
    assert result.end == "hangup"


async def test_a_timeout_moves_the_simulated_clock_not_the_real_one() -> None:
    at = datetime(2026, 12, 7, 10, 0)  # naive: in the flow's time zone
    result = await simulate(load_flow(FLOW), dtmf="222#,1", at=at)
    # The menu's first wait timed out: 60 s later, its prompt says the time again.
    assert result.prompts == ["sound:enter-account", "sound:10:00", "sound:10:01"]
    assert result.end == "hangup"


async def test_when_the_digits_run_out_the_caller_hangs_up() -> None:
    result = await simulate(load_flow(FLOW), dtmf=",", at=datetime(2026, 12, 7, 10, 0))
    assert result.path == ["check", "ask"] and result.end == "caller_hangup"
    closed = await simulate(load_flow(FLOW), at=datetime(2026, 12, 5, 10, 0))  # a Saturday
    assert closed.path == ["check", "closed"] and closed.prompts == ["sound:closed"]


def test_the_cli_prints_the_documented_json(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "hours.yaml"
    path.write_text(FLOW)
    ran = run("flow", "simulate", str(path), "--dtmf", "333#1", "--var", "vip=true", "--at", "2026-12-07T16:59",
              "--json")
    assert ran.code == 0, ran.err
    out = json.loads(ran.out)
    assert set(out) >= {"path", "prompts", "vars", "end", "events"}
    assert out["vars"] == {"vip": True, "account": "333", "gold": True}
    assert out["path"][-1] == "bye" and out["end"] == "hangup"
    assert {"type": "gather_completed", "node": "ask", "detail": {"var": "account", "length": 3}} in out["events"]


def test_the_cli_refuses_bad_input_in_one_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "hours.yaml"
    path.write_text(FLOW)
    assert run("flow", "simulate", str(path), "--dtmf", "12x").code == 2
    assert run("flow", "simulate", str(path), "--at", "tomorrow").code == 2
    assert run("flow", "simulate", str(path), "--var", "novalue").code == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text(FLOW.replace("var: account", "var: 9account"))
    ran = run("flow", "simulate", str(broken))
    line = broken.read_text().splitlines().index("    var: 9account") + 1
    assert ran.code == 1 and ran.err.startswith(f"{broken}:{line}: nodes.ask.var: '9account' is not a variable name")
    assert ran.err.count("\n") == 2  # the problem, then the one-line error


async def test_record_and_transfer_nodes_have_simulated_services() -> None:
    flow = load_flow(dedent("""
        name: vm
        start: t
        nodes:
          t: {type: transfer, to: endpoint:agent1, timeout: 5, on_no_answer: vm}
          vm: {type: record, var: msg, next: back}
          back: {type: play, media: ["recording:{{ vars.msg }}"]}
        """))
    answered = await simulate(flow)
    assert answered.end == "transfer" and answered.path == ["t"]
    missed = await simulate(flow, transfer="no_answer")
    assert missed.path == ["t", "vm", "back"] and missed.vars == {"msg": "simulated-vm-1"}
    assert missed.prompts == ["recording:simulated-vm-1"] and missed.end == "hangup"


async def test_queue_nodes_end_the_way_the_simulation_says() -> None:
    flow = load_flow(dedent("""
        name: q
        start: q
        nodes:
          q: {type: queue, queue: sales, leave_digit: "0", max_wait: 90, next: survey, on_timeout: vm,
              on_leave: menu, on_no_agents: vm}
          survey: {type: play, media: sound:thanks}
          vm: {type: play, media: sound:vm-intro}
          menu: {type: play, media: sound:menu}
        """))
    at = datetime(2026, 12, 7, 10, 0)
    assert (await simulate(flow, at=at)).path == ["q", "survey"]
    assert (await simulate(flow, at=at, queue="no_agents")).path == ["q", "vm"]
    assert (await simulate(flow, at=at, queue="timeout")).path == ["q", "vm"]
    left = await simulate(flow, at=at, queue="wait", dtmf=",0")
    assert left.path == ["q", "menu"] and left.prompts[-1] == "sound:menu"
    waited = await simulate(flow, at=at, queue="wait", dtmf=",,,,")
    assert waited.path == ["q", "vm"]
    assert [e["detail"]["wait"] for e in waited.events if e["type"] == "queue_announced"] == [30, 60]
