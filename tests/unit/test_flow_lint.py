"""Flow lint (each rule on a file written to break it, at the line to edit), linear-time
validation (asserted on work done, never on time), and hostile input: aliases, nesting, size."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from textwrap import dedent
from types import FrameType
from typing import Any, ClassVar, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.flows import dangling_flow, valid_flow
from ivrpowers.flows import NODE_TYPES, FlowError, check_flow, load_flow, load_flow_file
from ivrpowers.flows import schema as schema_module
from ivrpowers.flows.lint import WAITING_TYPES, Finding, lint, sound_inventory
from ivrpowers.flows.loader import Problem, read_flow_file, validate_flow
from ivrpowers.flows.schema import BaseNode, Flow, NodeRef, graph_issues
from ivrpowers.yamlfile import reader as yaml_reader

DEMO = Path(__file__).resolve().parents[2] / "ivrpowers" / "demo" / "demo.yaml"


def doc(text: str) -> str:
    return dedent(text).lstrip("\n")


def found(text: str, sounds: set[str] | None = None) -> list[str]:
    return [str(p) for p in validate_flow(doc(text), "f.yaml", sounds=sounds)]


# -- the rules, one file each ---------------------------------------------------------------------


def test_a_clean_flow_has_no_findings() -> None:
    assert validate_flow(DEMO.read_text(), "demo.yaml") == []
    assert lint(load_flow(valid_flow(60))) == []


def test_unreachable_node_is_a_warning_at_its_line() -> None:
    assert found(
        """
        name: t
        start: a
        nodes:
          a: {type: hangup}
          lost:
            type: hangup
        """
    ) == ["f.yaml:5: warning: node 'lost' is never reached from start 'a'"]


def test_node_that_cannot_reach_an_end_is_an_error() -> None:
    # m and p only lead to each other: a caller there can never leave.
    assert found(
        """
        name: t
        start: a
        nodes:
          a:
            type: answer
            next: m
          m:
            type: menu
            options: {"1": p}
            on_invalid: p
            on_timeout: p
          p: {type: play, media: sound:beep, next: m}
        """
    ) == [
        "f.yaml:4: node 'a': no path from here ends the call (no hangup, no empty transition), "
        "so a caller who gets here can never leave",
        "f.yaml:7: node 'm': no path from here ends the call (no hangup, no empty transition), "
        "so a caller who gets here can never leave",
        "f.yaml:12: node 'p': no path from here ends the call (no hangup, no empty transition), "
        "so a caller who gets here can never leave",
    ]


def test_empty_transitions_and_hangups_are_ends() -> None:
    # The menu's on_invalid is empty (the flow ends there); the play's `next` too.
    assert found(
        """
        name: t
        start: m
        nodes:
          m: {type: menu, options: {"1": p}, on_timeout: m}
          p: {type: play, media: sound:beep}
        """
    ) == []


def test_a_handing_off_node_type_is_an_end() -> None:
    class HandOff(BaseNode):
        type: Literal["handoff"]
        ends_run: ClassVar[bool] = True
        on_failure: NodeRef | None = None

    # Built without validation: the union of node types is schema.py's; lint only needs the classes.
    nodes: dict[str, Any] = {
        "h": HandOff(type="handoff", on_failure="m"),
        "m": NODE_TYPES["menu"].model_validate({"type": "menu", "options": {"1": "h"}, "on_invalid": "h",
                                                "on_timeout": "h"}),
    }
    flow = Flow.model_construct(name="t", start="m", nodes=nodes)
    assert lint(flow) == []
    HandOff.ends_run = False
    assert [f.severity for f in lint(flow)] == ["error", "error"]


def test_loop_that_never_waits_is_an_error_at_its_first_node() -> None:
    problems = found(
        """
        name: t
        start: a
        nodes:
          a: {type: answer, next: count}
          count:
            type: set
            vars: {n: "vars.n + 1"}
            next: check
          check:
            type: branch
            cases:
              - {when: "vars.n > 1000000", next: bye}
            default: count
          bye: {type: hangup}
        """
    )
    assert problems[0] == (
        "f.yaml:5: node 'count' is on a loop that never waits for the caller (count -> check -> count): "
        "no " + ", ".join(sorted(WAITING_TYPES & NODE_TYPES.keys())) + " node on it, so a call would spin "
        "there until the step limit"
    )
    assert len([p for p in problems if "never waits" in p]) == 1  # one loop, one error


def test_a_self_loop_is_a_busy_loop_and_a_loop_through_a_menu_is_not() -> None:
    flow = load_flow(doc(
        """
        name: t
        start: s
        nodes:
          s: {type: set, vars: {x: 1}, next: m}
          m: {type: menu, options: {"1": s, "2": spin}}
          spin: {type: branch, cases: [{when: "true", next: spin}]}
        """
    ))
    loops = [f for f in lint(flow) if "never waits" in f.message]
    assert [(f.loc, f.severity) for f in loops] == [(("nodes", "spin"), "error")]
    assert "(spin -> spin)" in loops[0].message


def test_variable_set_on_some_paths_only() -> None:
    assert found(
        """
        name: t
        start: m
        nodes:
          m:
            type: menu
            options: {"1": gold, "2": say}
          gold:
            type: set
            vars: {tier: "'gold'"}
            next: say
          say:
            type: play
            media: ["digits:{{ vars.tier }}", "digits:{{ vars.tier }}"]
        """
    ) == ["f.yaml:13: warning: node 'say' reads vars.tier, which is not set on every path from start to here"]


def test_variable_that_nothing_sets_and_reads_in_every_kind_of_field() -> None:
    assert found(
        """
        name: t
        start: b
        nodes:
          b:
            type: branch
            cases:
              - when: vars.vip
                next: h
            default: h
          h:
            type: http
            url: "https://x.example/{{ vars.account }}"
            next: end
          end: {type: hangup}
        """
    ) == [
        "f.yaml:7: warning: node 'b' reads vars.vip, which nothing in this flow sets",
        "f.yaml:12: warning: node 'h' reads vars.account, which nothing in this flow sets",
    ]


def test_variables_set_on_every_path_are_fine() -> None:
    # A set node may read what it set above; a gather's var is set on the way to `next`, an http
    # node's saves on the way to `next` and its status on both ways out (it uses no secret).
    assert found(
        """
        name: t
        start: g
        nodes:
          g: {type: gather, var: pin, next: s}
          s:
            type: set
            vars: {a: "vars.pin", b: "vars.a + 'x'"}
            next: h
          h: {type: http, url: "https://x.example/{{ vars.b }}", save: {tier: customer.tier}, next: ok, on_error: bad}
          ok: {type: play, media: ["digits:{{ vars.tier }}", "digits:{{ vars.http_status }}"]}
          bad: {type: branch, cases: [{when: "vars.http_status == 404", next: ok}]}
        """
    ) == [
        # `ok` is also reached from `bad`, where the http node saved nothing.
        "f.yaml:10: warning: node 'ok' reads vars.tier, which is not set on every path from start to here",
    ]


def test_only_the_paths_that_set_a_variable_count() -> None:
    problems = found(
        """
        name: t
        start: g
        nodes:
          g: {type: gather, var: pin, next: ok, on_timeout: ok}
          ok: {type: play, media: ["digits:{{ vars.pin }}"], next: h}
          h:
            type: http
            url: "https://x.example/?key={{ secrets.key }}"
            on_error: e
          e: {type: play, media: ["digits:{{ vars.http_status }}"]}
        """
    )
    assert problems == [
        # a timeout leaves the gather without setting `pin`
        "f.yaml:5: warning: node 'ok' reads vars.pin, which is not set on every path from start to here",
    ]  # http sets http_status (null when nothing answered) on both ways out: `e` may read it


def test_a_subflow_may_set_any_variable() -> None:
    assert found(
        """
        name: t
        start: s
        nodes:
          s: {type: subflow, flow: lookup, next: p}
          p: {type: play, media: ["digits:{{ vars.account }}"]}
        """
    ) == []


def test_unset_variables_in_a_loop_converge() -> None:
    # `x` is set in the loop, but the first time round it is not.
    flow = load_flow(doc(
        """
        name: t
        start: m
        nodes:
          m: {type: menu, prompt: ["digits:{{ vars.x }}"], options: {"1": s}}
          s: {type: set, vars: {x: 1}, next: m}
        """
    ))
    assert lint(flow) == [Finding(("nodes", "m", "prompt", 0), "warning",
                                  "node 'm' reads vars.x, which is not set on every path from start to here")]


def test_missing_sounds() -> None:
    text = """
        name: t
        start: m
        nodes:
          m:
            type: menu
            prompt: [sound:hello-world, sound:press-1, "sound:{{ vars.greeting }}", digits:12]
            options: {"1": bye}
          bye: {type: play, media: sound:goodbye}
        """
    assert found(text, sounds={"hello-world", "goodbye"}) == [
        "f.yaml:6: warning: node 'm' reads vars.greeting, which nothing in this flow sets",
        "f.yaml:6: warning: node 'm' plays sound:press-1, which this Asterisk does not have",
    ]
    assert [p for p in found(text) if "does not have" in p] == []  # no inventory: no check


def test_sound_inventory(tmp_path: Path) -> None:
    for name in ["en/hello-world.gsm", "en/digits/1.ulaw", "fr/digits/2.wav", "en/silence/1.sln16",
                 "en/core-sounds-en.txt", "en/.hidden.gsm", "custom/intro.alaw", "README"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    sounds = sound_inventory(tmp_path)
    assert {"hello-world", "digits/1", "digits/2", "silence/1", "custom/intro"} <= sounds
    assert not {"core-sounds-en", ".hidden", "README", "digits/1.ulaw"} & sounds


def test_warnings_say_so_and_errors_look_as_before() -> None:
    warning = Problem("f.yaml", 3, "node 'x' is never reached", "warning")
    assert str(warning) == "f.yaml:3: warning: node 'x' is never reached"
    assert str(Problem("f.yaml", 3, "no node named 'b'")) == "f.yaml:3: no node named 'b'"


def test_validate_reports_load_problems_and_no_lint_when_the_flow_does_not_load() -> None:
    assert found("name: t\nstart: a\nnodes:\n  a: {type: play, media: sound:x, next: nope}\n  z: {type: hangup}\n") == [
        "f.yaml:4: nodes.a.next: no node named 'nope'"]


# -- linear time: work done for N and 2N nodes --------------------------------------------------


@contextmanager
def counting_calls() -> Iterator[list[int]]:
    """Function calls made inside the block, Python and C: a measure of work that no machine load skews."""
    count = [0]

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event in ("call", "c_call"):
            count[0] += 1

    sys.setprofile(profile)
    try:
        yield count
    finally:
        sys.setprofile(None)


def work(run: Callable[[], object]) -> int:
    with counting_calls() as count:
        run()
    return count[0]


def test_did_you_mean_compares_a_bounded_number_of_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    compared = [0]
    real = schema_module.difflib.get_close_matches

    def counted(word: str, possibilities: list[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
        compared[0] += len(possibilities)
        return real(word, possibilities, n, cutoff)

    monkeypatch.setattr(schema_module.difflib, "get_close_matches", counted)

    def comparisons(count: int, target: Callable[[int], str]) -> tuple[int, list[str]]:
        compared[0] = 0
        nodes = {f"node{i}": {"type": "play", "media": "sound:x", "next": target(i)} for i in range(count)}
        messages = [issue.message for issue in graph_issues("node0", nodes)]
        assert len(messages) == count
        return compared[0], messages

    # A typo of an id: found through the index, whatever the number of misses.
    small, messages = comparisons(500, lambda i: f"nod{i}")
    assert messages[7] == "no node named 'nod7' (did you mean 'node7'?)"
    large, _ = comparisons(1000, lambda i: f"nod{i}")
    assert large <= 2.2 * small
    # Names like no id: only the first few are searched among all ids; before, each of them was.
    small, messages = comparisons(500, lambda i: f"elsewhere-{i}-q")
    large, _ = comparisons(1000, lambda i: f"elsewhere-{i}-q")
    assert large <= 2.2 * small and large <= 8 * 1000 + 1000
    assert all(m.startswith("no node named 'elsewhere-") for m in messages)


@pytest.mark.parametrize("make", [valid_flow, dangling_flow], ids=["valid", "dangling"])
def test_validation_work_is_linear_in_the_number_of_nodes(make: Callable[[int], str]) -> None:
    small = work(lambda: validate_flow(make(150), "b.yaml"))
    large = work(lambda: validate_flow(make(300), "b.yaml"))
    assert 1.8 * small < large < 2.3 * small


def test_lint_work_is_linear_in_the_number_of_nodes() -> None:
    small_flow, large_flow = load_flow(valid_flow(300)), load_flow(valid_flow(600))
    small, large = work(lambda: lint(small_flow, sounds=set())), work(lambda: lint(large_flow, sounds=set()))
    assert 1.8 * small < large < 2.3 * small


def test_dangling_references_are_all_reported_with_their_hint() -> None:
    text = dangling_flow(100)
    problems = check_flow(text, "b.yaml")
    assert len(problems) == text.count(": x")  # every reference is `...: xNAME`
    assert all("did you mean" in p.message for p in problems), problems[:3]


# -- size, aliases, nesting -----------------------------------------------------------------------


def test_a_list_past_the_value_bound_is_refused_where_the_bound_is_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_reader, "MAX_VALUES", 1000)
    text = "name: big\nstart: a\nnodes: {a: {type: hangup}}\ndescription:\n" + "- 1\n" * 50_000
    pulled = [0]

    def counted(events: Any) -> Any:
        def pull(text: str) -> Any:
            for event in events(text):
                pulled[0] += 1
                yield event
        return pull

    monkeypatch.setattr(yaml_reader, "_libyaml_events", counted(yaml_reader._libyaml_events))
    monkeypatch.setattr(yaml_reader, "_ruamel_events", counted(yaml_reader._ruamel_events))
    (problem,) = check_flow(text, "big.yaml")
    # Refused while read: at the line of the 1,001st value, not after reading 50,000 and more.
    assert problem.message == "flow is too large (more than 1,000 values)"
    assert 990 < problem.line < 1010
    assert 0 < pulled[0] < 1100


def test_a_file_past_the_size_bound_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"name: t\n" + b"#" * (3 * 1024 * 1024))
    with pytest.raises(FlowError) as caught:
        load_flow_file(path)
    assert str(caught.value) == f"{path}:1: flow file is too large (over 1024 KiB)"
    if Path("/dev/zero").exists():  # endless: read whole, it would never be refused
        with pytest.raises(FlowError, match="too large"):
            read_flow_file("/dev/zero")
    path.write_text(doc("name: t\nstart: a\nnodes: {a: {type: hangup}}\n"))
    assert read_flow_file(path).startswith("name: t")


@pytest.mark.parametrize(
    ("text", "line", "alias"),
    [
        ("a: &x {next: *x}\n", 1, "x"),
        ("&a [*a]\n", 1, "a"),
        ("name: t\nstart: a\nnodes:\n  a: &loop\n    type: play\n    media: sound:x\n    next: *loop\n", 7, "loop"),
        ("name: t\nstart: a\nnodes:\n  a:\n    type: menu\n    options: &o\n      1: a\n      2: [*o]\n", 8, "o"),
    ],
)
def test_an_alias_inside_its_own_value_is_an_error_at_the_alias(text: str, line: int, alias: str) -> None:
    # ruamel turns these into null, which used to load as "hang up here".
    assert [str(p) for p in check_flow(text, "f.yaml")] == [
        f"f.yaml:{line}: alias *{alias} is used inside the value it names (&{alias}): it would contain itself"]


def test_aliases_of_finished_values_still_work() -> None:
    flow = load_flow("name: t\nstart: a\nnodes:\n  a: {type: play, media: &m [sound:x], next: b}\n"
                     "  b: {type: play, media: *m}\n")
    assert flow.nodes["b"].model_dump()["media"] == ["sound:x"]


def nested(depth: int) -> str:
    lines = ["name: t", "start: a", "nodes: {a: {type: hangup}}", "description:"]
    lines += ["  " * level + f"k{level}:" for level in range(1, depth)]
    return "\n".join(lines) + " x\n"


def test_nesting_too_deep_is_reported_at_its_line() -> None:
    # description is depth 1, k1 depth 2...: the 65th level is on line 4 + 64.
    assert [str(p) for p in check_flow(nested(70), "f.yaml")] == [
        "f.yaml:68: flow is nested too deeply (more than 64 levels)"]
    assert "nested" not in " ".join(map(str, check_flow(nested(64), "f.yaml")))
    (problem,) = check_flow("name: t\nstart: a\nnodes: {a: {type: hangup}}\nx: " + "[" * 5000 + "]" * 5000, "f.yaml")
    assert (problem.line, problem.message) == (4, "flow is nested too deeply (more than 64 levels)")


# -- property tests: never raise, always a line in the file -----------------------------------------

IDS = ["a", "b", "c", "menu", "end"]
VARS = ["x", "y", "account"]


@st.composite
def node_dicts(draw: st.DrawFn, ids: list[str]) -> dict[str, Any]:
    def target() -> str | None:
        return draw(st.sampled_from([*ids, *ids, None, "nowhere"]))

    kind = draw(st.sampled_from([*sorted(NODE_TYPES), "nonsense"]))
    var = draw(st.sampled_from(VARS))
    node: dict[str, Any] = {"type": kind}
    if kind in ("answer", "play", "set", "gather", "http", "say", "record", "subflow"):
        node["next"] = target()
    if kind == "play":
        node["media"] = draw(st.sampled_from(["sound:beep", f"digits:{{{{ vars.{var} }}}}", ["sound:x", "sound:y"]]))
    elif kind == "menu":
        node["options"] = {str(d): target() for d in draw(st.lists(st.integers(0, 9), min_size=1, max_size=3))}
        node["on_timeout"] = target()
    elif kind == "set":
        node["vars"] = {var: draw(st.sampled_from(["1", f"vars.{draw(st.sampled_from(VARS))} + 1", "'a'"]))}
    elif kind == "branch":
        node["cases"] = [{"when": f"vars.{var} > 1", "next": target()}]
        node["default"] = target()
    elif kind == "gather":
        node["var"] = var
    elif kind == "http":
        node["url"] = f"https://x.example/{{{{ vars.{var} }}}}"
        node["save"] = {draw(st.sampled_from(VARS)): "a.b"}
        node["on_error"] = target()
    elif kind == "say":
        node["digits"] = f"vars.{var}"
    elif kind == "subflow":
        node["flow"] = "other"
    elif kind == "transfer":
        node["to"] = "number:5551234"
        node["on_failure"] = target()
    return {k: v for k, v in node.items() if v is not None}


@st.composite
def flow_texts(draw: st.DrawFn) -> str:
    """Random node graphs: every node type, transitions to nodes, to nowhere or empty."""
    ids = IDS[: draw(st.integers(1, len(IDS)))]
    lines = ["name: gen", f"start: {draw(st.sampled_from([*ids, *ids, 'nowhere']))}", "nodes:"]
    # JSON is YAML: one node a line, so every node has a line of its own to be blamed on.
    lines += [f"  {node_id}: {json.dumps(draw(node_dicts(ids)))}" for node_id in ids]
    return "\n".join(lines) + "\n"


def assert_well_placed(text: str, problems: list[Problem]) -> None:
    last = max(1, len(text.splitlines()))
    for problem in problems:
        assert 1 <= problem.line <= last, (problem, text)
        assert "internal error" not in problem.message, (problem, text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow_texts())
def test_generated_flows_never_raise_and_are_placed_in_the_file(text: str) -> None:
    assert_well_placed(text, check_flow(text, "g.yaml"))
    problems = validate_flow(text, "g.yaml", sounds={"beep"})
    assert_well_placed(text, problems)
    try:
        flow = load_flow(text, "g.yaml")
    except FlowError:
        return
    for finding in lint(flow):
        assert finding.loc[:1] == ("nodes",) and finding.loc[1] in flow.nodes


_VALID_SOURCES = [DEMO.read_text(), valid_flow(16), doc(
    """
    name: t
    start: g
    nodes:
      g: {type: gather, var: pin, next: s, on_timeout: g}
      s:
        type: set
        vars: {a: "vars.pin", b: "vars.a + 'x'"}
        next: h
      h: {type: http, url: "https://x.example/{{ vars.b }}", save: {tier: customer.tier}, next: ok, on_error: bad}
      ok: {type: play, media: ["digits:{{ vars.tier }}"]}
      bad: {type: branch, cases: [{when: "vars.http_status == 404", next: ok}]}
    """
)]
_GARBAGE = ["", "[", "]", "{", "}", ":", ": ", "- ", "&a ", "*a", "!!int ", "\t", "'", '"', "#", "|", ">",
            "? ", "<<: *a", "\x00", "{{", "  ", "\n", "type: menu", "next: nowhere", "*x", "&x {n: *x}"]


@st.composite
def mutated_flows(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(_VALID_SOURCES)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["delete", "garbage", "swap-type", "duplicate", "indent", "truncate"]))
        if edit == "delete":  # a key, with its value if on the line
            del lines[at]
        elif edit == "garbage":
            column = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:column] + draw(st.sampled_from(_GARBAGE)) + lines[at][column:]
        elif edit == "swap-type" and "type:" in lines[at]:
            lines[at] = lines[at].replace("type:", f"type: {draw(st.sampled_from(sorted(NODE_TYPES)))} #", 1)
        elif edit == "duplicate":
            lines.insert(at, lines[at])
        elif edit == "indent":
            lines[at] = draw(st.sampled_from(["", " ", "    "])) + lines[at].lstrip()
        else:
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_flows())
def test_mutated_flows_never_raise_and_are_placed_in_the_file(text: str) -> None:
    assert_well_placed(text, validate_flow(text, "m.yaml", sounds={"hello-world"}))
