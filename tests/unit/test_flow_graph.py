"""`flow graph` (DOT and Mermaid from `transitions()`, SVG/PNG through Graphviz) and `flow schema`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from textwrap import dedent
from typing import Any, Literal
from xml.etree import ElementTree

import pytest
from pydantic import BaseModel, ConfigDict

from ivrpowers.flows import NODE_TYPES, BaseNode, Flow, HangupNode, load_flow, load_flow_file
from ivrpowers.flows.graph import MAX_LABEL, FlowGraph, build_graph, to_dot, to_mermaid
from ivrpowers.flows.schema import NodeRef

from .cli_run import Run

# Every kind of labelled way out: digits (`#` and `*` too), case conditions with characters both
# formats must escape, a default, a gather's on_timeout/on_invalid, an http's on_error, and ways
# left empty (the flow ends). Node ids with '-' and '_' that a careless encoding would merge.
FLOW = dedent("""
    name: support
    start: main-menu
    nodes:
      main-menu:
        type: menu
        options: {"1": account, "#": agent_queue, "*": main-menu}
        on_timeout: agent_queue
      account:
        type: gather
        var: account
        next: lookup
        on_timeout: main-menu
        on_invalid: agent-queue
      lookup:
        type: http
        url: https://crm.example/accounts/{{ vars.account }}
        save: {tier: customer.tier}
        next: tier
        on_error: agent-queue
      tier:
        type: branch
        cases:
          - {when: "vars.tier == \\"gold\\" or vars.tier == 'platinum #1' or vars.account < 100", next: agent_queue}
          - {when: "vars.tier == '*'", next: agent-queue}
        default: bye
      agent_queue: {type: play, media: sound:queue}
      agent-queue: {type: play, media: sound:queue, next: bye}
      bye: {type: hangup}
    """)

LONG_WHEN = "vars.tier == \"gold\" or vars.tier == 'platinum #1' or vars.account < 100"

EXPECTED_EDGES = {
    ("main-menu", "account", "1"),
    ("main-menu", "agent_queue", "#"),
    ("main-menu", "main-menu", "*"),
    ("main-menu", "agent_queue", "on_timeout"),
    ("main-menu", None, "on_invalid"),  # on_invalid left empty: the flow ends
    ("account", "lookup", ""),
    ("account", "main-menu", "on_timeout"),
    ("account", "agent-queue", "on_invalid"),
    ("lookup", "tier", ""),
    ("lookup", "agent-queue", "on_error"),
    ("tier", "agent_queue", LONG_WHEN[: MAX_LABEL - 1] + "…"),
    ("tier", "agent-queue", "vars.tier == '*'"),
    ("tier", "bye", "default"),
    ("agent_queue", None, ""),  # a play with no next
    ("agent-queue", "bye", ""),
}

DEMO_EDGES = {
    ("welcome", "main", ""),
    ("main", "readback", "1"),
    ("main", "bye", "2"),
    ("main", "bye", "on_invalid"),
    ("main", "bye", "on_timeout"),
    ("readback", "main", ""),
    ("bye", "hangup", ""),
}

Edges = set[tuple[str, str | None, str]]
Parse = Callable[[str], tuple[dict[str, str], Edges, str]]
Render = Callable[[FlowGraph], str]

MENU = Path(__file__).parent / "flows" / "menu.yaml"  # the first demo, frozen: a menu and a readback


# -- reading the drawings back ------------------------------------------------------------------

_DOT_STRING = r'"((?:[^"\\]|\\.)*)"'
_DOT_NODE = re.compile(rf"^  {_DOT_STRING} \[(.*)\];$")
_DOT_EDGE = re.compile(rf"^  {_DOT_STRING} -> {_DOT_STRING}(?: \[label={_DOT_STRING}\])?;$")


def _dot_unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def parse_dot(text: str) -> tuple[dict[str, str], Edges, str]:
    """Nodes (id -> label), edges (source, target or None for an end, label), and the start node."""
    labels: dict[str, str] = {}
    raw_edges = []
    for line in text.splitlines():
        if edge := _DOT_EDGE.match(line):
            raw_edges.append(tuple(_dot_unescape(g or "") for g in edge.groups()))
        elif node := _DOT_NODE.match(line):
            label = re.search(rf"label={_DOT_STRING}", node.group(2))
            assert label, line
            labels[_dot_unescape(node.group(1))] = _dot_unescape(label.group(1))
    assert text.startswith("// ivrpowers flow ") and text.rstrip().endswith("}")
    return _resolve_pseudo(labels, raw_edges, start_id="/start")


def _mermaid_unescape(text: str) -> str:
    # What Mermaid would read as syntax or markup appears only as entity codes (and our <br/>).
    assert re.fullmatch(r"(?:[^\"#<>&*|`\\]|#\d+;|<br/>)*", text), text
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text.replace("<br/>", "\n"))


_MMD_NODE = re.compile(r'^  (\w+)(\[\[|\[|\(\()(?:"([^"]*)"|(\w+))(\]\]|\]|\)\))$')
_MMD_EDGE = re.compile(r'^  (\w+) -->(?:\|"([^"]*)"\|)? (\w+)$')


def parse_mermaid(text: str) -> tuple[dict[str, str], Edges, str]:
    lines = text.splitlines()
    assert lines[1] == "flowchart TD"
    labels: dict[str, str] = {}
    raw_edges = []
    for line in lines[2:]:
        if line.startswith("  start((start)) --> "):
            raw_edges.append(("start", line.rsplit(" ", 1)[1], ""))
        elif edge := _MMD_EDGE.match(line):
            raw_edges.append((edge.group(1), edge.group(3), _mermaid_unescape(edge.group(2) or "")))
        else:
            node = _MMD_NODE.match(line)
            assert node, line  # every line is a node or an edge, quoted where it holds text
            labels[node.group(1)] = _mermaid_unescape(node.group(3) or node.group(4))
    labels["start"] = "start"
    return _resolve_pseudo(labels, raw_edges, start_id="start")


def _resolve_pseudo(labels: dict[str, str], raw_edges: Sequence[tuple[str, ...]], start_id: str
                    ) -> tuple[dict[str, str], Edges, str]:
    """Back to flow ids: a node's label starts with its id; the "end" circles become None."""
    ends = {key for key, label in labels.items() if label == "end"}
    flow_id = {key: label.split("\n")[0] for key, label in labels.items()}
    (start,) = [flow_id[target] for source, target, _ in raw_edges if source == start_id]
    edges: Edges = set()
    for source, target, label in raw_edges:
        if source != start_id:
            edges.add((flow_id[source], None if target in ends else flow_id[target], label))
    nodes = {flow_id[key]: label for key, label in labels.items() if key not in ends and key != start_id}
    return nodes, edges, start


SVG = "{http://www.w3.org/2000/svg}"


def needs_dot() -> str:
    dot = shutil.which("dot")
    assert dot, "Graphviz's dot missing: run scripts/install-debian-deps (graphviz)"
    return dot


# -- the graph ------------------------------------------------------------------------------------

@pytest.mark.parametrize("parse,render", [(parse_dot, to_dot), (parse_mermaid, to_mermaid)], ids=["dot", "mermaid"])
def test_the_demo_flow_drawn(parse: Parse, render: Render) -> None:
    nodes, edges, start = parse(render(build_graph(load_flow_file(MENU))))
    assert nodes == {"welcome": "welcome\n(answer)", "main": "main\n(menu)", "readback": "readback\n(play)",
                     "bye": "bye\n(play)", "hangup": "hangup\n(hangup)"}
    assert start == "welcome"
    assert edges == DEMO_EDGES


@pytest.mark.parametrize("parse,render", [(parse_dot, to_dot), (parse_mermaid, to_mermaid)], ids=["dot", "mermaid"])
def test_every_kind_of_way_out_is_labelled_and_escaped(parse: Parse, render: Render) -> None:
    nodes, edges, start = parse(render(build_graph(load_flow(FLOW))))
    assert start == "main-menu"
    assert nodes["main-menu"] == "main-menu\n(menu)"
    assert nodes["agent_queue"] == "agent_queue\n(play)" and nodes["agent-queue"] == "agent-queue\n(play)"
    assert nodes["lookup"] == "lookup\n(http)" and nodes["account"] == "account\n(gather)"
    assert len(nodes) == 7
    assert edges == EXPECTED_EDGES


class Route(BaseModel):
    model_config = ConfigDict(frozen=True)
    next: NodeRef


class FanNode(BaseNode):
    """A node type the graph module has never heard of: its edges come from the annotations alone."""

    type: Literal["fan"]
    routes: list[Route]
    spares: list[NodeRef]
    by_name: dict[str, NodeRef]
    fallback: NodeRef | None = None


def test_a_node_type_added_later_is_drawn_from_its_annotations() -> None:
    fan = FanNode(type="fan", routes=[Route(next="a"), Route(next="b")], spares=["b"], by_name={"busy": "a"})
    members: dict[str, Any] = {"fan": fan, "a": HangupNode(type="hangup"), "b": HangupNode(type="hangup")}
    flow = Flow.model_construct(name="later", start="fan", nodes=members)  # no validation: Flow knows no "fan"
    nodes, edges, start = parse_dot(to_dot(build_graph(flow)))
    assert start == "fan" and nodes["fan"] == "fan\n(fan)"
    assert edges == {("fan", "a", "route 1"), ("fan", "b", "route 2"), ("fan", "b", "spare 1"),
                     ("fan", "a", "busy"), ("fan", None, "fallback")}


def test_the_drawings_are_the_same_bytes_every_time() -> None:
    first, second = build_graph(load_flow(FLOW)), build_graph(load_flow(FLOW))
    assert to_dot(first) == to_dot(second)
    assert to_mermaid(first) == to_mermaid(second)


def test_mermaid_ids_are_words_and_never_a_keyword() -> None:
    text = to_mermaid(build_graph(load_flow(FLOW.replace("bye", "end"))))
    ids = re.findall(r"^  (\S+?)(?:\[|\(\(| -->)", text, re.MULTILINE)
    assert ids and all(re.fullmatch(r"\w+", i) and i != "end" for i in ids), ids
    assert "agent-queue" not in re.sub(r'"[^"]*"', "", text)  # ids with '-' only inside quoted labels


# -- Graphviz -------------------------------------------------------------------------------------

def test_graphviz_reads_the_labels_back_as_written() -> None:
    done = subprocess.run([needs_dot(), "-Tjson"], input=to_dot(build_graph(load_flow(FLOW))),
                          capture_output=True, text=True, timeout=60, check=True)
    drawn = json.loads(done.stdout)
    names = [o["name"] for o in drawn["objects"]]
    labels = {(names[e["tail"]], names[e["head"]], e.get("label", "")) for e in drawn["edges"]}
    assert ("tier", "agent_queue", LONG_WHEN[: MAX_LABEL - 1] + "…") in labels
    assert ("main-menu", "agent_queue", "#") in labels and ("main-menu", "main-menu", "*") in labels


def test_the_cli_draws_svg_and_png_with_graphviz(run: Run, tmp_path: Path) -> None:
    needs_dot()
    flow = tmp_path / "support.yaml"
    flow.write_text(FLOW)
    svg, png = tmp_path / "support.svg", tmp_path / "out.png"
    ran = run("flow", "graph", str(flow), "-o", str(svg))  # the format from the extension
    assert ran.code == 0, ran.err
    root = ElementTree.fromstring(svg.read_bytes())
    assert root.tag == f"{SVG}svg"
    groups = {kind: [g for g in root.iter(f"{SVG}g") if g.get("class") == kind] for kind in ("node", "edge")}
    titles = {g.findtext(f"{SVG}title") for g in groups["node"]}
    assert titles == {*load_flow(FLOW).nodes, "/start", "main-menu/end", "agent_queue/end"}
    edge_texts = {t.text for g in groups["edge"] for t in g.iter(f"{SVG}text")}
    assert {"#", "*", "on_error", "on_invalid", "default", "vars.tier == '*'"} <= edge_texts
    ran = run("flow", "graph", str(flow), "--format", "png", "-o", str(png))
    assert ran.code == 0, ran.err
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_without_graphviz_svg_is_unavailable_in_one_line(run: Run, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` there
    ran = run("flow", "graph", str(MENU), "-o", str(tmp_path / "demo.svg"))
    assert ran.code == 4
    assert ran.error_lines == ran.err.splitlines()
    assert len(ran.error_lines) == 1 and "(install Graphviz: " in ran.error_lines[0]
    assert not (tmp_path / "demo.svg").exists()


# -- the command ----------------------------------------------------------------------------------

def test_the_cli_prints_dot_by_default_and_mermaid_when_asked(run: Run) -> None:
    ran = run("flow", "graph", str(MENU))
    assert ran.code == 0, ran.err
    assert parse_dot(ran.out)[1] == DEMO_EDGES
    ran = run("flow", "graph", str(MENU), "--format", "mermaid", "-o", "-")
    assert ran.code == 0, ran.err
    assert parse_mermaid(ran.out)[1] == DEMO_EDGES


def test_the_cli_writes_text_formats_to_a_file(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "demo.mmd"
    ran = run("flow", "graph", str(MENU), "-o", str(out))
    assert ran.code == 0, ran.err
    assert parse_mermaid(out.read_text())[1] == DEMO_EDGES


@pytest.mark.parametrize("args", [("--format", "png"), ("--format", "svg", "-o", "-"), ("-o", "demo.txt"),
                                  ("--format", "pdf")])
def test_usage_mistakes_exit_2(run: Run, args: tuple[str, ...]) -> None:
    ran = run("flow", "graph", str(MENU), *args)
    assert ran.code == 2
    assert len(ran.error_lines) == 1 and ran.out == ""


def test_an_invalid_flow_file_lists_its_problems_then_one_error(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nstart: a\nnodes:\n  a: {type: answer, next: b}\n")
    ran = run("flow", "graph", str(bad))
    assert ran.code == 1 and ran.out == ""
    assert ran.err.splitlines() == [f"{bad}:4: nodes.a.next: no node named 'b'",
                                    f"error: {bad}: not a valid flow (1 problem(s) above)"]


def test_a_stored_flow_is_drawn_by_name(run: Run, state: Path) -> None:
    assert run("flow", "import", str(MENU)).code == 0  # not published: its latest version
    ran = run("flow", "graph", "demo", "--format", "mermaid")
    assert ran.code == 0, ran.err
    assert parse_mermaid(ran.out)[1] == DEMO_EDGES
    assert run("flow", "graph", "nosuch").code == 3


# -- flow schema ----------------------------------------------------------------------------------

def test_flow_schema_is_json_schema_naming_every_node_type(run: Run, tmp_path: Path) -> None:
    ran = run("flow", "schema")
    assert ran.code == 0, ran.err
    schema = json.loads(ran.out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] and schema["type"] == "object"
    assert {"name", "start", "nodes"} <= set(schema["properties"])
    assert set(schema["required"]) == {"name", "start", "nodes"}
    by_type = schema["properties"]["nodes"]["additionalProperties"]["discriminator"]["mapping"]
    assert set(by_type) == set(NODE_TYPES)
    for type_name, ref in by_type.items():
        model = schema["$defs"][ref.removeprefix("#/$defs/")]
        assert model["properties"]["type"]["const"] == type_name
        assert model["additionalProperties"] is False  # a misspelt field is flagged as typed
    out = tmp_path / "flow.schema.json"
    assert run("flow", "schema", "-o", str(out)).code == 0
    assert json.loads(out.read_text()) == schema


def test_the_readme_picture_is_the_demo_as_it_is() -> None:
    """docs/demo-flow.svg (shown by the README) was made by `flow graph` from today's demo:
    regenerate it with `ivrpowers flow graph ivrpowers/demo/demo.yaml -o docs/demo-flow.svg`."""
    from ivrpowers.resources import demo_flow

    svg = (Path(__file__).resolve().parents[2] / "docs" / "demo-flow.svg").read_text()
    titles = set(re.findall(r"<title>(.*?)</title>", svg))
    drawn = {t.replace("&#45;", "-").replace("&gt;", ">") for t in titles}
    flow = load_flow_file(demo_flow())
    assert set(flow.nodes) <= drawn
    edges = {f"{source}->{target}" for source, node in flow.nodes.items() for _, target in node.transitions()}
    assert edges <= drawn, sorted(edges - drawn)
