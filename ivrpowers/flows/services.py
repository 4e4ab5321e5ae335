"""What a flow may use beyond the call itself: small protocols, given to `run_flow` as `Services`.

The interpreter stays pure: it never reads the system clock or opens a socket. The controller
passes real implementations (`ivrpowers.calls.services`), the simulator and tests pass fakes that
follow the same contract (`ivrpowers.flows.testing`). A service may be absent: a node that needs
it then ends the run with a flow error naming it, never a silent no-op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from .schema import Flow

__all__ = ["Acd", "Clock", "FlowSource", "HandOff", "Http", "HttpError", "HttpResponse", "QueueRefused",
           "QueueRequest", "QueueTicket", "QueueUpdate", "Recorder", "Recording", "Services", "TransferResult",
           "Transferer"]


class Clock(Protocol):
    """The time as the flow sees it, in its time zone (opening hours, greetings by time of day)."""

    @property
    def tz(self) -> tzinfo: ...

    def now(self) -> datetime:
        """Now, timezone-aware, in `tz`."""


@dataclass(frozen=True)
class HttpResponse:
    """`body` is the decoded JSON when the response says it is JSON, else the text."""

    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class HttpError(Exception):
    """No response: connection refused or reset, bad URL, or the timeout expired."""


class Http(Protocol):
    """An HTTP client for web-service nodes. HTTP error statuses are responses, not exceptions."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        timeout: float = 5.0,
    ) -> HttpResponse: ...


@dataclass(frozen=True)
class Recording:
    """A finished recording: its stored name (what `recording:NAME` plays), its length in seconds,
    its size in bytes (0 if unknown), and why it stopped ("finished": silence, the time limit or the
    terminator; "hangup": the caller left, the message is kept)."""

    name: str
    duration: float
    reason: str
    size: int = 0


class Recorder(Protocol):
    """Records the caller on the call the run drives; the recorder names the recording (`label`
    says what for, e.g. the node id)."""

    async def record(
        self, label: str, *, max_duration: float, max_silence: float | None = None, beep: bool = True,
        terminator: str | None = "#", started: Callable[[str], Awaitable[None]] | None = None,
    ) -> Recording:
        """`started` is awaited with the recording's name once it is recording."""
        ...


@dataclass(frozen=True)
class HandOff:
    """Where a flow handed its call to: the run ends and the controller must not hang up.

    `kind` says what took the call ("queue", "transfer"...), `target` which one, `detail` anything
    the new owner of the interaction needs. It is journaled, so it must be JSON-ready.
    """

    kind: str
    target: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "detail": dict(self.detail)}


@dataclass(frozen=True)
class QueueRequest:
    """A call joining a queue: `skills` it needs (name -> level), `data` the agent sees (the call's
    variables), `max_wait` the flow's own limit (None: the queue's)."""

    queue: str
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueUpdate:
    """What happened to a call in a queue. `ringing`: offered to `agent`; `connected`: the agent
    answered and the call is bridged with them; `ended`: the agent's side of the conversation is
    over and the caller is still there (`caller_hung_up` in `detail` when not; `transferred_to`:
    the agent sent them to that queue, where they wait again); `timeout`: the
    queue's `max_wait` passed; `no_agents`: the last agent logged out of a queue that refuses
    callers then. `position` (1 = next) and `estimated_wait` (seconds) come with `waiting`."""

    kind: Literal["waiting", "ringing", "connected", "ended", "timeout", "no_agents"]
    agent: str | None = None
    position: int | None = None
    estimated_wait: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


class QueueRefused(Exception):
    """A queue that won't take the call: `reason` is "no_agents" (nobody logged in, and the queue
    refuses callers then) or "unknown_queue"; from `QueueTicket.park`, "callback_refused" (no
    outbound trunk may call that number back)."""

    def __init__(self, reason: Literal["no_agents", "unknown_queue", "callback_refused"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


class QueueTicket(Protocol):
    """The call's place in a queue, from `Acd.join` until it leaves, is parked or its conversation ends."""

    @property
    def hold(self) -> str:
        """What the caller hears while waiting: `moh:CLASS`."""

    @property
    def announce(self) -> Mapping[str, Any]:
        """The queue's announcements: `every` (seconds, 0: never), `position`, `wait_time` (booleans)."""

    async def update(self) -> QueueUpdate:
        """The next change (waits as long as it takes)."""

    async def status(self) -> QueueUpdate:
        """Where the call is now (a `waiting` update with position and estimate)."""

    async def leave(self, reason: Literal["left", "timeout", "caller_hangup"]) -> None:
        """The call leaves the queue (a no-op once it has)."""

    async def park(self, number: str) -> None:
        """Callback: the call keeps its place, the caller hangs up; `number` is called back when an
        agent is free for it (the agent first). Raises QueueRefused("callback_refused") when that
        number may not be called (only the caller's own number from the trunk, or one the outbound
        trunk's allow-list takes); the call then waits on."""


class Acd(Protocol):
    """Automatic call distribution: the call waits in a queue for an agent."""

    async def join(self, request: QueueRequest) -> QueueTicket:
        """Put the call in the queue (again, keeping its place, for a call adopted while waiting).
        Raises QueueRefused."""


@dataclass(frozen=True)
class TransferResult:
    """How a transfer attempt ended: `answered` (the caller and the target are bridged: the flow
    hands the call off), `no_answer`, `busy` or `failed` (`detail` says why: refused target,
    unreachable endpoint, a cause code). `detail` also has `ring_ms`, and is journaled."""

    outcome: Literal["answered", "no_answer", "busy", "failed"]
    detail: Mapping[str, Any] = field(default_factory=dict)


class Transferer(Protocol):
    """Connects the call to another party: `endpoint:NAME` (a phone or browser user of this
    Asterisk) or `number:DIGITS` (an outside number, through the outbound trunk, only where the
    operator's allow-list says so)."""

    async def transfer(self, target: str, *, timeout: float, caller_id: str | None = None) -> TransferResult: ...


class FlowSource(Protocol):
    """Other flows, for `subflow` nodes. Both raise LookupError when there is no such flow."""

    async def published(self, name: str) -> tuple[Flow, int]:
        """The version of `name` live now, and its number."""

    async def version(self, name: str, version: int) -> Flow:
        """A given version (the one a call pinned when it first entered the subflow)."""


@dataclass(frozen=True)
class Services:
    """The services one run may use; None means not available here."""

    clock: Clock | None = None
    http: Http | None = None
    recorder: Recorder | None = None
    acd: Acd | None = None
    flows: FlowSource | None = None
    transfer: Transferer | None = None  # per call: the controller gives each session its own
    # `{{ secrets.NAME }}` in http nodes: from the operator's settings, never from a flow file.
    secrets: Mapping[str, str] = field(default_factory=dict)
