"""The `queue` node on a scripted caller and a fake ACD: hold, announcements, digits, timers, and
every way out (answered and back, timeout, no agents, leave, callback, hang-up, adoption)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from textwrap import dedent
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest

from ivrpowers.flows import FlowError, RunState, Services, load_flow, resume_state, run_flow
from ivrpowers.flows.services import QueueRequest, QueueUpdate
from ivrpowers.flows.testing import FakeAcd, FakeClock, HangUp, ListJournal, Press, ScriptedCall, Silence

from .waiting import until

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=ZoneInfo("Europe/Madrid"))

QUEUED = dedent("""\
    name: support
    start: ask
    nodes:
      ask: {type: set, vars: {tier: "'gold'", level: 7}, next: q}
      q:
        type: queue
        queue: billing
        priority: "len(vars.tier) + 6"
        skills: {billing: vars.level, spanish: "null"}
        prompt: sound:pls-hold-while-try
        leave_digit: "0"
        callback_digit: "9"
        next: survey
        on_timeout: sorry
        on_no_agents: voicemail
        on_leave: menu
        on_callback: bye
      survey: {type: play, media: sound:thanks}
      sorry: {type: play, media: sound:sorry}
      voicemail: {type: play, media: sound:vm-intro}
      menu: {type: play, media: sound:menu}
      bye: {type: play, media: sound:goodbye}
    """)


def flow(text: str = QUEUED, **replace: str) -> Any:
    for old, new in replace.items():
        text = text.replace(old, new)
    return load_flow(text)


async def run(f: Any, acd: FakeAcd, script: list[Any] = (), *, caller: str = "+34600111222",
              state: RunState | None = None, clock: FakeClock | None = None) -> tuple[Any, ListJournal, ScriptedCall]:
    clock = clock or acd.clock or FakeClock(T0)
    call, journal = ScriptedCall(script, caller_number=caller, clock=clock), ListJournal()
    result = await run_flow(f, call, journal, services=Services(acd=acd, clock=clock), state=state)
    return result, journal, call


def path(journal: ListJournal) -> list[str | None]:
    return [e.node for e in journal.entries if e.type == "node_entered"]


def queue_events(journal: ListJournal) -> list[str]:
    return [e.type for e in journal.entries if e.type.startswith("queue_")]


async def test_answered_the_caller_talks_then_goes_on_at_next() -> None:
    acd = FakeAcd("answered", agent="ana")
    _, journal, call = await run(flow(), acd)
    assert path(journal) == ["ask", "q", "survey"]
    assert acd.joined[0].queue == "billing" and acd.joined[0].priority == 10
    assert acd.joined[0].skills == {"billing": 7}  # null asks for no level of that skill
    assert acd.joined[0].data == {"tier": "gold", "level": 7}
    assert queue_events(journal) == ["queue_joined", "queue_ringing", "queue_answered", "queue_agent_done"]
    assert call.actions[:2] == [("play", ["sound:pls-hold-while-try"], False), ("hold", "moh:default")]


async def test_the_wait_is_until_the_answer_not_the_talk() -> None:
    clock = FakeClock(T0)
    _, journal, _ = await run(flow(), FakeAcd("answered", agent="ana", clock=clock), clock=clock)
    answered, done = journal.of_type("queue_answered")[0].detail, journal.of_type("queue_agent_done")[0].detail
    assert done["talk"] == 60 and done["wait"] == answered["wait"] < 60, (answered, done)
    assert clock.now() >= T0 + timedelta(seconds=60)  # the talk took its time on the clock


async def test_no_agent_logged_in_takes_on_no_agents() -> None:
    _, journal, call = await run(flow(), FakeAcd("no_agents"))
    assert path(journal) == ["ask", "q", "voicemail"]
    assert journal.of_type("queue_refused")[0].detail == {"queue": "billing", "reason": "no_agents"}
    assert ("hold", "moh:default") not in call.actions


def simple(**fields: str) -> Any:
    extra = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    return load_flow(dedent("""\
        name: s
        start: q
        nodes:
          q:
            type: queue
            queue: sales
            leave_digit: "0"
            callback_digit: "9"
            next: back
            on_timeout: sorry
            on_leave: menu
            on_callback: bye
        """) + extra + "  back: {type: hangup}\n  sorry: {type: hangup}\n  menu: {type: hangup}\n"
        "  bye: {type: hangup}\n")


async def test_the_queues_own_timeout_stops_hold_and_takes_on_timeout() -> None:
    _, journal, call = await run(simple(), FakeAcd("timeout"))
    assert path(journal) == ["q", "sorry"] and [a[1] for a in call.actions if a[0] == "hold"] == ["moh:default", None]
    assert journal.of_type("queue_timeout")[0].detail["by"] == "queue"


async def test_waiting_announces_every_n_seconds_and_the_flows_max_wait_ends_it() -> None:
    clock = FakeClock(T0)
    f = simple(max_wait="100", announce="{every: 30}")
    _, journal, call = await run(f, FakeAcd("wait", clock=clock, position=3, estimated_wait=150), [Silence()] * 20,
                                 clock=clock)
    assert path(journal) == ["q", "sorry"]
    timeout = journal.of_type("queue_timeout")[0].detail
    assert timeout["by"] == "flow" and timeout["wait"] == 100
    announced = [e.detail["wait"] for e in journal.of_type("queue_announced")]
    assert announced == [30, 60, 90]
    plays = [a[1] for a in call.actions if a[0] == "play"]
    assert plays[0] == ["sound:queue-thereare", "number:3", "sound:queue-callswaiting", "sound:queue-holdtime",
                        "number:2", "sound:queue-minutes", "sound:queue-thankyou"]
    # Hold stops for each announcement and comes back after it.
    holds = [a[1] for a in call.actions if a[0] == "hold"]
    assert holds == ["moh:default"] + [None, "moh:default"] * 3 + [None]


async def test_next_in_line_hears_so_and_no_wait_estimate() -> None:
    clock = FakeClock(T0)
    _, _, call = await run(simple(max_wait="40", announce="{every: 30}"),
                           FakeAcd("wait", clock=clock, position=1, estimated_wait=20), [Silence()] * 5, clock=clock)
    assert [a[1] for a in call.actions if a[0] == "play"] == [["sound:queue-youarenext", "sound:queue-thankyou"]]


async def test_the_leave_digit_leaves_to_on_leave_and_other_digits_do_nothing() -> None:
    acd = FakeAcd("wait")
    _, journal, _ = await run(simple(), acd, [Press("5"), Press("0")])
    assert path(journal) == ["q", "menu"] and acd.left == ["left"]


async def test_a_callback_keeps_the_place_for_the_callers_number() -> None:
    acd = FakeAcd("wait")
    _, journal, _ = await run(simple(), acd, [Press("9")])
    assert path(journal) == ["q", "bye"] and acd.parked == ["+34600111222"]
    assert journal.of_type("queue_callback_requested")[0].detail["number"] == "+34600111222"
    # An anonymous caller can't be called back: told so, still waiting.
    acd = FakeAcd("wait")
    _, journal, call = await run(simple(), acd, [Press("9"), Press("0")], caller="")
    assert acd.parked == [] and path(journal) == ["q", "menu"]
    assert ("play", ["sound:unidentified-no-callback"], False) in call.actions


async def test_a_caller_who_hangs_up_while_waiting_abandons() -> None:
    acd = FakeAcd("wait")
    result, journal, _ = await run(simple(), acd, [Press("5"), HangUp()])
    assert result.outcome == "caller_hangup" and acd.left == ["caller_hangup"]
    assert journal.of_type("queue_abandoned")[0].detail["queue"] == "sales"


async def test_an_adopted_call_keeps_its_wait_so_far_and_hears_no_prompt_again() -> None:
    clock = FakeClock(T0)
    f = simple(max_wait="100", prompt="sound:pls-hold-while-try")
    acd = FakeAcd("wait", clock=clock)
    _, journal, _ = await run(f, acd, [Press("5"), HangUp()], clock=clock)
    cut = next(i for i, e in enumerate(journal.entries) if e.type == "queue_joined") + 1
    state = resume_state(journal.entries[:cut])
    assert state is not None and state.node == "q" and state.partial == {"joined_at": T0.isoformat()}
    clock.set(T0 + timedelta(seconds=70))  # the controller was away for 70 s
    _, journal2, call2 = await run(f, acd, [Silence()] * 3, state=state, clock=clock)
    assert path(journal2)[-1] == "sorry"
    assert journal2.of_type("queue_joined")[0].detail["resumed"] is True
    assert journal2.of_type("queue_timeout")[0].detail["wait"] == 100
    assert not any(a[0] == "play" for a in call2.actions)


@pytest.mark.parametrize(("fields", "problem"), [
    ({"callback_digit": '"0"'}, "leave_digit and callback_digit must differ"),
    ({"max_wait": "0"}, "max_wait"),
    ({"priority": "vars.x +"}, "priority"),
])
def test_queue_node_mistakes_are_load_errors(fields: dict[str, str], problem: str) -> None:
    text = dedent("""\
        name: s
        start: q
        nodes:
          q:
            type: queue
            queue: sales
            leave_digit: "0"
        """) + "".join(f"    {k}: {v}\n" for k, v in fields.items())
    with pytest.raises(FlowError) as raised:
        load_flow(text)
    assert any(problem in p.message for p in raised.value.problems), raised.value.problems


async def test_a_priority_that_is_not_a_whole_number_fails_the_flow() -> None:
    result, _, _ = await run(simple(priority='"vars.missing"'), FakeAcd())
    assert result.outcome == "error" and "priority must be a whole number from 0 to 100, not None" in result.error


class _SlowAnnouncements(ScriptedCall):
    """A caller whose position announcement plays until the test lets it end."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.announcing, self.released = asyncio.Event(), asyncio.Event()

    async def play(self, media: Any, *, barge_in: bool = True, language: str | None = None) -> str | None:
        if "sound:queue-thankyou" in media:
            self.announcing.set()
            await self.released.wait()
        return await super().play(media, barge_in=barge_in, language=language)


class _RingsDuringTheAnnouncement:
    """The ACD's side: an agent's phone rings while the caller hears the announcement, then the
    queue times out once it is over."""

    hold = "moh:default"
    announce: ClassVar[dict[str, Any]] = {"every": 30, "position": True, "wait_time": False}

    def __init__(self, call: _SlowAnnouncements) -> None:
        self.call, self.asked = call, 0

    async def join(self, request: QueueRequest) -> _RingsDuringTheAnnouncement:
        return self

    async def update(self) -> QueueUpdate:
        self.asked += 1
        if self.asked == 1:
            await self.call.announcing.wait()
            return QueueUpdate("ringing", "ana")
        await self.call.released.wait()
        return QueueUpdate("timeout")

    async def status(self) -> QueueUpdate:
        return QueueUpdate("waiting", position=2)

    async def leave(self, reason: str) -> None:
        pass


async def test_an_agent_rung_during_an_announcement_is_recorded_as_it_rings() -> None:
    clock = FakeClock(T0)
    call = _SlowAnnouncements([Silence()], caller_number="+34600111222", clock=clock)
    journal, acd = ListJournal(), _RingsDuringTheAnnouncement(call)
    run = asyncio.ensure_future(run_flow(flow(QUEUED.replace("    prompt: sound:pls-hold-while-try\n", "")), call,
                                         journal, services=Services(acd=acd, clock=clock)))  # type: ignore[arg-type]
    await until(lambda: "queue_ringing" in queue_events(journal) or run.done())
    # Recorded while the announcement still plays, not once it is over.
    assert call.announcing.is_set() and not call.released.is_set() and not run.done()
    call.released.set()
    await run
    assert queue_events(journal) == ["queue_joined", "queue_announced", "queue_ringing", "queue_timeout"]
    assert path(journal) == ["ask", "q", "sorry"]
