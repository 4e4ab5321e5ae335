"""`set` and `branch`: variables and decisions, no media."""

from __future__ import annotations

from ..expressions import truthy
from ..interpreter import Run, handles
from ..schema import BranchNode, SetNode


@handles(SetNode)
async def _set(run: Run, node_id: str, node: SetNode) -> str | None:
    # In order: a later expression sees the values set before it.
    for name, expression in node.vars.items():
        run.state.vars[name] = run.evaluate(node_id, expression)
    await run.record("vars_set", node_id, {"names": list(node.vars)})
    return node.next


@handles(BranchNode)
async def _branch(run: Run, node_id: str, node: BranchNode) -> str | None:
    for index, case in enumerate(node.cases):
        if truthy(run.evaluate(node_id, case.when)):
            await run.record("branch_taken", node_id, {"case": index, "when": case.when.source, "next": case.next})
            return case.next
    await run.record("branch_taken", node_id, {"case": "default", "next": node.default})
    return node.default
