"""The first four node types: `answer`, `play`, `menu` and `hangup`."""

from __future__ import annotations

from ..interpreter import END_CALL, EndCall, Run, handles
from ..schema import AnswerNode, HangupNode, MenuNode, PlayNode


@handles(AnswerNode)
async def _answer(run: Run, node_id: str, node: AnswerNode) -> str | None:
    await run.call.answer()
    return node.next


@handles(PlayNode)
async def _play(run: Run, node_id: str, node: PlayNode) -> str | None:
    # A digit that barges in only cuts the playback short; it doesn't carry over to the next node.
    await run.play(node_id, node.media, barge_in=node.barge_in)
    return node.next


@handles(HangupNode)
async def _hangup(run: Run, node_id: str, node: HangupNode) -> EndCall:
    return END_CALL


@handles(MenuNode)
async def _menu(run: Run, node_id: str, node: MenuNode) -> str | None:
    attempts = 1 + node.retries
    # Resumed after adoption: the attempt it was on, so the caller's used tries stay used.
    first = run.state.partial.get("attempt", 1)
    first = first if isinstance(first, int) and first >= 1 else 1
    last_failure = "invalid" if run.state.partial.get("last_failure") == "invalid" else "timeout"
    typed_ahead: str | None = None  # a digit that interrupted the invalid prompt answers the next attempt
    for attempt in range(first, attempts + 1):
        digit = typed_ahead or await run.play(node_id, node.prompt, barge_in=True)
        typed_ahead = None
        if digit is None:
            digit = await run.read_digit(node_id, node.timeout)
        if digit is None:
            last_failure = "timeout"
            run.state.partial = {"attempt": attempt + 1, "last_failure": last_failure}
            await run.record("menu_timeout", node_id, {"attempt": attempt})
            continue
        target = node.options.get(digit)
        if target is not None:
            await run.record("menu_selected", node_id, {"digit": digit, "next": target})
            return target
        last_failure = "invalid"
        run.state.partial = {"attempt": attempt + 1, "last_failure": last_failure}
        await run.record("menu_invalid", node_id, {"digit": digit, "attempt": attempt})
        if attempt < attempts and node.invalid_prompt:
            typed_ahead = await run.play(node_id, node.invalid_prompt, barge_in=True)
    return node.on_invalid if last_failure == "invalid" else node.on_timeout
