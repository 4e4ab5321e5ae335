"""`flow simulate`: the real interpreter on a simulated call, with a simulated clock.

The caller presses the given digits, one each time the flow waits for one (`,` is a wait with
nothing pressed: one timeout), then hangs up. A record node "records" 5 s at once; a transfer ends
the way the caller of `simulate` says (answered by default: the call is handed off), and so does
a queue (answered by default: an agent answers at once, talks, and the flow goes on). No Asterisk,
and no waiting in real time: a timeout moves the simulated clock on by its length instead. The
call is `testing.ScriptedCall`, whose digit and barge-in rules are those of a real call
(`flows.digits`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .calendars import time_zone
from .interpreter import run_flow
from .loader import load_flow_file
from .schema import DTMF_DIGITS, Flow
from .services import FlowSource, Http, HttpError, HttpResponse, Services
from .state import RunState
from .testing import (
    CallerAction,
    FakeAcd,
    FakeClock,
    FakeRecorder,
    FakeTransfer,
    ListJournal,
    Press,
    ScriptedCall,
    Silence,
)

__all__ = ["DirectoryFlows", "FixtureHttp", "Simulation", "parse_dtmf", "simulate"]

_ENDS = {"hangup_by_flow": "hangup", "caller_hangup": "caller_hangup", "error": "error"}


@dataclass
class Simulation:
    """What the simulated caller went through (`to_dict()` is `flow simulate --json`)."""

    path: list[str]
    prompts: list[str]
    vars: dict[str, Any]
    end: str
    error: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "prompts": self.prompts, "vars": self.vars, "end": self.end,
                               "events": self.events}
        if self.error is not None:
            out["error"] = self.error
        return out


class FixtureHttp:
    """`--http-fixture FILE`: answers by "METHOD URL" (the URL as rendered), e.g.

        "GET https://crm.example/customers/5551234": {status: 200, body: {tier: gold}}
        "POST https://crm.example/tickets": {error: "no answer within 3s"}

    A request the fixture has no answer for fails as a refused connection would, naming itself.
    """

    def __init__(self, answers: Mapping[str, Any]) -> None:
        self.answers: dict[str, Any] = {}
        for key, answer in answers.items():
            method, _, url = str(key).partition(" ")
            if isinstance(answer, Mapping) and "status" in answer and not isinstance(answer["status"], int):
                raise ValueError(f"{key!r}: status must be a number, not {answer['status']!r}")
            if not url or not isinstance(answer, Mapping):
                raise ValueError(f"{key!r}: expected \"METHOD URL\": {{status: 200, body: ...}} or {{error: ...}}")
            self.answers[f"{method.upper()} {url.strip()}"] = answer
        self.requests: list[str] = []

    async def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, json: Any = None,
                      timeout: float = 5.0) -> HttpResponse:
        key = f"{method.upper()} {url}"
        self.requests.append(key)
        answer = self.answers.get(key)
        if answer is None:
            raise HttpError(f"{key}: not in the HTTP fixture")
        if "error" in answer:
            raise HttpError(f"{key}: {answer['error']}")
        status = answer.get("status", 200)
        body = answer.get("body")
        return HttpResponse(status=status if isinstance(status, int) else 200,
                            headers={"Content-Type": "application/json"}, body=body)


class DirectoryFlows:
    """A `FlowSource` for simulating a flow file: subflow NAME is the file NAME.yaml beside it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._loaded: dict[str, Flow] = {}

    async def published(self, name: str) -> tuple[Flow, int]:
        if name not in self._loaded:
            path = self.directory / f"{name}.yaml"
            if not path.is_file():
                raise LookupError(f"no file {path} for subflow {name!r}")
            self._loaded[name] = load_flow_file(path)
        return self._loaded[name], 1

    async def version(self, name: str, version: int) -> Flow:
        return (await self.published(name))[0]


def parse_dtmf(text: str) -> list[CallerAction]:
    """`--dtmf 12#,3`: a digit per wait, `,` for a wait with nothing pressed. ValueError otherwise."""
    actions: list[CallerAction] = []
    for char in text.replace(" ", ""):
        if char == ",":
            actions.append(Silence())
        elif char in DTMF_DIGITS or char in "ABCDabcd":
            actions.append(Press(char.upper()))
        else:
            raise ValueError(f"{char!r} is not a DTMF digit (0-9, *, #, A-D) or ',' (a silence)")
    return actions


async def simulate(
    flow: Flow,
    *,
    dtmf: str = "",
    variables: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    default_tz: str = "UTC",
    caller_number: str = "5551234",
    caller_name: str = "",
    dialed: str = "100",
    http: Http | None = None,
    secrets: Mapping[str, str] | None = None,
    flows: FlowSource | None = None,
    transfer: Literal["answered", "no_answer", "busy", "failed"] = "answered",
    queue: Literal["answered", "timeout", "no_agents", "wait"] = "answered",
) -> Simulation:
    """Run `flow` once; `at` is when the call happens (naive: in the flow's time zone; default now)."""
    zone = time_zone(flow.timezone or default_tz)
    start = at if at is not None else datetime.now(zone)
    clock = FakeClock(start if start.tzinfo is not None else start.replace(tzinfo=zone))
    call = ScriptedCall(parse_dtmf(dtmf), caller_number=caller_number, caller_name=caller_name, dialed=dialed,
                        when_done="hangup", clock=clock)
    journal = ListJournal()
    state = RunState(vars=dict(variables or {}))
    services = Services(clock=clock, http=http, secrets=dict(secrets or {}), flows=flows,
                        recorder=FakeRecorder(), transfer=FakeTransfer(transfer), acd=FakeAcd(queue, clock=clock))
    result = await run_flow(flow, call, journal, services=services, state=state)
    end = _ENDS.get(result.outcome) or (result.handoff or {}).get("kind", "handed_off")
    return Simulation(
        path=[e.node for e in journal.entries if e.type == "node_entered" and e.node is not None],
        prompts=[uri for e in journal.of_type("prompt_played") for uri in e.detail.get("media", [])],
        vars=result.state.vars if result.state is not None else {},
        end=end,
        error=result.error,
        events=[{"type": e.type, "node": e.node, "detail": {k: v for k, v in e.detail.items() if k != "state"}}
                for e in journal.entries],
    )
