"""Which flows a flow runs as subflows, and whether publishing one would make a cycle of them.

A cycle (a runs b, b runs a) would loop a caller until the run's depth limit; the interpreter stops
it at run time, and `flow validate`, `flow import --publish` and `flow publish` refuse it before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .schema import Flow, SubflowNode

__all__ = ["subflow_cycle", "subflow_targets"]


def subflow_targets(flow: Flow) -> set[str]:
    return {node.flow for node in flow.nodes.values() if isinstance(node, SubflowNode)}


def subflow_cycle(start: str, calls: Mapping[str, Collection[str]]) -> list[str] | None:
    """A cycle of subflow calls through `start`, as names (`["a", "b", "a"]`), or None."""
    path: list[str] = [start]
    seen: set[str] = set()

    def visit(name: str) -> list[str] | None:
        for target in sorted(calls.get(name, ())):
            if target == start:
                return [*path, start]
            if target in seen or target in path:
                continue
            path.append(target)
            found = visit(target)
            if found:
                return found
            path.pop()
            seen.add(target)
        return None

    return visit(start)
