"""`transfer`: ring a phone, a browser user or an allowed outside number; bridged on answer."""

from __future__ import annotations

from ..interpreter import FlowFailed, Run, handles
from ..schema import TransferNode
from ..services import HandOff


@handles(TransferNode)
async def _transfer(run: Run, node_id: str, node: TransferNode) -> str | HandOff | None:
    if run.services.transfer is None:
        raise FlowFailed(f"node {node_id!r} needs the transfer service, which is not available here")
    caller_id = run.text(node.caller_id) if node.caller_id else None
    await run.record("transfer_ringing", node_id, {"to": node.to, "timeout": node.timeout})
    result = await run.services.transfer.transfer(node.to, timeout=node.timeout, caller_id=caller_id)
    detail = {"to": node.to, "outcome": result.outcome, **dict(result.detail)}
    await run.record("transfer_" + result.outcome, node_id, detail)
    if result.outcome == "answered":
        return HandOff("transfer", node.to, dict(result.detail))
    return {"no_answer": node.on_no_answer, "busy": node.on_busy}.get(result.outcome, node.on_failure)
