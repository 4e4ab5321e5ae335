"""Runs a `Flow` on a `Call`, writing the call's timeline to a `Journal`.

Pure: no ARI, no clock, no storage. Everything it does to the call goes through the `Call`
protocol, and everything worth remembering goes to the journal, which is what makes flows testable
with a scripted fake and simulatable without Asterisk.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .call import Call, CallerHungUp, Journal
from .schema import AnswerNode, BaseNode, Flow, HangupNode, MenuNode, PlayNode
from .templates import TemplateError, render

__all__ = ["DEFAULT_MAX_STEPS", "FlowResult", "Outcome", "base_context", "run_flow"]

# Far beyond any real caller's path through a flow, far below a hot loop's damage.
DEFAULT_MAX_STEPS = 1000

Outcome = Literal["hangup_by_flow", "caller_hangup", "error"]


@dataclass(frozen=True)
class FlowResult:
    """How a run ended.

    `reason` is the `flow_ended` journal reason: the outcome itself, or for an error what kind
    ("step_limit", "error"). `last_node` is the node running when it ended (None if none started).
    """

    outcome: Outcome
    reason: str
    last_node: str | None
    steps: int
    error: str | None = None


class _FlowFailed(Exception):
    """The flow can't go on (bad start node, template that fails at run time, step limit...)."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


# A handler runs one node and returns the id of the next node, or None to end the flow (hang up).
NodeT = TypeVar("NodeT", bound=BaseNode)
Handler = Callable[["_Run", str, Any], Awaitable[str | None]]
_HANDLERS: dict[type[BaseNode], Handler] = {}


def handles(node_type: type[NodeT]) -> Callable[[Callable[[_Run, str, NodeT], Awaitable[str | None]]], Handler]:
    def register(handler: Callable[[_Run, str, NodeT], Awaitable[str | None]]) -> Handler:
        _HANDLERS[node_type] = handler
        return handler

    return register


def base_context(flow: Flow, call: Call) -> dict[str, Any]:
    """The names every flow's templates may use (`templates.TEMPLATE_NAMES`)."""
    return {
        "caller": {"number": call.caller_number, "name": call.caller_name},
        "dialed": call.dialed,
        "flow": {"name": flow.name},
    }


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    # Deep, so an extra {"caller": {"region": ...}} adds to caller.* instead of hiding caller.number.
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


async def run_flow(
    flow: Flow,
    call: Call,
    journal: Journal,
    *,
    context: Mapping[str, Any] | None = None,
    start_at: str | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> FlowResult:
    """Run `flow` on `call` until it hangs up, the caller does, or it fails.

    `context` adds names for templates on top of `base_context`. `start_at` resumes at a node (an
    adopted call after a controller restart) instead of `flow.start`. On "error" the call is left
    as it is: the owner decides what a failed flow means (hang up, transfer to a human...).
    Cancellation propagates untouched, so the controller can stop a run and resume it elsewhere.
    """
    run = _Run(flow, call, journal, _merge(base_context(flow, call), context or {}))
    node_id: str | None = start_at if start_at is not None else flow.start
    current: str | None = None
    steps = 0
    try:
        while node_id is not None:
            node = flow.nodes.get(node_id)
            if node is None:
                raise _FlowFailed(f"no node named {node_id!r}")
            if steps >= max_steps:
                raise _FlowFailed(f"{max_steps} nodes run without ending: a loop with no caller input?", "step_limit")
            steps += 1
            current = node_id
            await journal.record("node_entered", current, {"type": node.type})
            node_id = await _HANDLERS[type(node)](run, current, node)
        await journal.record("flow_hangup", current)
        try:
            await call.hangup()
        except CallerHungUp:
            pass  # they beat us to it; the call ended the way the flow wanted
        return await _end(journal, current, steps, "hangup_by_flow", "hangup_by_flow")
    except CallerHungUp:
        await journal.record("caller_hangup", current)
        return await _end(journal, current, steps, "caller_hangup", "caller_hangup")
    except _FlowFailed as exc:
        return await _end(journal, current, steps, "error", exc.reason, str(exc))
    except Exception as exc:  # a Call that failed (ARI down...): the run ends, the controller lives on
        return await _end(journal, current, steps, "error", "error", f"{type(exc).__name__}: {exc}")


async def _end(
    journal: Journal, node: str | None, steps: int, outcome: Outcome, reason: str, error: str | None = None
) -> FlowResult:
    detail: dict[str, Any] = {"reason": reason}
    if error is not None:
        detail["error"] = error
    await journal.record("flow_ended", node, detail)
    return FlowResult(outcome=outcome, reason=reason, last_node=node, steps=steps, error=error)


class _Run:
    """What node handlers share for one run."""

    def __init__(self, flow: Flow, call: Call, journal: Journal, context: dict[str, Any]) -> None:
        self.flow = flow
        self.call = call
        self.journal = journal
        self.context = context

    def render(self, media: Sequence[str]) -> list[str]:
        uris = []
        for item in media:
            try:
                uri = render(item, self.context)
            except TemplateError as exc:
                raise _FlowFailed(str(exc)) from None
            # `digits:` for an anonymous caller: nothing to say, and Asterisk rejects the empty URI.
            if uri.partition(":")[2].strip():
                uris.append(uri)
        return uris

    async def play(self, node_id: str, media: Sequence[str], *, barge_in: bool) -> str | None:
        """Play rendered media; return the digit that interrupted it, if any."""
        uris = self.render(media)
        if not uris:
            return None
        try:
            digit = await self.call.play(uris, barge_in=barge_in)
        except CallerHungUp:
            # The timeline should show what the caller was hearing when they left.
            await self.journal.record("prompt_played", node_id, {"media": uris, "interrupted_by": "hangup"})
            raise
        detail: dict[str, Any] = {"media": uris}
        if digit is not None:
            detail["interrupted_by"] = digit
        await self.journal.record("prompt_played", node_id, detail)
        if digit is not None:
            await self.journal.record("dtmf_received", node_id, {"digit": digit})
        return digit

    async def read_digit(self, node_id: str, timeout: float) -> str | None:
        digit = await self.call.read_digit(timeout)
        if digit is not None:
            await self.journal.record("dtmf_received", node_id, {"digit": digit})
        return digit


@handles(AnswerNode)
async def _answer(run: _Run, node_id: str, node: AnswerNode) -> str | None:
    await run.call.answer()
    return node.next


@handles(PlayNode)
async def _play(run: _Run, node_id: str, node: PlayNode) -> str | None:
    # A digit that barges in only cuts the playback short; it doesn't carry over to the next node.
    await run.play(node_id, node.media, barge_in=node.barge_in)
    return node.next


@handles(HangupNode)
async def _hangup(run: _Run, node_id: str, node: HangupNode) -> str | None:
    return None


@handles(MenuNode)
async def _menu(run: _Run, node_id: str, node: MenuNode) -> str | None:
    attempts = 1 + node.retries
    typed_ahead: str | None = None  # a digit that interrupted the invalid prompt answers the next attempt
    last_failure = "timeout"
    for attempt in range(1, attempts + 1):
        digit = typed_ahead or await run.play(node_id, node.prompt, barge_in=True)
        typed_ahead = None
        if digit is None:
            digit = await run.read_digit(node_id, node.timeout)
        if digit is None:
            last_failure = "timeout"
            await run.journal.record("menu_timeout", node_id, {"attempt": attempt})
            continue
        target = node.options.get(digit)
        if target is not None:
            await run.journal.record("menu_selected", node_id, {"digit": digit, "next": target})
            return target
        last_failure = "invalid"
        await run.journal.record("menu_invalid", node_id, {"digit": digit, "attempt": attempt})
        if attempt < attempts and node.invalid_prompt:
            typed_ahead = await run.play(node_id, node.invalid_prompt, barge_in=True)
    return node.on_invalid if last_failure == "invalid" else node.on_timeout
