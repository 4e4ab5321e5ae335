"""`set`, `branch`, `gather` and business hours, run by the interpreter on a scripted caller."""

from __future__ import annotations

from datetime import datetime
from textwrap import dedent
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivrpowers.flows import Flow, FlowError, RunState, Services, load_flow, resume_state, run_flow
from ivrpowers.flows.testing import (
    CallerAction,
    FakeClock,
    FakeRecorder,
    Interrupt,
    ListJournal,
    Press,
    ScriptedCall,
    Silence,
)

MADRID = ZoneInfo("Europe/Madrid")


def flow(text: str) -> Flow:
    return load_flow(dedent(text).lstrip("\n"))


def problems(text: str) -> list[str]:
    with pytest.raises(FlowError) as raised:
        flow(text)
    return [str(p) for p in raised.value.problems]


async def run(f: Flow, script: list[CallerAction] = (), *, at: datetime | None = None,
              state: RunState | None = None, caller: str = "+34600111222") -> tuple[Any, ListJournal, ScriptedCall]:
    call, journal = ScriptedCall(script, caller_number=caller), ListJournal()
    clock = FakeClock(at or datetime(2026, 12, 7, 10, 0, tzinfo=MADRID))  # a Monday
    result = await run_flow(f, call, journal, services=Services(clock=clock), state=state)
    return result, journal, call


def path(journal: ListJournal) -> list[str | None]:
    return [e.node for e in journal.entries if e.type == "node_entered"]


# -- set and branch ------------------------------------------------------------------------------
COUNTER = """
name: counter
start: init
nodes:
  init:
    type: set
    vars: {count: 0, label: "'caller ' + caller.number", vip: "caller.number matches '^\\\\+34'"}
    next: loop
  loop:
    type: set
    vars: {count: vars.count + 1}
    next: check
  check:
    type: branch
    cases:
      - when: vars.count < 3
        next: loop
      - when: vars.vip and vars.count == 3
        next: vip
    default: other
  vip: {type: hangup}
  other: {type: hangup}
"""


async def test_set_and_branch_loop_until_a_case_is_true() -> None:
    result, journal, _ = await run(flow(COUNTER))
    assert path(journal) == ["init", "loop", "check", "loop", "check", "loop", "check", "vip"]
    assert result.state.vars == {"count": 3, "label": "caller +34600111222", "vip": True}
    taken = [e.detail["case"] for e in journal.of_type("branch_taken")]
    assert taken == [0, 0, 1]


async def test_branch_default_when_no_case_holds() -> None:
    _result, journal, _ = await run(flow(COUNTER), caller="+44")
    assert path(journal)[-1] == "other"
    assert journal.of_type("branch_taken")[-1].detail == {"case": "default", "next": "other"}


async def test_an_expression_that_fails_at_run_time_ends_the_run_as_an_error_naming_it() -> None:
    f = flow("""
    name: bad
    start: s
    nodes:
      s: {type: set, vars: {n: "vars.missing + 1"}}
    """)
    result, _journal, _ = await run(f)
    assert result.outcome == "error"
    assert result.error is not None
    assert "node 's'" in result.error and "vars.missing + 1" in result.error
    assert "cannot add null + number" in result.error


async def test_variables_in_templates_and_adoption_keeps_them() -> None:
    f = flow("""
    name: tpl
    start: s
    nodes:
      s: {type: set, vars: {account: "'12345'"}, next: p}
      p: {type: play, media: ["digits:{{ vars.account }}", "sound:{{ vars.nothing }}x"], next: m}
      m: {type: menu, prompt: [sound:m], options: {"1": p}}
    """)
    _result, journal, call = await run(f, [Silence(), Silence(), Silence()])
    assert ("play", ["digits:12345", "sound:x"], True) in call.actions
    state = resume_state(journal.entries[: journal.types().index("menu_timeout")])
    assert state is not None and state.node == "m" and state.vars == {"account": "12345"}
    _, _journal2, call2 = await run(f, [Press("1"), Silence()], state=state)
    assert ("play", ["digits:12345", "sound:x"], True) in call2.actions  # the variable survived adoption


# -- business hours ------------------------------------------------------------------------------
HOURS = """
name: hours
timezone: Europe/Madrid
calendars:
  support:
    hours: {mon-fri: "09:00-14:00, 15:00-18:00", sat: ["10:00-13:00"]}
    closed: ["2026-12-08", "12-25"]
start: b
nodes:
  b:
    type: branch
    cases: [{when: "open('support')", next: open}]
    default: closed
  open: {type: play, media: ["sound:{{ now.weekday }}-{{ now.time }}"]}
  closed: {type: hangup}
"""


@pytest.mark.parametrize(("when", "expected"), [
    (datetime(2026, 12, 7, 9, 0, tzinfo=MADRID), "open"),  # Monday, opening minute
    (datetime(2026, 12, 7, 14, 0, tzinfo=MADRID), "closed"),  # lunch: the end is exclusive
    (datetime(2026, 12, 7, 17, 59, tzinfo=MADRID), "open"),
    (datetime(2026, 12, 7, 18, 0, tzinfo=MADRID), "closed"),
    (datetime(2026, 12, 8, 10, 0, tzinfo=MADRID), "closed"),  # a closed date
    (datetime(2027, 12, 25, 11, 0, tzinfo=MADRID), "closed"),  # every year's 25 December (a Saturday)
    (datetime(2026, 12, 12, 11, 0, tzinfo=MADRID), "open"),  # Saturday
    (datetime(2026, 12, 13, 11, 0, tzinfo=MADRID), "closed"),  # Sunday: not listed
    (datetime(2026, 12, 7, 8, 30, tzinfo=ZoneInfo("UTC")), "open"),  # 09:30 in Madrid
])
async def test_open_follows_the_calendar_in_the_flow_time_zone(when: datetime, expected: str) -> None:
    _, journal, call = await run(flow(HOURS), at=when)
    assert path(journal)[-1] == expected
    if expected == "open":
        local = when.astimezone(MADRID)
        assert ("play", [f"sound:{local:%a}".lower() + f"-{local:%H:%M}"], True) in call.actions


def test_calendar_and_time_zone_mistakes_are_reported_at_their_line() -> None:
    found = problems("""
    name: bad
    timezone: Mars/Olympus
    calendars:
      support:
        hours: {mon-fry: "09:00-18:00", tue: "18:00-09:00"}
        closed: ["2026-13-01"]
    start: b
    nodes:
      b: {type: branch, cases: [{when: "open('sales')", next: b}]}
    """)
    assert any(p.startswith("<flow>:2:") and "unknown time zone 'Mars/Olympus'" in p for p in found)
    assert any(p.startswith("<flow>:4:") and "'mon-fry' is not a day" in p for p in found)
    assert any(p.startswith("<flow>:9:") and "open('sales'): no such calendar" in p for p in found)


def test_expression_mistakes_name_line_and_problem() -> None:
    found = problems("""
    name: bad
    start: s
    nodes:
      s:
        type: set
        vars:
          greeting: hello
          n: "vars.a +"
          9bad: 1
        next: b
      b:
        type: branch
        cases:
          - when: "caller.phone == '1'"
            next: s
    """)
    assert any(p.startswith("<flow>:7:") and "unknown name 'hello'" in p and "\"'hello'\"" in p for p in found)
    assert any(p.startswith("<flow>:8:") and "expected a value" in p for p in found)
    assert any(p.startswith("<flow>:9:") and "'9bad' is not a variable name" in p for p in found)
    assert any(p.startswith("<flow>:14:") and "caller.phone does not exist" in p for p in found)


# -- gather --------------------------------------------------------------------------------------
GATHER = """
name: g
start: g
nodes:
  g:
    type: gather
    prompt: [sound:enter-account]
    var: account
    min_digits: 4
    max_digits: 8
    pattern: "[0-9]+"
    retries: 1
    invalid_prompt: [sound:invalid]
    next: ok
    on_invalid: bad
    on_timeout: quiet
  ok: {type: play, media: ["digits:{{ vars.account }}"]}
  bad: {type: hangup}
  quiet: {type: hangup}
"""


def digits(text: str) -> list[CallerAction]:
    return [Silence() if d == "," else Press(d) for d in text]


async def test_gather_ends_at_the_terminator_which_is_not_stored() -> None:
    result, journal, call = await run(flow(GATHER), digits("1234#"))
    assert path(journal) == ["g", "ok"] and result.state.vars == {"account": "1234"}
    assert ("play", ["digits:1234"], True) in call.actions


async def test_gather_ends_after_the_inter_digit_timeout_and_at_max_digits() -> None:
    result, _journal, call = await run(flow(GATHER), digits("12345,"))
    assert result.state.vars == {"account": "12345"}
    reads = [a[1] for a in call.actions if a[0] == "read_digit"]
    assert reads == [5.0, 3.0, 3.0, 3.0, 3.0, 3.0]  # first-digit timeout, then digit_timeout
    result, _, _ = await run(flow(GATHER), digits("1234567890"))
    assert result.state.vars == {"account": "12345678"}


async def test_digits_typed_during_the_prompt_barge_in_and_count() -> None:
    result, _journal, call = await run(flow(GATHER), [Interrupt("9"), *digits("876#")])
    assert result.state.vars == {"account": "9876"}
    assert call.media_requests[:2] == [("start", ["sound:enter-account"]), ("stop",)]


async def test_too_short_or_not_matching_input_retries_then_takes_on_invalid() -> None:
    result, journal, _ = await run(flow(GATHER), digits("12#12*4#"))
    assert path(journal) == ["g", "bad"]
    assert [e.detail["attempt"] for e in journal.of_type("gather_invalid")] == [1, 2]
    assert "account" not in result.state.vars


async def test_no_input_times_out_and_a_valid_retry_succeeds() -> None:
    _, journal, _ = await run(flow(GATHER), digits(",,"))
    assert path(journal) == ["g", "quiet"]
    result, journal, _ = await run(flow(GATHER), digits(",5555#"))
    assert path(journal) == ["g", "ok"] and result.state.vars == {"account": "5555"}


async def test_a_gather_adopted_midway_resumes_with_its_digits_and_attempt() -> None:
    _, journal, _ = await run(flow(GATHER), digits("12") + [Silence()] * 0)
    cut = [i for i, e in enumerate(journal.entries) if e.type == "dtmf_received"][1] + 1
    state = resume_state(journal.entries[:cut])
    assert state is not None and state.node == "g" and state.partial == {"attempt": 1, "digits": "12"}
    result, _journal2, call2 = await run(flow(GATHER), digits("34#"), state=state)
    assert result.state.vars == {"account": "1234"}
    assert not any(a[0] == "play" and a[1] == ["sound:enter-account"] for a in call2.actions)


async def test_a_secret_gather_never_shows_or_keeps_its_digits() -> None:
    secret = flow(GATHER.replace("    on_timeout: quiet\n", "    on_timeout: quiet\n    secret: true\n"))
    result, journal, _ = await run(secret, [Interrupt("9"), *digits("876#")])
    assert result.state.vars == {"account": "9876"}  # the flow still has the PIN
    pressed = [e.detail["digit"] for e in journal.of_type("dtmf_received")]
    assert pressed == ["hidden"] * 4 + ["#"]
    gather = [e for e in journal.entries if e.node == "g"]
    assert [e.detail.get("interrupted_by") for e in gather if e.type == "prompt_played"] == ["hidden"]
    assert not [e.detail for e in gather if any(digit in repr(e.detail) for digit in "9876")]
    after = resume_state(journal.entries[:-1])  # after the gather, before the run ended
    assert after is not None and after.node == "ok" and "account" not in after.vars
    # Adopted midway: no digit was stored, so the try starts again, prompt and all.
    cut = [i for i, e in enumerate(journal.entries) if e.type == "dtmf_received"][1] + 1
    state = resume_state(journal.entries[:cut])
    assert state is not None and state.node == "g" and state.partial == {"attempt": 1}
    result, _, call = await run(secret, digits("4321#"), state=state)
    assert result.state.vars == {"account": "4321"}
    assert any(a[0] == "play" and a[1] == ["sound:enter-account"] for a in call.actions)


def test_gather_lengths_must_agree() -> None:
    found = problems("""
    name: bad
    start: g
    nodes:
      g: {type: gather, var: a, min_digits: 5, max_digits: 2, next: g}
    """)
    assert len(found) == 1 and found[0].startswith("<flow>:4:")
    assert "min_digits (5) is more than max_digits (2)" in found[0]


def test_gather_field_mistakes() -> None:
    found = problems("""
    name: bad
    start: g
    nodes:
      g: {type: gather, var: a, terminator: "x", pattern: "(", next: g}
    """)
    text = "\n".join(found)
    assert "'x' is not a DTMF digit" in text
    assert "bad regex '('" in text


def test_variables_named_like_words_of_the_language_are_refused() -> None:
    found = problems("""
    name: bad
    start: s
    nodes:
      s: {type: set, vars: {in: 1}}
    """)
    assert "'in' is a word of the expression language" in found[0]


# -- record (voicemail) --------------------------------------------------------------------------
VOICEMAIL = """
name: vm
start: vm
nodes:
  vm: {type: record, prompt: sound:vm-intro, var: message, next: back}
  back: {type: play, media: ["recording:{{ vars.message }}"]}
"""


async def test_a_call_adopted_mid_recording_goes_on_with_the_recording_named() -> None:
    call, journal = ScriptedCall([]), ListJournal()
    await run_flow(flow(VOICEMAIL), call, journal, services=Services(recorder=FakeRecorder()))
    types = [e.type for e in journal.entries if e.node == "vm"]
    assert types.index("recording_started") < types.index("recording_saved")
    # The controller dies while Asterisk records: the next one skips the node, var already set.
    cut = next(i for i, e in enumerate(journal.entries) if e.type == "recording_started") + 1
    state = resume_state(journal.entries[:cut])
    assert state is not None and state.node == "vm" and state.vars == {"message": "simulated-vm-1"}
    call2, journal2 = ScriptedCall([]), ListJournal()
    await run_flow(flow(VOICEMAIL), call2, journal2, services=Services(recorder=FakeRecorder()), state=state)
    assert path(journal2) == ["back"]
    assert any(a[0] == "play" and a[1] == ["recording:simulated-vm-1"] for a in call2.actions)
