"""Lint for flows: what a flow that loads may still get wrong, found on its graph.

The loader already refuses what is not a flow (schema problems, dangling references); lint looks
at where a call can go: nodes never reached, nodes a caller can never leave, loops that spin
without waiting for the caller, variables read where nothing has set them, sounds this Asterisk
does not have. Every rule works from `BaseNode.transitions()` and the model's fields, so a node
type added later is linted without a change here; the few facts lint needs about node types
(which ones wait for the caller, which set variables) are named below.

Each rule is linear, or nearly, in the size of the flow: the loader runs lint on every
`flow validate`, import and publish, and a 3,000-node flow must not take seconds.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from .expressions import Expression
from .findings import Finding, Severity
from .lint_media import SOUND_EXTENSIONS, VIDEO_CODECS, Videos, missing_sounds, missing_videos, sound_inventory
from .schema import NODE_REF, NODE_TYPES, BaseNode, Flow, HttpNode, Loc, SetNode
from .templates import TemplateError, has_template, template_names

__all__ = ["SOUND_EXTENSIONS", "VIDEO_CODECS", "WAITING_TYPES", "Finding", "Severity", "Videos", "lint",
           "sound_inventory"]


# Node types that wait for the caller: they play something or read DTMF, so a loop through one
# moves at the caller's pace. A loop through none of them spins until the interpreter's step limit.
# Kept here by name, not as a ClassVar in schema.py, where node types are defined by their authors:
# a new type that plays or listens belongs in this set.
WAITING_TYPES = frozenset({"menu", "gather", "play", "say", "record", "queue"})

# Node types after which any variable may be set: a subflow runs another flow on the call's variables.
_SETS_ANY_VARIABLE = frozenset({"subflow"})

_MAX_NAMED = 8  # nodes a loop's message lists before "..."




def lint(flow: Flow, *, sounds: Collection[str] | None = None,
         number_allowed: Callable[[str], bool] | None = None, videos: Videos | None = None) -> list[Finding]:
    """Everything lint finds in `flow`, in the order of its nodes. `sounds`: the sound names the
    Asterisk in use has (`sound_inventory`); None skips that check. `number_allowed`: whether the
    settings let a transfer dial an outside number (`Settings.number_allowed`); None refuses all.
    `videos`: the media library's video prompts, each with the codecs it has; None skips that check.

    Errors are about nodes a call can reach (an unreachable node is only a warning: it does nothing).
    """
    graph = _Graph(flow)
    findings = [*_unreachable(graph), *_no_way_out(graph), *_busy_loops(graph), *_unset_variables(graph)]
    if sounds is not None:
        findings.extend(missing_sounds(graph.nodes, sounds))
    if videos is not None:
        findings.extend(missing_videos(graph.nodes, videos))
    findings.extend(_refused_numbers(flow, number_allowed or (lambda _: False)))
    order = {node_id: index for index, node_id in enumerate(flow.nodes)}
    return sorted(findings, key=lambda f: order.get(str(f.loc[1]), -1) if len(f.loc) > 1 else -1)


# -- the graph ------------------------------------------------------------------------------------


class _Graph:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.nodes: Mapping[str, BaseNode] = flow.nodes
        # (field the transition is written in, target), targets that exist only (the loader has
        # reported the others).
        self.edges: dict[str, list[tuple[str | int, str]]] = {
            node_id: [(loc[0], target) for loc, target in node.transitions() if target in self.nodes]
            for node_id, node in self.nodes.items()
        }
        self.ends = {node_id for node_id, node in self.nodes.items() if _ends_run(node)}
        self.reachable = _search([flow.start] if flow.start in self.nodes else [], self.successors)

    def successors(self, node_id: str) -> Iterator[str]:
        return (target for _, target in self.edges[node_id])


def _search(roots: list[str], neighbours: Callable[[str], Iterable[str]]) -> dict[str, None]:
    """Every node reachable from `roots`, in breadth-first order (a dict: ordered, fast `in`)."""
    seen = dict.fromkeys(roots)
    queue = deque(roots)
    while queue:
        for other in neighbours(queue.popleft()):
            if other not in seen:
                seen[other] = None
                queue.append(other)
    return seen


def _ends_run(node: BaseNode) -> bool:
    """True if the run can end at `node`: an empty transition, no transition at all (hangup), or a
    type that hands the call off (a ClassVar `ends_run = True`: transfer, queue)."""
    if getattr(type(node), "ends_run", False) is True:
        return True
    fields = _ref_fields(type(node))
    return not fields or _has_empty_ref(node)


@functools.cache
def _ref_fields(cls: type[BaseModel]) -> list[str]:
    return [name for name, field in cls.model_fields.items()
            if NODE_REF in field.metadata or _names_node(field.annotation) or _nested_refs(field.annotation)]


def _names_node(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        return any(m is NODE_REF for m in metadata) or _names_node(base)
    return any(_names_node(arg) for arg in get_args(annotation))


def _nested_refs(annotation: Any) -> bool:
    # A field holding models that name nodes (a branch's cases).
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return bool(_ref_fields(annotation))
    return any(_nested_refs(arg) for arg in get_args(annotation))


def _has_empty_ref(model: BaseModel) -> bool:
    for name in _ref_fields(type(model)):
        value = getattr(model, name)
        if value is None:
            return True
        items = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(item, BaseModel) and _has_empty_ref(item) for item in items):
            return True
    return False


# -- the rules --------------------------------------------------------------------------------------


def _unreachable(graph: _Graph) -> Iterator[Finding]:
    for node_id in graph.nodes:
        if node_id not in graph.reachable:
            yield Finding(("nodes", node_id), "warning",
                          f"node {node_id!r} is never reached from start {graph.flow.start!r}")


def _no_way_out(graph: _Graph) -> Iterator[Finding]:
    predecessors: dict[str, list[str]] = {node_id: [] for node_id in graph.nodes}
    for node_id, edges in graph.edges.items():
        for _, target in edges:
            predecessors[target].append(node_id)
    can_end = _search([n for n in graph.nodes if n in graph.ends], predecessors.__getitem__)
    for node_id in graph.reachable:
        if node_id not in can_end:
            yield Finding(("nodes", node_id), "error",
                          f"node {node_id!r}: no path from here ends the call (no hangup, no empty "
                          f"transition), so a caller who gets here can never leave")


def _busy_loops(graph: _Graph) -> Iterator[Finding]:
    """Loops made only of nodes that don't wait for the caller: the strongly connected components
    (Tarjan, iterative: a flow may be thousands of nodes deep) of the reachable non-waiting nodes."""
    busy = [n for n in graph.reachable if graph.nodes[n].type not in WAITING_TYPES]
    inside = set(busy)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in busy:
        if root in index:
            continue
        work = [(root, iter([t for t in graph.successors(root) if t in inside]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node_id, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter([t for t in graph.successors(target) if t in inside])))
                elif target in on_stack:
                    low[node_id] = min(low[node_id], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node_id])
            if low[node_id] == index[node_id]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node_id:
                        break
                if len(component) > 1 or node_id in graph.successors(node_id):
                    yield _busy_loop(graph, set(component))


def _busy_loop(graph: _Graph, component: set[str]) -> Finding:
    first = next(n for n in graph.nodes if n in component)
    # One actual loop through `first`, for the message: breadth-first back to it inside the component.
    came_from: dict[str, str] = {}
    queue = deque([first])
    while queue and first not in came_from:
        node_id = queue.popleft()
        for target in graph.successors(node_id):
            if target in component and target not in came_from:
                came_from[target] = node_id
                queue.append(target)
    path, node_id = [], came_from[first]
    while node_id != first:
        path.append(node_id)
        node_id = came_from[node_id]
    path = [first, *reversed(path)]
    loop = " -> ".join(path[:_MAX_NAMED] + (["..."] if len(path) > _MAX_NAMED else []) + [first])
    waiting = ", ".join(sorted(WAITING_TYPES & NODE_TYPES.keys()))
    return Finding(("nodes", first), "error",
                   f"node {first!r} is on a loop that never waits for the caller ({loop}): no {waiting} "
                   f"node on it, so a call would spin there until the step limit")


# -- variables ------------------------------------------------------------------------------------


def _unset_variables(graph: _Graph) -> Iterator[Finding]:
    """Reads of `vars.NAME` where some path from start has not set NAME: a must-be-set analysis
    (intersection over the ways in), with the variables as bits of an int."""
    reads = {node_id: _reads(graph.nodes[node_id]) for node_id in graph.reachable}
    sets = {node_id: _sets(graph.nodes[node_id]) for node_id in graph.reachable}
    names = sorted({name for found in reads.values() for _, name in found}
                   | {name for by_field in sets.values() for found in by_field.values() for name in found})
    bit = {name: 1 << i for i, name in enumerate(names)}
    everything = (1 << len(names)) - 1

    def mask(found: Collection[str]) -> int:
        return sum(bit[name] for name in found)

    # What leaves each node by each field, on top of what came in.
    gen = {node_id: {field: mask(found) for field, found in by_field.items()} for node_id, by_field in sets.items()}
    known = {node_id: everything for node_id in graph.reachable}  # set on every path so far
    known[graph.flow.start] = 0
    # Breadth-first order visits most nodes after their predecessors; a node is looked at again only
    # when what is known there shrinks, which it can do once per variable at most.
    queue = deque(graph.reachable)
    queued = set(queue)
    while queue:
        node_id = queue.popleft()
        queued.discard(node_id)
        node = graph.nodes[node_id]
        for field, target in graph.edges[node_id]:
            sets_here = gen[node_id].get(None, 0) | gen[node_id].get(field, 0)
            out = everything if node.type in _SETS_ANY_VARIABLE else known[node_id] | sets_here
            narrowed = known[target] & out
            if narrowed != known[target]:
                known[target] = narrowed
                if target not in queued:
                    queued.add(target)
                    queue.append(target)

    ever_set = {name for node in graph.nodes.values() for found in _sets(node).values() for name in found}
    for node_id, found in reads.items():
        warned: set[str] = set()
        for loc, name in found:
            if name in warned or known[node_id] & bit[name]:
                continue
            warned.add(name)
            why = "is not set on every path from start to here" if name in ever_set else "nothing in this flow sets"
            yield Finding(("nodes", node_id, *loc), "warning", f"node {node_id!r} reads vars.{name}, which {why}")


def _reads(node: BaseNode) -> list[tuple[Loc, str]]:
    """The variables `node` reads before setting them itself, each with where it is read."""
    found: list[tuple[Loc, str]] = []
    own: set[str] = set()  # a set node's earlier variables, which its later ones may read
    for loc, value in _values(node):
        if isinstance(value, Expression):
            names = sorted(value.reads)
        elif isinstance(value, str) and has_template(value):
            try:
                names = [n.split(".")[1] for n in template_names(value) if n.startswith("vars.")]
            except TemplateError:
                continue
        else:
            continue
        found.extend((loc, name) for name in names if name not in own)
        if isinstance(node, SetNode) and loc[0] == "vars":
            own.add(str(loc[1]))
    return found


def _sets(node: BaseNode) -> dict[str | int | None, frozenset[str]]:
    """What `node` sets, by the field of the transition it leaves by (None: every way out)."""
    if isinstance(node, SetNode):
        return {None: frozenset(node.vars)}
    if isinstance(node, HttpNode):
        # The node sets the status, or clears it (null: no answer), on both ways out.
        return {"next": frozenset({*node.save, "http_status"}), "on_error": frozenset({"http_status"})}
    var = getattr(node, "var", None)  # gather, record: the input goes into `var` on the way to `next`
    return {"next": frozenset({var})} if isinstance(var, str) else {}


def _values(value: Any, loc: Loc = (), depth: int = 0) -> Iterator[tuple[Loc, Any]]:
    """Every leaf value in a node's fields, with its path, in field order."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _values(getattr(value, name), (*loc, name), depth + 1)
    elif depth > 32:  # an http body is at most 16 deep; nothing else nests
        return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _values(item, (*loc, key), depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _values(item, (*loc, index), depth + 1)
    else:
        yield loc, value


def _refused_numbers(flow: Flow, allowed: Callable[[str], bool]) -> Iterator[Finding]:
    """A transfer to an outside number that no outbound trunk allows: the call would fail."""
    for node_id, node in flow.nodes.items():
        to = getattr(node, "to", None)
        if (node.type == "transfer" and isinstance(to, str) and to.startswith("number:")
                and not allowed(to.removeprefix("number:"))):
            yield Finding(("nodes", node_id, "to"), "error",
                          f"no outbound trunk allows {to} (set outbound_trunk and an outbound_allow pattern "
                          "matching it in the settings)")
