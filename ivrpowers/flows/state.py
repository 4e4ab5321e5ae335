"""A run's state, journaled so another controller can resume the call where it was.

The state is what a run knows beyond the flow itself: the node it is in, the flow's variables,
the subflow stack, and the current node's partial input (a menu's attempt number...). It travels
in the journal, on events the run writes anyway, never as rows of its own unless a node asks:
an event's detail gets a `"state"` key holding only the parts that changed since the last one
(each part whole: `vars`, `stack`, `partial`). `node_entered` implies an empty `partial`.

`resume_state` folds a call's timeline back into a `RunState`; `run_flow(state=...)` resumes it,
applying the node's adoption policy (`schema.BaseNode.adopt_policy`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["STATE_KEY", "RunState", "TimelineEntry", "resume_state"]

STATE_KEY = "state"


@dataclass
class RunState:
    """`node` is the node running (or about to); `vars` the flow's variables; `stack` the subflow
    frames, outermost first (JSON objects, for the subflow node to define); `partial` what the
    current node had gathered, in its own terms (e.g. a menu's {"attempt": 2})."""

    node: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    stack: list[dict[str, Any]] = field(default_factory=list)
    partial: dict[str, Any] = field(default_factory=dict)
    # The version of each subflow the call entered: it keeps it, whatever is published later.
    pinned: dict[str, int] = field(default_factory=dict)
    # Variables never journaled (a `secret: true` gather's PIN): an adopted call resumes without them.
    secret: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "vars": copy.deepcopy(self.vars),
            "stack": copy.deepcopy(self.stack),
            "partial": copy.deepcopy(self.partial),
            "pinned": dict(self.pinned),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunState:
        node = data.get("node")
        return cls(
            node=node if isinstance(node, str) else None,
            vars=copy.deepcopy(dict(data.get("vars") or {})),
            stack=copy.deepcopy(list(data.get("stack") or [])),
            partial=copy.deepcopy(dict(data.get("partial") or {})),
            pinned={k: v for k, v in dict(data.get("pinned") or {}).items() if isinstance(v, int)},
        )

    def apply(self, delta: Mapping[str, Any]) -> None:
        """Take the parts a journaled `"state"` detail carries."""
        if "vars" in delta:
            self.vars = copy.deepcopy(dict(delta["vars"]))
        if "stack" in delta:
            self.stack = copy.deepcopy(list(delta["stack"]))
        if "partial" in delta:
            self.partial = copy.deepcopy(dict(delta["partial"]))
        if "pinned" in delta:
            self.pinned = {k: v for k, v in dict(delta["pinned"]).items() if isinstance(v, int)}


class TimelineEntry(Protocol):
    """A journal event as stored: `flows.testing.Entry`, or a `store.models.CallEvent` row."""

    @property
    def type(self) -> str: ...

    @property
    def node(self) -> str | None: ...

    @property
    def detail(self) -> Mapping[str, Any] | None: ...


def resume_state(entries: Iterable[TimelineEntry]) -> RunState | None:
    """The state of the run a call's timeline (in order) shows, or None if no run is in progress
    (no node entered yet, or the run ended)."""
    state: RunState | None = None
    carried = RunState()  # vars and stack from before the first node_entered seen
    for entry in entries:
        detail = entry.detail or {}
        if entry.type == "node_entered":
            base = state or carried
            state = RunState(node=entry.node, vars=base.vars, stack=base.stack, pinned=base.pinned)
        delta = detail.get(STATE_KEY)
        if isinstance(delta, Mapping):
            (state or carried).apply(delta)
        if entry.type == "flow_ended" and state is not None:
            carried, state = state, None
    return state


class StateJournal:
    """Tracks what of a `RunState` the journal already has, to attach only what changed."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self._vars: dict[str, Any] = {}
        self._stack: list[dict[str, Any]] = []
        self._partial: dict[str, Any] = {}
        self._pinned: dict[str, int] = {}

    def entered(self, node: str, partial: Mapping[str, Any] | None = None) -> None:
        """A node starts: `node_entered` itself says the partial input is empty."""
        self.state.node = node
        self.state.partial = dict(partial or {})
        self._partial = {}

    def delta(self) -> dict[str, Any] | None:
        """What changed since the last call (and now counts as journaled), or None."""
        changed: dict[str, Any] = {}
        state = self.state
        shown = {k: v for k, v in state.vars.items() if k not in state.secret} if state.secret else state.vars
        if shown != self._vars:
            self._vars = copy.deepcopy(shown)
            changed["vars"] = copy.deepcopy(shown)
        if state.stack != self._stack:
            self._stack = copy.deepcopy(state.stack)
            changed["stack"] = copy.deepcopy(state.stack)
        if state.partial != self._partial:
            self._partial = copy.deepcopy(state.partial)
            changed["partial"] = copy.deepcopy(state.partial)
        if state.pinned != self._pinned:
            self._pinned = dict(state.pinned)
            changed["pinned"] = dict(state.pinned)
        return changed or None
