"""The flow runtime: services, hand-off, journaled run state and adoption policies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from textwrap import dedent
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import pytest

from ivrpowers.flows import (
    AdoptPolicy,
    BaseNode,
    Flow,
    HandOff,
    HttpError,
    HttpResponse,
    Run,
    RunState,
    Services,
    load_flow,
    resume_state,
    run_flow,
)
from ivrpowers.flows.interpreter import _HANDLERS, handles
from ivrpowers.flows.testing import (
    Entry,
    FakeClock,
    FakeHttp,
    ListJournal,
    Press,
    ScriptedCall,
    Silence,
)

# -- node types that exist only here, to exercise what no shipped node type uses yet ----------------


class SetNode(BaseNode):
    """Sets a variable. `skip` on adoption: proves the policy on a node of any type."""

    type: Literal["set"]
    name: str
    value: Any
    next: str | None = None
    adopt: ClassVar[AdoptPolicy] = "skip"


class SavedSetNode(SetNode):
    """Sets a variable and journals it at once (a skip node's change must survive a crash)."""

    type: Literal["saved_set"]  # type: ignore[assignment]


class QueueNode(BaseNode):
    type: Literal["queue"]
    queue: str


class NowNode(BaseNode):
    type: Literal["now"]
    next: str | None = None


class FetchNode(BaseNode):
    type: Literal["fetch"]
    url: str
    next: str | None = None


async def _set(run: Run, node_id: str, node: SetNode) -> str | None:
    run.state.vars[node.name] = node.value
    return node.next


async def _set_and_checkpoint(run: Run, node_id: str, node: SavedSetNode) -> str | None:
    run.state.vars[node.name] = node.value
    await run.checkpoint(node_id)
    await run.checkpoint(node_id)  # nothing changed since: no second row
    return node.next


async def _queue(run: Run, node_id: str, node: QueueNode) -> HandOff:
    return HandOff("queue", node.queue, {"priority": 0})


async def _now(run: Run, node_id: str, node: NowNode) -> str | None:
    now = run.clock.now()
    run.state.vars["hour"], run.state.vars["tz"] = now.hour, str(now.tzinfo)
    return node.next


async def _fetch(run: Run, node_id: str, node: FetchNode) -> str | None:
    try:
        response = await run.http.request("GET", node.url, timeout=2)
    except HttpError as exc:
        run.state.vars["fetch_error"] = str(exc)
    else:
        run.state.vars["status"], run.state.vars["body"] = response.status, response.body
    return node.next


@pytest.fixture(autouse=True)
def test_nodes() -> Iterator[None]:
    extra: dict[type[BaseNode], Any] = {
        SetNode: _set, SavedSetNode: _set_and_checkpoint, QueueNode: _queue, NowNode: _now, FetchNode: _fetch,
    }
    for cls, handler in extra.items():
        handles(cls)(handler)
    yield
    for cls in extra:
        del _HANDLERS[cls]


def flow(text: str, **extra_nodes: BaseNode) -> Flow:
    """A loaded flow plus nodes of the test-only types (which the loader does not know)."""
    loaded = load_flow(dedent(text).lstrip("\n"))
    nodes: dict[str, Any] = {**loaded.nodes, **extra_nodes}
    return Flow.model_construct(name=loaded.name, description=None, start=loaded.start, nodes=nodes)


def without_state(journal: ListJournal) -> list[tuple[str, str | None]]:
    return [(e.type, e.node) for e in journal.entries]


# -- services and hand-off ----------------------------------------------------------------------------

QUEUED = flow(
    """
    name: queued
    start: hello
    nodes:
      hello: {type: answer, next: tag}
      tag: {type: hangup}
    """,
    tag=SetNode(type="set", name="lang", value="fr", next="q"),
    q=QueueNode(type="queue", queue="sales"),
)


async def test_a_hand_off_ends_the_run_without_hanging_up() -> None:
    call, journal = ScriptedCall(), ListJournal()
    result = await run_flow(QUEUED, call, journal)

    assert (result.outcome, result.reason, result.last_node) == ("handed_off", "handed_off", "q")
    assert result.handoff == {"kind": "queue", "target": "sales", "detail": {"priority": 0}}
    assert ("hangup",) not in call.actions and call.hung_up_by is None
    assert journal.entries[-1] == (
        "flow_ended",
        "q",
        {"reason": "handed_off", "handoff": {"kind": "queue", "target": "sales", "detail": {"priority": 0}}},
    )
    assert result.state is not None and result.state.vars == {"lang": "fr"}


async def test_a_node_needing_an_absent_service_is_a_flow_error() -> None:
    call, journal = ScriptedCall(), ListJournal()
    queued = load_flow("name: queued\nstart: q\nnodes:\n  q: {type: queue, queue: sales}\n")
    result = await run_flow(queued, call, journal)  # no ACD here

    assert (result.outcome, result.last_node) == ("error", "q")
    assert result.error == "node 'q' needs the ACD service, which is not available here"
    assert ("hangup",) not in call.actions  # the owner decides what a failed flow means


async def test_handlers_reach_the_clock_and_http_services() -> None:
    f = flow(
        """
        name: svc
        start: x
        nodes:
          x: {type: hangup}
        """,
        x=NowNode(type="now", next="ok"),
        ok=FetchNode(type="fetch", url="http://crm/ok", next="down"),
        down=FetchNode(type="fetch", url="http://crm/down"),
    )
    clock = FakeClock(datetime(2026, 1, 5, 22, 30, tzinfo=ZoneInfo("Europe/Paris")))
    http = FakeHttp({
        ("GET", "http://crm/ok"): HttpResponse(200, {"Content-Type": "application/json"}, {"vip": True}),
        ("GET", "http://crm/down"): HttpError("GET http://crm/down: no answer within 2s"),
    })
    result = await run_flow(f, ScriptedCall(), ListJournal(), services=Services(clock=clock, http=http))

    assert result.outcome == "hangup_by_flow"
    assert result.state is not None
    assert result.state.vars == {
        "hour": 22, "tz": "Europe/Paris", "status": 200, "body": {"vip": True},
        "fetch_error": "GET http://crm/down: no answer within 2s",
    }
    assert [r[:2] for r in http.requests] == [("GET", "http://crm/ok"), ("GET", "http://crm/down")]


def test_fake_clock_can_be_set_and_advanced() -> None:
    clock = FakeClock(datetime(2026, 1, 5, 8, 59, tzinfo=ZoneInfo("Europe/Paris")))
    clock.advance(timedelta(minutes=2))
    assert clock.now().hour == 9
    clock.set(datetime(2026, 1, 5, 12, 0, tzinfo=ZoneInfo("UTC")))
    assert clock.now().hour == 13 and clock.now().tzinfo == ZoneInfo("Europe/Paris")


# -- journaled state ---------------------------------------------------------------------------------

MENU = flow(
    """
    name: menu
    start: hello
    nodes:
      hello: {type: answer, next: m}
      m:
        type: menu
        prompt: sound:choose
        options: {"1": one}
        retries: 2
        invalid_prompt: sound:invalid
        on_invalid: bad
        on_timeout: quiet
      one: {type: hangup}
      bad: {type: hangup}
      quiet: {type: hangup}
      notice: {type: play, media: sound:notice, barge_in: false, next: m}
      intro: {type: play, media: sound:intro, next: m}
      last: {type: play, media: sound:bye}
    """,
    hello=SetNode(type="set", name="lang", value="fr", next="m"),
)


async def test_state_rides_on_existing_events_only_when_it_changed() -> None:
    journal = ListJournal()
    await run_flow(MENU, ScriptedCall([Press("7"), Press("1")]), journal)

    carrying = [(e.type, e.node, e.detail["state"]) for e in journal.entries if "state" in e.detail]
    assert carrying == [
        ("node_entered", "m", {"vars": {"lang": "fr"}}),
        ("menu_invalid", "m", {"partial": {"attempt": 2, "last_failure": "invalid"}}),
    ]
    assert "state" not in journal.types()  # no rows of its own


async def test_nothing_changed_means_no_state_in_the_journal() -> None:
    journal = ListJournal()
    f = load_flow("name: t\nstart: a\nnodes:\n  a: {type: play, media: sound:x, next: b}\n  b: {type: hangup}\n")
    await run_flow(f, ScriptedCall(), journal)
    assert not [e for e in journal.entries if "state" in e.detail]


def test_run_state_dict_round_trip_is_json_ready() -> None:
    state = RunState("m", {"lang": "fr", "n": [1, 2]}, [{"flow": "main", "return_to": "x"}], {"attempt": 2})
    again = RunState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state and again.vars is not state.vars


async def test_vars_and_partial_input_survive_a_resume_state_round_trip() -> None:
    journal = ListJournal()
    await run_flow(MENU, ScriptedCall([Press("7"), Press("1")]), journal)
    # A crash right after the invalid digit was journaled:
    cut = next(i for i, e in enumerate(journal.entries) if e.type == "menu_invalid") + 1
    state = resume_state(journal.entries[:cut])
    assert state == RunState("m", {"lang": "fr"}, [], {"attempt": 2, "last_failure": "invalid"})


def test_no_state_to_resume_before_the_first_node_or_after_the_end() -> None:
    assert resume_state([]) is None
    entries = [Entry("answered", None, {}), Entry("node_entered", "a", {"type": "play"}), Entry("flow_ended", "a", {})]
    assert resume_state(entries[:1]) is None
    assert resume_state(entries[:2]) == RunState("a")
    assert resume_state(entries) is None


class StuckCall(ScriptedCall):
    """A scripted caller who, once the script is done, waits forever: a run to cancel mid-node."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stuck = asyncio.Event()

    async def read_digit(self, timeout: float) -> str | None:
        if not self.script and not self.media.digits:
            self.stuck.set()
            await asyncio.Event().wait()
        return await super().read_digit(timeout)


async def crash_when_stuck(f: Flow, call: StuckCall, journal: ListJournal, **kw: Any) -> None:
    """Run until the caller is stuck, then cancel, as a controller's death stops its runs."""
    task = asyncio.create_task(run_flow(f, call, journal, **kw))
    await asyncio.wait({task, asyncio.create_task(call.stuck.wait())}, return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), task.result()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_adopted_mid_menu_the_caller_keeps_their_used_attempts() -> None:
    first = ListJournal()
    await crash_when_stuck(MENU, StuckCall([Press("7")]), first)  # attempt 1 invalid, stuck in attempt 2
    state = resume_state(first.entries)
    assert state == RunState("m", {"lang": "fr"}, [], {"attempt": 2, "last_failure": "invalid"})

    call, second = ScriptedCall([Press("8"), Press("9")]), ListJournal()
    result = await run_flow(MENU, call, second, state=state)

    assert second.entries[0] == (
        "node_entered",
        "m",
        {"type": "menu", "adopted": "resume",
         "state": {"vars": {"lang": "fr"}, "partial": {"attempt": 2, "last_failure": "invalid"}}},
    )
    attempts = [e.detail["attempt"] for e in second.of_type("menu_invalid")]
    assert attempts == [2, 3]  # not three fresh tries
    assert result.last_node == "bad"
    assert ("answer",) not in call.actions


async def test_a_second_adoption_still_knows_the_state() -> None:
    first, second = ListJournal(), ListJournal()
    await crash_when_stuck(MENU, StuckCall([Press("7")]), first)
    await crash_when_stuck(MENU, StuckCall([Silence()]), second, state=resume_state(first.entries))
    # The timeline of the call is both runs' events, in order.
    state = resume_state([*first.entries, *second.entries])
    assert state == RunState("m", {"lang": "fr"}, [], {"attempt": 3, "last_failure": "timeout"})


@pytest.mark.parametrize(
    ("node", "policy", "played"),
    [
        ("notice", "rerun", ["sound:notice", "sound:choose"]),  # must be heard whole: again
        ("intro", "skip", ["sound:choose"]),  # skippable, and Asterisk went on playing it
        ("hello", "skip", ["sound:choose"]),  # a test node type declaring skip
        ("m", "resume", ["sound:choose"]),
    ],
)
async def test_each_adoption_policy(node: str, policy: str, played: list[str]) -> None:
    assert MENU.nodes[node].adopt_policy() == policy
    call, journal = ScriptedCall([Press("1")]), ListJournal()
    await run_flow(MENU, call, journal, state=RunState(node, {"lang": "fr"}))

    assert [a[1][0] for a in call.actions if a[0] == "play"] == played
    first = journal.entries[0]
    if policy == "skip":
        assert (first.type, first.node, first.detail["adopted"]) == ("node_skipped", node, "skip")
        assert journal.entries[1][:2] == ("node_entered", "m")
    else:
        assert (first.type, first.node, first.detail["adopted"]) == ("node_entered", node, policy)


async def test_skipping_a_last_node_ends_the_flow() -> None:
    call, journal = ScriptedCall(), ListJournal()
    result = await run_flow(MENU, call, journal, state=RunState("last"))
    assert (result.outcome, result.last_node) == ("hangup_by_flow", "last")
    assert without_state(journal) == [("node_skipped", "last"), ("flow_hangup", "last"), ("flow_ended", "last")]
    assert call.actions == [("hangup",)]


async def test_a_state_without_a_node_starts_the_flow_with_its_vars() -> None:
    call, journal = ScriptedCall([Press("1")]), ListJournal()
    result = await run_flow(MENU, call, journal, state=RunState(vars={"vip": True}))
    assert result.state is not None and result.state.vars == {"vip": True, "lang": "fr"}
    assert journal.entries[0].node == "hello"


async def test_a_checkpoint_journals_the_state_once_and_only_if_it_changed() -> None:
    f = flow(
        "name: t\nstart: s\nnodes:\n  s: {type: hangup}\n",
        s=SavedSetNode(type="saved_set", name="vip", value=True),
    )
    journal = ListJournal()
    await run_flow(f, ScriptedCall(), journal)
    assert journal.entries[:2] == [
        ("node_entered", "s", {"type": "saved_set"}),
        ("state", "s", {"state": {"vars": {"vip": True}}}),
    ]
    assert journal.types().count("state") == 1
    # Crash right after it: the variable is known to whoever adopts the call.
    assert resume_state(journal.entries[:2]) == RunState("s", {"vip": True})
