"""Runs a `Flow` on a `Call`, writing the call's timeline to a `Journal`.

Pure: no ARI, no clock, no storage. Everything it does to the call goes through the `Call`
protocol, what it needs from the world through `Services`, and everything worth remembering goes
to the journal (including the run's state, see `flows.state`), which is what makes flows testable
with a scripted fake, simulatable without Asterisk, and resumable by another controller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from .calendars import now_fields, time_zone
from .call import Call, CallerHungUp, Journal
from .expressions import Expression, ExpressionError, Scope
from .schema import BaseNode, Flow
from .services import Acd, Clock, FlowSource, HandOff, Http, Recorder, Services
from .state import STATE_KEY, RunState, StateJournal
from .templates import TemplateError, render

__all__ = ["DEFAULT_MAX_STEPS", "END_CALL", "FlowFailed", "FlowResult", "Outcome", "Run", "SubflowCall", "base_context",
           "handles", "run_flow"]

# Far beyond any real caller's path through a flow, far below a hot loop's damage.
DEFAULT_MAX_STEPS = 1000
# What the timeline shows for a digit of a `secret: true` gather (a PIN): that a key was pressed.
SECRET_DIGIT = "hidden"

# handed_off: the flow gave the call to something else (queue, transfer); the owner must not hang up.
Outcome = Literal["hangup_by_flow", "caller_hangup", "error", "handed_off"]


@dataclass(frozen=True)
class FlowResult:
    """How a run ended.

    `reason` is the `flow_ended` journal reason: the outcome itself, or for an error what kind
    ("step_limit", "error"). `last_node` is the node running when it ended (None if none started).
    `handoff` is `HandOff.to_dict()` for "handed_off"; `state` the run's state at the end.
    """

    outcome: Outcome
    reason: str
    last_node: str | None
    steps: int
    error: str | None = None
    handoff: dict[str, Any] | None = None
    state: RunState | None = None


class FlowFailed(Exception):
    """The flow can't go on (bad start node, template that fails at run time, missing service...)."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


class EndCall:
    """A handler's answer meaning "hang up now", even inside a subflow (where None returns)."""


END_CALL = EndCall()
MAX_SUBFLOW_DEPTH = 8


@dataclass(frozen=True)
class SubflowCall:
    """A handler's answer meaning "run this flow, then come back to `return_to`"."""

    name: str
    flow: Flow
    version: int
    return_to: str | None


# A handler runs one node and returns the id of the next node, None to end the flow (hang up; in a
# subflow: return to the caller), END_CALL to hang up, a HandOff to end it without hanging up, or a
# SubflowCall.
Next = str | None | HandOff | EndCall | SubflowCall
NodeT = TypeVar("NodeT", bound=BaseNode)
Handler = Callable[["Run", str, Any], Awaitable[Next]]
_HANDLERS: dict[type[BaseNode], Handler] = {}


def handles(node_type: type[NodeT]) -> Callable[[Callable[[Run, str, NodeT], Awaitable[Next]]], Handler]:
    def register(handler: Callable[[Run, str, NodeT], Awaitable[Next]]) -> Handler:
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
    services: Services | None = None,
    state: RunState | None = None,
    context: Mapping[str, Any] | None = None,
    start_at: str | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> FlowResult:
    """Run `flow` on `call` until it hangs up, the caller does, it hands the call off, or it fails.

    `services` are what nodes may use beyond the call (absent ones fail the nodes that need them).
    `state` resumes an adopted call's run (`flows.state.resume_state`): its node is entered again
    under that node's adoption policy (rerun, skip to `next`, or resume its partial input), with
    its variables and stack. `start_at` starts fresh at a node instead of `flow.start`.
    `context` adds names for templates on top of `base_context`. On "error" the call is left as
    it is: the owner decides what a failed flow means (hang up, transfer to a human...).
    Cancellation propagates untouched, so the controller can stop a run and resume it elsewhere.
    """
    adopting = state is not None and state.node is not None
    run_state = RunState.from_dict(state.to_dict()) if state is not None else RunState()  # the caller's stays as it was
    run = Run(flow, call, journal, _merge(base_context(flow, call), context or {}), services or Services(), run_state)
    node_id: str | EndCall | None = run_state.node if adopting else start_at if start_at is not None else flow.start
    current: str | None = None
    steps = 0
    try:
        if adopting and run_state.stack:
            await run.switch_to(await run.flow_of(run_state.stack[-1]))
        while True:
            if node_id is None and run_state.stack:
                node_id = await run.leave_subflow(current)
                continue
            if node_id is None or isinstance(node_id, EndCall):
                break
            node = run.flow.nodes.get(node_id)
            if node is None:
                raise FlowFailed(f"no node named {node_id!r} in flow {run.flow.name!r}")
            if steps >= max_steps:
                raise FlowFailed(f"{max_steps} nodes run without ending: a loop with no caller input?", "step_limit")
            detail: dict[str, Any] = {"type": node.type}
            if run_state.stack:
                detail["flow"] = run.flow.name
            partial: dict[str, Any] = {}
            if adopting:
                adopting = False
                policy = node.adopt_policy()
                if policy == "skip":
                    # As if the node had just finished: on to its `next` (none: the flow ends).
                    current = node_id
                    await run.record("node_skipped", current, {"type": node.type, "adopted": policy})
                    nxt = getattr(node, "next", None)
                    node_id = nxt if isinstance(nxt, str) else None
                    continue
                detail["adopted"] = policy
                if policy == "resume":
                    partial = run_state.partial
            steps += 1
            current = node_id
            run.states.entered(current, partial)
            await run.record("node_entered", current, detail)
            outcome = await _HANDLERS[type(node)](run, current, node)
            if isinstance(outcome, HandOff):
                return await run.end(current, steps, "handed_off", "handed_off", handoff=outcome)
            if isinstance(outcome, SubflowCall):
                node_id = await run.enter_subflow(current, outcome)
                continue
            node_id = outcome
        await run.record("flow_hangup", current)
        try:
            await call.hangup()
        except CallerHungUp:
            pass  # they beat us to it; the call ended the way the flow wanted
        return await run.end(current, steps, "hangup_by_flow", "hangup_by_flow")
    except CallerHungUp:
        await run.record("caller_hangup", current)
        return await run.end(current, steps, "caller_hangup", "caller_hangup")
    except FlowFailed as exc:
        return await run.end(current, steps, "error", exc.reason, str(exc))
    except Exception as exc:  # a Call that failed (ARI down...): the run ends, the controller lives on
        return await run.end(current, steps, "error", "error", f"{type(exc).__name__}: {exc}")


class Run:
    """What node handlers share for one run: the call, the journal, the services, the state."""

    def __init__(
        self, flow: Flow, call: Call, journal: Journal, context: dict[str, Any], services: Services, state: RunState
    ) -> None:
        self.flow = flow  # the flow running now: `main`, or a subflow it entered
        self.main = flow
        self._flows: dict[tuple[str, int], Flow] = {}
        self.call = call
        self.journal = journal
        self.context = context
        self.services = services
        self.state = state
        self.states = StateJournal(state)

    # -- journal -------------------------------------------------------------------------------
    async def record(self, type: str, node: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        """Journal an event; the state's changes since the last event ride along in its detail."""
        delta = self.states.delta()
        if delta is not None:
            detail = {**(detail or {}), STATE_KEY: delta}
        await self.journal.record(type, node, detail)

    async def checkpoint(self, node: str | None) -> None:
        """Journal the state now if it changed: for a node whose changes must survive a crash
        before its next event (a `skip` node that sets variables, say)."""
        if (delta := self.states.delta()) is not None:
            await self.journal.record("state", node, {STATE_KEY: delta})

    async def end(
        self,
        node: str | None,
        steps: int,
        outcome: Outcome,
        reason: str,
        error: str | None = None,
        *,
        handoff: HandOff | None = None,
    ) -> FlowResult:
        detail: dict[str, Any] = {"reason": reason}
        if error is not None:
            detail["error"] = error
        handed = handoff.to_dict() if handoff is not None else None
        if handed is not None:
            detail["handoff"] = handed
        await self.record("flow_ended", node, detail)
        return FlowResult(outcome, reason, node, steps, error, handed, self.state)

    # -- subflows ------------------------------------------------------------------------------
    async def flow_of(self, frame: Mapping[str, Any]) -> Flow:
        """The flow a stack frame runs (the version the call pinned)."""
        name, version = frame.get("flow"), frame.get("version")
        if not isinstance(name, str) or not isinstance(version, int):
            raise FlowFailed(f"a subflow frame without its flow and version: {dict(frame)!r}")
        key = (name, version)
        if key not in self._flows:
            try:
                self._flows[key] = await self.flows.version(name, version)
            except LookupError as exc:
                raise FlowFailed(f"subflow {name!r} v{version}: {exc}") from None
        return self._flows[key]

    async def switch_to(self, flow: Flow) -> None:
        self.flow = flow
        self.context["flow"] = {"name": flow.name}

    async def enter_subflow(self, node_id: str, call: SubflowCall) -> str:
        on_stack = [self.main.name, *(frame.get("flow") for frame in self.state.stack)]
        if call.name in on_stack:
            raise FlowFailed(f"subflow cycle: {' -> '.join(map(str, on_stack))} -> {call.name}")
        if len(self.state.stack) >= MAX_SUBFLOW_DEPTH:
            raise FlowFailed(f"subflows nested more than {MAX_SUBFLOW_DEPTH} deep")
        self.state.stack.append({"flow": call.name, "version": call.version, "return_to": call.return_to})
        self.state.pinned[call.name] = call.version
        self._flows[(call.name, call.version)] = call.flow
        await self.record("subflow_entered", node_id, {"flow": call.name, "version": call.version})
        await self.switch_to(call.flow)
        return call.flow.start

    async def leave_subflow(self, node_id: str | None) -> str | None:
        frame = self.state.stack.pop()
        await self.switch_to(await self.flow_of(self.state.stack[-1]) if self.state.stack else self.main)
        await self.record("subflow_left", node_id, {"flow": frame.get("flow"), "next": frame.get("return_to")})
        return_to = frame.get("return_to")
        return return_to if isinstance(return_to, str) else None

    # -- services ------------------------------------------------------------------------------
    def _missing(self, name: str) -> FlowFailed:
        return FlowFailed(f"node {self.state.node!r} needs the {name} service, which is not available here")

    @property
    def clock(self) -> Clock:
        if self.services.clock is None:
            raise self._missing("clock")
        return self.services.clock

    @property
    def http(self) -> Http:
        if self.services.http is None:
            raise self._missing("HTTP")
        return self.services.http

    @property
    def recorder(self) -> Recorder:
        if self.services.recorder is None:
            raise self._missing("recorder")
        return self.services.recorder

    @property
    def flows(self) -> FlowSource:
        if self.services.flows is None:
            raise self._missing("flows")
        return self.services.flows

    @property
    def acd(self) -> Acd:
        if self.services.acd is None:
            raise self._missing("ACD")
        return self.services.acd

    # -- values --------------------------------------------------------------------------------
    def now(self) -> datetime:
        """Now in the flow's time zone (its `timezone`, else the clock's)."""
        now = self.clock.now()
        return now.astimezone(time_zone(self.flow.timezone)) if self.flow.timezone else now

    def is_open(self, calendar: str) -> bool:
        return self.flow.calendars[calendar].opening_hours.is_open(self.now())

    def scope(self) -> Scope:
        return Scope(vars=self.state.vars, caller=self.context["caller"], dialed=self.context["dialed"],
                     flow=self.context["flow"], now=lambda: now_fields(self.now()), is_open=self.is_open)

    def evaluate(self, node_id: str, expression: Expression) -> Any:
        try:
            return expression.evaluate(self.scope())
        except ExpressionError as exc:
            raise FlowFailed(f"node {node_id!r}: {expression.source!r}: {exc}") from None

    def text(self, template: str, *, secrets: bool = False) -> str:
        """A template rendered with the call's names, its variables, (when used) the time, and with
        `secrets` the operator's flow secrets (an http node's request only)."""
        if "{{" not in template and "}}" not in template:
            return template  # most media: nothing to render (and checked when the flow loaded)
        context = {**self.context, "vars": self.state.vars}
        if "now." in template:
            context["now"] = now_fields(self.now())
        if secrets:
            context["secrets"] = dict(self.services.secrets)
        try:
            return render(template, context)
        except TemplateError as exc:
            raise FlowFailed(str(exc)) from None

    # -- media ---------------------------------------------------------------------------------
    def render(self, media: Sequence[str]) -> list[str]:
        uris = []
        for item in media:
            uri = self.text(item)
            # `digits:` for an anonymous caller: nothing to say, and Asterisk rejects the empty URI.
            if uri.partition(":")[2].strip():
                uris.append(uri)
        return uris

    async def play(
        self, node_id: str, media: Sequence[str], *, barge_in: bool, language: str | None = None, secret: bool = False
    ) -> str | None:
        """Play rendered media (in `language`, else the flow's); return the digit that interrupted it, if any.
        `secret`: the digit is the start of a PIN; the timeline says a key was pressed, not which."""
        uris = self.render(media)
        if not uris:
            return None
        try:
            digit = await self.call.play(uris, barge_in=barge_in, language=language or self.flow.language)
        except CallerHungUp:
            # The timeline should show what the caller was hearing when they left.
            await self.record("prompt_played", node_id, {"media": uris, "interrupted_by": "hangup"})
            raise
        detail: dict[str, Any] = {"media": uris}
        if digit is not None:
            detail["interrupted_by"] = SECRET_DIGIT if secret else digit
        await self.record("prompt_played", node_id, detail)
        if digit is not None:
            await self.record("dtmf_received", node_id, {"digit": SECRET_DIGIT if secret else digit})
        return digit

    async def read_digit(self, node_id: str, timeout: float) -> str | None:
        digit = await self.call.read_digit(timeout)
        if digit is not None:
            await self.record("dtmf_received", node_id, {"digit": digit})
        return digit
