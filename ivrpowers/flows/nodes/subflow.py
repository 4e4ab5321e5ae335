"""`subflow`: run another flow by name, sharing the call's variables, and come back.

The version is the one published when the call first enters it; the call keeps that version (the
run state's `pinned`), even across an adoption by another controller.
"""

from __future__ import annotations

from ..interpreter import FlowFailed, Run, SubflowCall, handles
from ..schema import SubflowNode


@handles(SubflowNode)
async def _subflow(run: Run, node_id: str, node: SubflowNode) -> SubflowCall:
    pinned = run.state.pinned.get(node.flow)
    try:
        if pinned is not None:
            flow, version = await run.flows.version(node.flow, pinned), pinned
        else:
            flow, version = await run.flows.published(node.flow)
    except LookupError as exc:
        raise FlowFailed(f"subflow {node.flow!r}: {exc}") from None
    return SubflowCall(node.flow, flow, version, node.next)
