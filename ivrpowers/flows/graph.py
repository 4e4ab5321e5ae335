"""A flow as a graph, drawn as Graphviz DOT or Mermaid text: what `ivrpowers flow graph` prints.

Built from `BaseNode.transitions()` and the `NodeRef` annotations alone, never from a list of
node types, so a node type added later is drawn without a change here. A transition field left
empty (None) ends the flow (a subflow returns to its caller): it is drawn as an edge to an "end"
circle of its own node.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from .expressions import Expression
from .schema import NODE_REF, BaseNode, Flow, Loc

__all__ = ["FlowGraph", "GraphEdge", "GraphNode", "build_graph", "edge_label", "to_dot", "to_mermaid"]

MAX_LABEL = 40  # a `when` longer than this is cut: the drawing is a map, the file has the details


@dataclass(frozen=True)
class GraphNode:
    id: str  # the node's id in the flow
    type: str
    start: bool

    @property
    def label(self) -> str:
        return f"{self.id}\n({self.type})"


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str | None  # None: the flow ends (hangs up) there
    label: str  # "" for a plain `next`


@dataclass(frozen=True)
class FlowGraph:
    name: str
    start: str
    nodes: tuple[GraphNode, ...]  # in the flow file's order
    edges: tuple[GraphEdge, ...]  # by source node, then in the order its fields are declared

    def ends(self) -> list[str]:
        """The nodes with at least one transition that ends the flow, each once, in node order."""
        return list(dict.fromkeys(e.source for e in self.edges if e.target is None))


def build_graph(flow: Flow) -> FlowGraph:
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []
    for node_id, node in flow.nodes.items():
        nodes.append(GraphNode(node_id, node.type, node_id == flow.start))
        order = list(type(node).model_fields)
        found: list[tuple[Loc, str | None]] = [*node.transitions(), *_empty_refs(node)]
        # Stable: a field's own transitions keep their order (menu options as written).
        found.sort(key=lambda item: order.index(str(item[0][0])))
        edges.extend(GraphEdge(node_id, target, edge_label(node, loc)) for loc, target in found)
    return FlowGraph(flow.name, flow.start, tuple(nodes), tuple(edges))


def _names_node(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        return any(m is NODE_REF for m in metadata) or _names_node(base)
    return any(_names_node(arg) for arg in get_args(annotation))


def _empty_refs(model: BaseModel, loc: Loc = ()) -> Iterator[tuple[Loc, None]]:
    """Node-reference fields left empty, in `model` and the models nested in it (lists of cases)."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None and (any(m is NODE_REF for m in field.metadata) or _names_node(field.annotation)):
            yield (*loc, name), None
        elif isinstance(value, BaseModel):
            yield from _empty_refs(value, (*loc, name))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _empty_refs(item, (*loc, name, index))


def _resolve(node: BaseNode, path: Sequence[str | int]) -> Any:
    value: Any = node
    for key in path:
        if isinstance(value, BaseModel):
            value = getattr(value, str(key))
        else:  # a dict or list, as `transitions()` found it
            value = value[key]
    return value


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _item(field: str | int, index: int) -> str:
    # `cases`, index 0 -> "case 1": how an author counts the items of a list
    return f"{str(field).removesuffix('s')} {index + 1}"


def edge_label(node: BaseNode, loc: Loc) -> str:
    """What an edge says, from where its target is written: `("options", "1")` -> "1", `("next",)`
    -> "", `("on_timeout",)` -> "on_timeout", `("cases", 0, "next")` -> the case's `when`."""
    *path, last = loc
    container = _resolve(node, path)
    if isinstance(container, Mapping):
        return _shorten(str(last))
    if isinstance(last, int):
        return _item(path[-1], last) if path else str(last)
    own = "" if last == "next" else last
    if not path:
        return own
    when = getattr(container, "when", None)
    if isinstance(when, Expression):
        where = _shorten(when.source)
    elif isinstance(path[-1], int) and len(path) > 1:
        where = _item(path[-2], path[-1])
    else:
        where = ".".join(map(str, path))
    return f"{where} {own}".strip()


# -- Graphviz DOT ---------------------------------------------------------------------------------


def _dot_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _dot_end(node_id: str) -> str:
    return f"{node_id}/end"  # no node id has a '/': it cannot name a real node


def to_dot(graph: FlowGraph) -> str:
    q = _dot_string
    lines = [
        f"// ivrpowers flow {graph.name}",
        f"digraph {q(graph.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        f'  {q("/start")} [shape=circle, label="start", fontsize=9, width=0.5, fixedsize=true];',
        f"  {q('/start')} -> {q(graph.start)};",
    ]
    for node in graph.nodes:
        bold = ", penwidth=2" if node.start else ""
        lines.append(f"  {q(node.id)} [label={q(node.label)}{bold}];")
    for node_id in graph.ends():
        lines.append(f'  {q(_dot_end(node_id))} [shape=circle, label="end", fontsize=9, width=0.5, fixedsize=true];')
    for edge in graph.edges:
        target = _dot_end(edge.source) if edge.target is None else edge.target
        label = f" [label={q(edge.label)}]" if edge.label else ""
        lines.append(f"  {q(edge.source)} -> {q(target)}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- Mermaid --------------------------------------------------------------------------------------

# In a quoted label Mermaid still reads `"` (the quote's end), `#` (an entity code), `<`, `>` and
# `&` (HTML); `*`, backticks, `|` and `\` may mean markup to some renderers. All become entity codes.
_MERMAID_UNSAFE = re.compile(r"""[#"<>&*`|\\]""")


def _mermaid_text(text: str) -> str:
    escaped = _MERMAID_UNSAFE.sub(lambda m: f"#{ord(m.group())};", text)
    return '"' + escaped.replace("\n", "<br/>") + '"'


def _mermaid_id(node_id: str, prefix: str = "n") -> str:
    # Mermaid ids are words: a '-' may start an arrow and `end` is a keyword. The prefix keeps
    # keywords out; `_` -> `__` and `-` -> `_h` keeps distinct node ids distinct.
    return f"{prefix}_" + node_id.replace("_", "__").replace("-", "_h")


def to_mermaid(graph: FlowGraph) -> str:
    lines = [f"%% ivrpowers flow {graph.name}", "flowchart TD", f"  start((start)) --> {_mermaid_id(graph.start)}"]
    for node in graph.nodes:
        label = _mermaid_text(node.label)
        shape = f"[[{label}]]" if node.start else f"[{label}]"  # the start: a box with double sides
        lines.append(f"  {_mermaid_id(node.id)}{shape}")
    for node_id in graph.ends():
        lines.append(f'  {_mermaid_id(node_id, "e")}(("end"))')
    for edge in graph.edges:
        target = _mermaid_id(edge.source, "e") if edge.target is None else _mermaid_id(edge.target)
        label = f"|{_mermaid_text(edge.label)}|" if edge.label else ""
        lines.append(f"  {_mermaid_id(edge.source)} -->{label} {target}")
    return "\n".join(lines) + "\n"
