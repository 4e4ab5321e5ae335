"""A scripted caller and an in-memory journal: run flows with no Asterisk.

Used by the unit tests and meant for the flow simulator: a script says what the caller does at
each moment the flow gives them a chance to act (during a playback, or while it waits for a digit).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal, NamedTuple

from .digits import CallMedia
from .schema import Flow
from .services import HttpError, HttpResponse, QueueRefused, QueueRequest, QueueUpdate, Recording, TransferResult

__all__ = [
    "CallerAction",
    "Entry",
    "FakeAcd",
    "FakeClock",
    "FakeFlows",
    "FakeHttp",
    "FakeRecorder",
    "FakeTransfer",
    "HangUp",
    "Interrupt",
    "ListJournal",
    "Listen",
    "Press",
    "ScriptedCall",
    "Silence",
]


@dataclass(frozen=True)
class Press:
    """A digit pressed while the flow waits for one (after any playback has finished)."""

    digit: str


@dataclass(frozen=True)
class Interrupt:
    """A digit pressed during the next playback: it stops a barge-in playback and is returned by
    it, or without barge-in stays buffered for the next wait."""

    digit: str


@dataclass(frozen=True)
class Listen:
    """The caller lets the next playback play to the end. Only needed to get past a playback when
    the next action is one a playback would take (`Interrupt`, `HangUp`): playbacks leave `Press`
    and `Silence` for the wait that follows them."""


@dataclass(frozen=True)
class Silence:
    """Nothing pressed during the next wait: it times out."""


@dataclass(frozen=True)
class HangUp:
    """The caller hangs up during the next playback or wait."""


CallerAction = Press | Interrupt | Listen | Silence | HangUp


class ScriptedCall:
    """A `Call` whose caller follows a script, with the real call's digit rules (`digits.CallMedia`).

    `actions` logs what the flow asked of the call: ("answer",), ("play", [uris], barge_in),
    ("read_digit", timeout), ("hangup",). `media_requests` logs what reached the media side:
    ("start", [uris]) and ("stop",), as the real call's ARI requests would.
    """

    def __init__(
        self,
        script: Iterable[CallerAction] = (),
        *,
        caller_number: str = "",
        caller_name: str = "",
        dialed: str = "100",
        when_done: Literal["silence", "hangup"] = "silence",
        clock: FakeClock | None = None,
    ) -> None:
        self.script: deque[CallerAction] = deque(script)
        self.clock = clock  # moved on by each wait that times out: simulated time
        self.when_done = when_done
        self._caller_number, self._caller_name, self._dialed = caller_number, caller_name, dialed
        self.actions: list[tuple[Any, ...]] = []
        self.languages: list[str | None] = []  # the language asked for by each play, in order
        self.media_requests: list[tuple[Any, ...]] = []
        self.answered = False
        self.hung_up_by: Literal["flow", "caller"] | None = None
        self.media = CallMedia(_ScriptedCaller(self))

    @property
    def caller_number(self) -> str:
        return self._caller_number

    @property
    def caller_name(self) -> str:
        return self._caller_name

    @property
    def dialed(self) -> str:
        return self._dialed

    def caller_leaves(self) -> None:
        self.hung_up_by = "caller"
        self.media.feed_gone()

    async def answer(self) -> None:
        self.media.check_alive()
        self.actions.append(("answer",))
        self.answered = True

    async def play(self, media: Sequence[str], *, barge_in: bool = True, language: str | None = None) -> str | None:
        self.media.check_alive()
        self.actions.append(("play", list(media), barge_in))
        self.languages.append(language)
        return await self.media.play(media, barge_in=barge_in, language=language)

    async def read_digit(self, timeout: float) -> str | None:
        self.media.check_alive()
        self.actions.append(("read_digit", timeout))
        return await self.media.read_digit(timeout)

    async def hangup(self) -> None:
        self.media.check_alive()
        self.actions.append(("hangup",))
        self.hung_up_by = "flow"
        self.media.feed_gone()

    async def hold(self, media: str | None) -> None:
        self.media.check_alive()
        self.actions.append(("hold", media))
        self.media_requests.append(("hold", media))


class _ScriptedCaller:
    """The `MediaDriver` of a `ScriptedCall`: each time the call waits, the caller does the next
    thing in the script (one action per wait, so the digit rules decide, not the script)."""

    def __init__(self, call: ScriptedCall) -> None:
        self.call = call

    async def start_playback(self, playback_id: str, media: Sequence[str], language: str | None = None) -> None:
        self.call.media_requests.append(("start", list(media)))

    async def stop_playback(self, playback_id: str) -> None:
        self.call.media_requests.append(("stop",))
        self.call.media.feed_playback_finished(playback_id)

    async def wait_for_caller(self, changed: asyncio.Event, timeout: float | None) -> bool:
        call, script = self.call, self.call.script
        playing = call.media.current_playback
        if playing is not None:
            action = script[0] if script else None
            if isinstance(action, HangUp):
                script.popleft()
                call.caller_leaves()
            elif isinstance(action, Interrupt):
                script.popleft()
                call.media.feed_dtmf(action.digit)
            else:
                if isinstance(action, Listen):
                    script.popleft()
                # Press and Silence are for the wait that follows the playback.
                call.media.feed_playback_finished(playing)
            return True
        if not script:
            if call.when_done == "hangup":
                call.caller_leaves()
                return True
            return self._timed_out(timeout)
        action = script.popleft()
        if isinstance(action, HangUp):
            call.caller_leaves()
            return True
        if isinstance(action, (Silence, Listen)):
            return self._timed_out(timeout)  # a Listen where nothing plays: the caller listens to the silence
        call.media.feed_dtmf(action.digit)
        return True

    def _timed_out(self, timeout: float | None) -> bool:
        if self.call.clock is not None and timeout is not None:
            # What is left of the wait, less the real microseconds the run took: rounded up to the
            # millisecond, a 60 s timeout moves the clock by 60 s exactly.
            self.call.clock.advance(timedelta(milliseconds=math.ceil(timeout * 1000)))
        return False


class Entry(NamedTuple):
    """One journal event; compares equal to a plain (type, node, detail) tuple."""

    type: str
    node: str | None
    detail: dict[str, Any]


class ListJournal:
    """A `Journal` that keeps events in a list."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    async def record(self, type: str, node: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        self.entries.append(Entry(type, node, dict(detail or {})))

    def types(self) -> list[str]:
        return [entry.type for entry in self.entries]

    def of_type(self, type: str) -> list[Entry]:
        return [entry for entry in self.entries if entry.type == type]


# -- services (see `ivrpowers.flows.services`) ---------------------------------------------------


class FakeClock:
    """A `Clock` that says what the test set: `FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo(...)))`."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware datetime, as a real clock gives")
        self._now = now

    @property
    def tz(self) -> tzinfo:
        tz = self._now.tzinfo
        assert tz is not None
        return tz

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now.astimezone(self.tz)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


class FakeHttp:
    """An `Http` answering from a table {(method, url): response}; a missing entry answers 404,
    an `HttpError` in the table is raised (a timeout, a refused connection). `requests` logs
    (method, url, headers, json) of every request."""

    def __init__(self, table: Mapping[tuple[str, str], HttpResponse | HttpError] | None = None) -> None:
        self.table: dict[tuple[str, str], HttpResponse | HttpError] = dict(table or {})
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        timeout: float = 5.0,
    ) -> HttpResponse:
        self.requests.append((method.upper(), url, dict(headers or {}), json))
        answer = self.table.get((method.upper(), url))
        if answer is None:
            return HttpResponse(status=404, headers={"Content-Type": "text/plain"}, body="not found")
        if isinstance(answer, HttpError):
            raise answer
        return answer


class FakeFlows:
    """A `FlowSource` over flows given in memory: `publish(flow)` adds a version and makes it live."""

    def __init__(self, *flows: Flow) -> None:
        self.versions: dict[tuple[str, int], Flow] = {}
        self.live: dict[str, int] = {}
        for flow in flows:
            self.publish(flow)

    def publish(self, flow: Flow) -> int:
        version = 1 + max((v for (n, v) in self.versions if n == flow.name), default=0)
        self.versions[(flow.name, version)] = flow
        self.live[flow.name] = version
        return version

    async def published(self, name: str) -> tuple[Flow, int]:
        if name not in self.live:
            raise LookupError(f"no published flow {name!r}")
        return self.versions[(name, self.live[name])], self.live[name]

    async def version(self, name: str, version: int) -> Flow:
        if (name, version) not in self.versions:
            raise LookupError(f"no flow {name!r} version {version}")
        return self.versions[(name, version)]


class FakeRecorder:
    """A `Recorder` that "records" `seconds` of silence at once: `recorded` logs the labels."""

    def __init__(self, seconds: float = 5.0) -> None:
        self.seconds = seconds
        self.recorded: list[str] = []

    async def record(self, label: str, *, max_duration: float, max_silence: float | None = None, beep: bool = True,
                     terminator: str | None = "#", started: Callable[[str], Awaitable[None]] | None = None,
                     ) -> Recording:
        self.recorded.append(label)
        name = f"simulated-{label}-{len(self.recorded)}"
        if started is not None:
            await started(name)
        return Recording(name=name, duration=min(self.seconds, max_duration), reason="finished", size=0)


class FakeTransfer:
    """A `Transferer` whose every attempt ends as `outcome`: `attempts` logs the targets."""

    def __init__(self, outcome: Literal["answered", "no_answer", "busy", "failed"] = "answered") -> None:
        self.outcome = outcome
        self.attempts: list[str] = []

    async def transfer(self, target: str, *, timeout: float, caller_id: str | None = None) -> TransferResult:
        self.attempts.append(target)
        return TransferResult(self.outcome, {"ring_ms": 0, "simulated": True})


class FakeAcd:
    """An `Acd` whose queues all end one way, at once in simulated time: `answered` (offered to
    `agent`, who answers and later hangs up: the flow goes on at `next`), `timeout` (the queue's
    max_wait), `no_agents` (refused on joining), or `wait` (no agent ever: the caller's digits and
    the node's own timers decide; with a `clock`, the queue gives up after `give_up` simulated
    seconds). `joined` logs the requests, `left` the reasons, `parked` the callback numbers."""

    def __init__(self, outcome: Literal["answered", "timeout", "no_agents", "wait"] = "answered", *,
                 agent: str = "agent1", clock: FakeClock | None = None, give_up: float = 3600.0,
                 position: int = 2, estimated_wait: float = 90.0) -> None:
        self.outcome, self.agent, self.clock, self.give_up = outcome, agent, clock, give_up
        self.position, self.estimated_wait = position, estimated_wait
        self.joined: list[QueueRequest] = []
        self.left: list[str] = []
        self.parked: list[str] = []

    async def join(self, request: QueueRequest) -> _FakeTicket:
        self.joined.append(request)
        if self.outcome == "no_agents":
            raise QueueRefused("no_agents", f"nobody is logged in to queue {request.queue!r}")
        return _FakeTicket(self)


class _FakeTicket:
    hold = "moh:default"
    announce: Mapping[str, Any] = {"every": 30, "position": True, "wait_time": True}

    def __init__(self, acd: FakeAcd) -> None:
        self.acd = acd
        self.started = acd.clock.now() if acd.clock is not None else None
        answered = [QueueUpdate("ringing", acd.agent), QueueUpdate("connected", acd.agent),
                    QueueUpdate("ended", acd.agent, detail={"talk": 60})]
        self.updates = deque({"answered": answered, "timeout": [QueueUpdate("timeout")]}.get(acd.outcome, []))

    async def update(self) -> QueueUpdate:
        if self.updates:
            update = self.updates.popleft()
            if update.kind == "ended" and self.acd.clock is not None:  # the conversation took its time
                self.acd.clock.advance(timedelta(seconds=float(update.detail.get("talk", 0))))
            return update
        # `wait`: nothing happens until the simulated clock, moved on by the caller's silences, says so.
        while self.acd.clock is None or self.started is None or \
                (self.acd.clock.now() - self.started).total_seconds() < self.acd.give_up:
            await asyncio.sleep(0)
        return QueueUpdate("timeout")

    async def status(self) -> QueueUpdate:
        return QueueUpdate("waiting", position=self.acd.position, estimated_wait=self.acd.estimated_wait)

    async def leave(self, reason: str) -> None:
        self.acd.left.append(reason)
        self.updates.clear()

    async def park(self, number: str) -> None:
        self.acd.parked.append(number)
        self.updates.clear()
