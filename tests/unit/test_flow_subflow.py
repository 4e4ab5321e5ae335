"""`subflow`: another flow run with the call's variables, its version pinned, and a way back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

from ivrpowers.flows import Flow, RunState, Services, load_flow, resume_state, run_flow
from ivrpowers.flows.simulate import simulate
from ivrpowers.flows.testing import FakeClock, FakeFlows, ListJournal, Press, ScriptedCall, Silence

from .cli_run import Run


def flow(text: str) -> Flow:
    return load_flow(dedent(text).lstrip("\n"))


MAIN = flow("""
    name: main
    start: ask
    nodes:
      ask: {type: subflow, flow: identify, next: greet}
      greet: {type: play, media: ["sound:hello-{{ vars.who }}"], next: again}
      again: {type: subflow, flow: identify, next: bye}
      bye: {type: hangup}
    """)
IDENTIFY_V1 = flow("""
    name: identify
    start: g
    nodes:
      g: {type: gather, prompt: sound:id, var: who, next: done, on_timeout: nobody, retries: 0}
      done: {type: set, vars: {seen: "vars.seen + 1"}}
      nobody: {type: hangup}
    """)
IDENTIFY_V2 = flow("""
    name: identify
    start: x
    nodes:
      x: {type: play, media: sound:version-two}
    """)


async def run(main: Flow, flows: FakeFlows, script: list, state=None):  # type: ignore[no-untyped-def]
    call, journal = ScriptedCall(script), ListJournal()
    services = Services(clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)), flows=flows)
    result = await run_flow(main, call, journal, services=services, state=state)
    return result, journal, call


async def test_a_subflow_shares_variables_and_returns_to_next() -> None:
    flows = FakeFlows(IDENTIFY_V1)
    result, journal, call = await run(MAIN, flows, [Press("4"), Press("2"), Press("#"), Press("9"), Press("#")],
                                      state=RunState(vars={"seen": 0}))
    assert result.outcome == "hangup_by_flow" and result.last_node == "bye"
    assert result.state.vars == {"seen": 2, "who": "9"}
    assert ("play", ["sound:hello-42"], True) in call.actions
    entered = [(e.node, e.detail.get("flow")) for e in journal.of_type("node_entered")]
    assert entered == [("ask", None), ("g", "identify"), ("done", "identify"), ("greet", None), ("again", None),
                       ("g", "identify"), ("done", "identify"), ("bye", None)]
    left = journal.of_type("subflow_left")[0].detail
    assert (left["flow"], left["next"], left["state"]) == ("identify", "greet", {"stack": []})


async def test_an_expression_error_in_a_subflow_names_it() -> None:
    flows = FakeFlows(IDENTIFY_V1)
    result, _, _ = await run(MAIN, flows, [Press("1"), Press("#")])
    # vars.seen is unset the first time: null + 1 fails, naming the node of the subflow.
    assert result.outcome == "error" and "node 'done'" in (result.error or "")


async def test_a_hangup_node_in_a_subflow_hangs_up() -> None:
    result, journal, call = await run(MAIN, FakeFlows(IDENTIFY_V1), [Silence()])
    assert result.outcome == "hangup_by_flow" and call.hung_up_by == "flow"
    assert "subflow_left" not in journal.types()


async def test_the_call_keeps_the_subflow_version_it_first_entered() -> None:
    flows = FakeFlows(IDENTIFY_V1.model_copy(update={"nodes": {**IDENTIFY_V1.nodes, "done": IDENTIFY_V2.nodes["x"]}}))
    call, journal = ScriptedCall([Press("7"), Press("#")]), ListJournal()
    services = Services(clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)), flows=flows)

    class PublishMidCall:
        """Publishes v2 while the caller is in the main flow, between the two subflow visits."""

        async def record(self, type: str, node: str | None = None, detail: dict | None = None) -> None:  # type: ignore[type-arg]
            await journal.record(type, node, detail)
            if type == "node_entered" and node == "greet":
                flows.publish(IDENTIFY_V2)

    result = await run_flow(MAIN, call, PublishMidCall(), services=services)
    assert [e.detail["version"] for e in journal.of_type("subflow_entered")] == [1, 1]
    assert result.state.pinned == {"identify": 1}
    fresh = await simulate(MAIN, flows=flows, dtmf="")
    assert fresh.prompts[0] == "sound:version-two"  # a new call takes the version live now


async def test_an_adopted_call_resumes_inside_the_subflow_with_its_stack() -> None:
    flows = FakeFlows(IDENTIFY_V1)
    _, journal, _ = await run(MAIN, flows, [Press("5")])
    cut = journal.types().index("dtmf_received") + 1
    state = resume_state(journal.entries[:cut])
    assert state is not None and state.node == "g" and state.stack[-1]["flow"] == "identify"
    flows.publish(IDENTIFY_V2)  # must not matter: the call pinned v1
    result, journal2, _ = await run(MAIN, flows, [Press("6"), Press("#"), Press("1"), Press("#")], state=state)
    assert result.outcome == "error"  # `done` fails on vars.seen (null + 1): but in v1, inside the subflow
    assert journal2.of_type("node_entered")[0].detail.get("flow") == "identify"
    assert result.state.vars["who"] == "56"


async def test_a_subflow_cycle_and_a_missing_subflow_end_the_run_with_an_error() -> None:
    loop = flow("""
    name: identify
    start: back
    nodes:
      back: {type: subflow, flow: main}
    """)
    result, _, _ = await run(MAIN, FakeFlows(loop, MAIN), [])
    assert result.outcome == "error" and "subflow cycle: main -> identify -> main" in (result.error or "")
    result, _, _ = await run(MAIN, FakeFlows(), [])
    assert result.outcome == "error" and "no published flow 'identify'" in (result.error or "")


def test_simulate_finds_subflows_beside_the_file(run: Run, tmp_path: Path) -> None:
    (tmp_path / "identify.yaml").write_text(dedent("""
        name: identify
        start: g
        nodes:
          g: {type: gather, var: who, next: done}
          done: {type: set, vars: {seen: 1}}
        """))
    main = tmp_path / "main.yaml"
    main.write_text("name: main\nstart: s\nnodes:\n  s: {type: subflow, flow: identify, next: p}\n"
                    "  p: {type: say, digits: vars.who}\n")
    ran = run("flow", "simulate", str(main), "--dtmf", "123#", "--json")
    assert ran.code == 0, ran.err
    assert '"digits:123"' in ran.out
