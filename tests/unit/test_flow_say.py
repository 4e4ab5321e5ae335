"""`say`: values spoken with Asterisk's stock sounds, in the flow's or the node's language."""

from __future__ import annotations

from datetime import UTC, datetime
from textwrap import dedent

import pytest

from ivrpowers.flows import FlowError, Services, load_flow, run_flow
from ivrpowers.flows.nodes.say import Unsayable, say_media
from ivrpowers.flows.testing import FakeClock, ListJournal, ScriptedCall


@pytest.mark.parametrize(("kind", "value", "media"), [
    ("digits", "0123*#", ["digits:0123*#"]),
    ("digits", 42, ["digits:42"]),
    ("number", 1234, ["number:1234"]),
    ("number", "-7", ["number:-7"]),
    ("number", 3.0, ["number:3"]),
    ("characters", "AB12", ["characters:AB12"]),
    ("date", "2026-12-07", ["sound:digits/day-1", "sound:digits/mon-11", "number:7", "number:2026"]),
    ("date", "2027-01-03T10:00:00+01:00", ["sound:digits/day-0", "sound:digits/mon-0", "number:3", "number:2027"]),
    ("time", "00:00", ["number:12", "sound:digits/oclock", "sound:digits/a-m"]),
    ("time", "09:05", ["number:9", "sound:digits/oh", "number:5", "sound:digits/a-m"]),
    ("time", "23:59", ["number:11", "number:59", "sound:digits/p-m"]),
    ("time", "12:30", ["number:12", "number:30", "sound:digits/p-m"]),
])
def test_values_become_stock_sounds(kind: str, value: object, media: list[str]) -> None:
    assert say_media(kind, value) == media


@pytest.mark.parametrize(("kind", "value"), [
    ("digits", "12a"), ("digits", None), ("number", "1.5"), ("number", True), ("number", 10**13),
    ("characters", "a,b"), ("characters", ""), ("date", "2026-02-30"), ("time", "24:00"), ("time", "noon"),
])
def test_values_that_cannot_be_said_are_refused(kind: str, value: object) -> None:
    with pytest.raises(Unsayable):
        say_media(kind, value)


FLOW = dedent("""
    name: say
    language: es
    start: a
    nodes:
      a: {type: set, vars: {balance: 1250, when: now.date}, next: b}
      b: {type: say, number: vars.balance, next: c}
      c: {type: say, date: vars.when, language: en, next: d}
      d: {type: say, digits: vars.unset, next: e}
      e: {type: play, media: sound:bye}
    """)


async def test_say_nodes_speak_in_the_flow_or_node_language_and_skip_the_unsayable() -> None:
    call, journal = ScriptedCall(), ListJournal()
    await run_flow(load_flow(FLOW), call, journal,
                   services=Services(clock=FakeClock(datetime(2026, 12, 7, 9, tzinfo=UTC))))
    plays = [a[1] for a in call.actions if a[0] == "play"]
    assert plays == [["number:1250"], ["sound:digits/day-1", "sound:digits/mon-11", "number:7", "number:2026"],
                     ["sound:bye"]]
    assert call.languages == ["es", "en", "es"]
    skipped = journal.of_type("say_skipped")[0]
    assert skipped.node == "d" and "null" in skipped.detail["problem"]


def test_a_say_node_says_exactly_one_thing() -> None:
    with pytest.raises(FlowError) as raised:
        load_flow("name: x\nstart: a\nnodes:\n  a: {type: say, number: 1, digits: '2'}\n  b: {type: say}\n")
    text = str(raised.value)
    assert "<flow>:4: nodes.a: a say node says one of digits, number, characters, date, time; it has digits, number" \
        in text
    assert "it has none" in text
