"""The interpreter against a scripted caller: what it does to the call and what it journals."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from textwrap import dedent
from typing import get_args

import pytest

from ivrpowers.flows import CallerHungUp, Flow, Node, load_flow, load_flow_file, run_flow
from ivrpowers.flows.interpreter import _HANDLERS
from ivrpowers.flows.testing import CallerAction, HangUp, Interrupt, Listen, ListJournal, Press, ScriptedCall, Silence

# The first demo (a menu and a readback), frozen here: these tests are about the interpreter, not
# about what the shipped demo does today.
DEMO = Path(__file__).parent / "flows" / "menu.yaml"
PROMPT = ["sound:hello-world", "sound:silence/1", "sound:digits/1", "sound:silence/1", "sound:digits/2"]


@pytest.fixture(scope="module")
def demo() -> Flow:
    return load_flow_file(DEMO)


def flow(text: str) -> Flow:
    return load_flow(dedent(text).lstrip("\n"))


MENU = flow(
    """
    name: menu
    start: m
    nodes:
      m:
        type: menu
        prompt: [sound:choose]
        options: {"1": one, "#": pound}
        timeout: 3
        retries: 2
        invalid_prompt: [sound:invalid]
        on_invalid: bad
        on_timeout: quiet
      one: {type: hangup}
      pound: {type: hangup}
      bad: {type: hangup}
      quiet: {type: hangup}
    """
)


def menu_events(journal: ListJournal) -> list[tuple[str, dict[str, object]]]:
    """The menu's own decisions, without the node/prompt noise nor the run state they carry."""
    return [
        (e.type, {k: v for k, v in e.detail.items() if k != "state"})
        for e in journal.entries
        if e.type.startswith("menu_")
    ]


def entered(journal: ListJournal) -> list[str | None]:
    return [e.node for e in journal.of_type("node_entered")]


# -- the demo -------------------------------------------------------------------------------------


async def test_demo_press_2_after_the_prompt_says_goodbye(demo: Flow) -> None:
    call, journal = ScriptedCall([Press("2")], caller_number="5551234"), ListJournal()
    result = await run_flow(demo, call, journal)

    assert (result.outcome, result.reason, result.last_node, result.steps, result.error) == (
        "hangup_by_flow",
        "hangup_by_flow",
        "hangup",
        4,
        None,
    )
    assert journal.entries == [
        ("node_entered", "welcome", {"type": "answer"}),
        ("node_entered", "main", {"type": "menu"}),
        ("prompt_played", "main", {"media": PROMPT}),
        ("dtmf_received", "main", {"digit": "2"}),
        ("menu_selected", "main", {"digit": "2", "next": "bye"}),
        ("node_entered", "bye", {"type": "play"}),
        ("prompt_played", "bye", {"media": ["sound:goodbye"]}),
        ("node_entered", "hangup", {"type": "hangup"}),
        ("flow_hangup", "hangup", {}),
        ("flow_ended", "hangup", {"reason": "hangup_by_flow"}),
    ]
    assert call.actions == [
        ("answer",),
        ("play", PROMPT, True),
        ("read_digit", 4.0),
        ("play", ["sound:goodbye"], True),
        ("hangup",),
    ]
    assert call.hung_up_by == "flow"


async def test_demo_readback_renders_the_caller_number_then_returns_to_the_menu(demo: Flow) -> None:
    script: list[CallerAction] = [Press("1"), Listen(), Interrupt("2")]  # Listen: the readback plays through
    call, journal = ScriptedCall(script, caller_number="5551234"), ListJournal()
    result = await run_flow(demo, call, journal)

    assert result.outcome == "hangup_by_flow"
    assert entered(journal) == ["welcome", "main", "readback", "main", "bye", "hangup"]
    readback = [e for e in journal.of_type("prompt_played") if e.node == "readback"]
    assert readback == [("prompt_played", "readback", {"media": ["digits:5551234"]})]
    # The second time round the caller barged in on the prompt: that digit is the choice.
    assert journal.entries[-9:-5] == [
        ("node_entered", "main", {"type": "menu"}),
        ("prompt_played", "main", {"media": PROMPT, "interrupted_by": "2"}),
        ("dtmf_received", "main", {"digit": "2"}),
        ("menu_selected", "main", {"digit": "2", "next": "bye"}),
    ]
    assert ("play", ["digits:5551234"], True) in call.actions


async def test_demo_anonymous_caller_skips_the_empty_readback_item(demo: Flow) -> None:
    call, journal = ScriptedCall([Press("1"), Listen(), HangUp()], caller_number=""), ListJournal()
    result = await run_flow(demo, call, journal)

    # The readback's only item renders empty: nothing is played, the menu comes straight back.
    assert entered(journal)[:4] == ["welcome", "main", "readback", "main"]
    assert not [e for e in journal.of_type("prompt_played") if e.node == "readback"]
    assert all(not any(m.startswith("digits:") for m in a[1]) for a in call.actions if a[0] == "play")
    assert result.outcome == "caller_hangup"


async def test_demo_silence_retries_twice_then_says_goodbye(demo: Flow) -> None:
    call, journal = ScriptedCall([Silence(), Silence(), Silence()]), ListJournal()
    result = await run_flow(demo, call, journal)

    assert result.outcome == "hangup_by_flow"
    assert menu_events(journal) == [("menu_timeout", {"attempt": n}) for n in (1, 2, 3)]
    assert entered(journal) == ["welcome", "main", "bye", "hangup"]
    assert [a[0] for a in call.actions] == ["answer"] + ["play", "read_digit"] * 3 + ["play", "hangup"]


# -- menus ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("digit", "target"), [("1", "one"), ("#", "pound")])
async def test_menu_path_by_digit(digit: str, target: str) -> None:
    journal = ListJournal()
    result = await run_flow(MENU, ScriptedCall([Press(digit)]), journal)
    assert menu_events(journal) == [("menu_selected", {"digit": digit, "next": target})]
    assert result.last_node == target


async def test_barge_in_digit_is_the_choice_and_no_wait_follows() -> None:
    call, journal = ScriptedCall([Interrupt("1")]), ListJournal()
    await run_flow(MENU, call, journal)
    assert journal.entries[:4] == [
        ("node_entered", "m", {"type": "menu"}),
        ("prompt_played", "m", {"media": ["sound:choose"], "interrupted_by": "1"}),
        ("dtmf_received", "m", {"digit": "1"}),
        ("menu_selected", "m", {"digit": "1", "next": "one"}),
    ]
    assert ("read_digit", 3.0) not in call.actions


async def test_invalid_then_retry_then_valid() -> None:
    call, journal = ScriptedCall([Press("7"), Press("1")]), ListJournal()
    result = await run_flow(MENU, call, journal)

    assert result.last_node == "one"
    assert journal.entries[:8] == [
        ("node_entered", "m", {"type": "menu"}),
        ("prompt_played", "m", {"media": ["sound:choose"]}),
        ("dtmf_received", "m", {"digit": "7"}),
        # The menu's partial input (for a controller that adopts the call) rides on its own event.
        (
            "menu_invalid",
            "m",
            {"digit": "7", "attempt": 1, "state": {"partial": {"attempt": 2, "last_failure": "invalid"}}},
        ),
        ("prompt_played", "m", {"media": ["sound:invalid"]}),
        ("prompt_played", "m", {"media": ["sound:choose"]}),
        ("dtmf_received", "m", {"digit": "1"}),
        ("menu_selected", "m", {"digit": "1", "next": "one"}),
    ]
    assert call.actions[:5] == [
        ("play", ["sound:choose"], True),
        ("read_digit", 3.0),
        ("play", ["sound:invalid"], True),
        ("play", ["sound:choose"], True),
        ("read_digit", 3.0),
    ]


async def test_digit_barging_in_on_the_invalid_prompt_answers_the_next_attempt() -> None:
    call, journal = ScriptedCall([Press("7"), Interrupt("#")]), ListJournal()
    result = await run_flow(MENU, call, journal)

    assert result.last_node == "pound"
    assert menu_events(journal) == [
        ("menu_invalid", {"digit": "7", "attempt": 1}),
        ("menu_selected", {"digit": "#", "next": "pound"}),
    ]
    assert [a[0] for a in call.actions] == ["play", "read_digit", "play", "hangup"]


async def test_timeout_branch_after_retries() -> None:
    journal = ListJournal()
    result = await run_flow(MENU, ScriptedCall([Silence(), Silence(), Silence()]), journal)
    assert menu_events(journal) == [("menu_timeout", {"attempt": n}) for n in (1, 2, 3)]
    assert result.last_node == "quiet"
    # No invalid prompt after a timeout: it is only for wrong digits.
    assert journal.of_type("prompt_played") == [("prompt_played", "m", {"media": ["sound:choose"]})] * 3


async def test_invalid_branch_after_retries_and_no_invalid_prompt_after_the_last_try() -> None:
    call, journal = ScriptedCall([Press("5"), Press("6"), Press("7")]), ListJournal()
    result = await run_flow(MENU, call, journal)
    assert menu_events(journal) == [("menu_invalid", {"digit": d, "attempt": n}) for n, d in enumerate("567", 1)]
    assert result.last_node == "bad"
    assert call.actions.count(("play", ["sound:invalid"], True)) == 2


@pytest.mark.parametrize(
    ("script", "target"),
    [
        ([Press("5"), Silence(), Press("6")], "bad"),
        ([Press("5"), Press("6"), Silence()], "quiet"),
    ],
)
async def test_exhausted_menu_branches_on_the_last_failure(script: list[CallerAction], target: str) -> None:
    result = await run_flow(MENU, ScriptedCall(script), ListJournal())
    assert result.last_node == target


async def test_zero_retries_means_one_attempt() -> None:
    f = flow(
        """
        name: t
        start: m
        nodes:
          m: {type: menu, options: {"1": m}, retries: 0, on_timeout: end}
          end: {type: hangup}
        """
    )
    journal = ListJournal()
    await run_flow(f, ScriptedCall([Silence()]), journal)
    assert menu_events(journal) == [("menu_timeout", {"attempt": 1})]


async def test_menu_without_branches_hangs_up_when_exhausted() -> None:
    f = flow(
        """
        name: t
        start: m
        nodes:
          m: {type: menu, prompt: sound:choose, options: {"1": m}, retries: 1}
        """
    )
    journal = ListJournal()
    result = await run_flow(f, ScriptedCall([Press("9"), Press("9")]), journal)
    assert (result.outcome, result.last_node) == ("hangup_by_flow", "m")
    assert journal.entries[-2:] == [("flow_hangup", "m", {}), ("flow_ended", "m", {"reason": "hangup_by_flow"})]


async def test_menu_with_empty_prompt_just_waits() -> None:
    f = flow(
        """
        name: t
        start: m
        nodes:
          m: {type: menu, options: {"1": end}}
          end: {type: hangup}
        """
    )
    call, journal = ScriptedCall([Press("1")]), ListJournal()
    await run_flow(f, call, journal)
    assert call.actions[0] == ("read_digit", 5.0)
    assert journal.of_type("prompt_played") == []


# -- plays, barge-in -------------------------------------------------------------------------------

PLAYS = flow(
    """
    name: plays
    start: a
    nodes:
      a:
        type: play
        media: [sound:one, sound:two]
        next: b
      b:
        type: play
        media: sound:three
        barge_in: false
        next: m
      m:
        type: menu
        options: {"5": end}
      end:
        type: play
        media: sound:bye
    """
)


async def test_barge_in_stops_a_play_and_the_digit_does_not_carry_over() -> None:
    call, journal = ScriptedCall([Interrupt("9"), Press("5")]), ListJournal()
    result = await run_flow(PLAYS, call, journal)

    assert journal.entries[:3] == [
        ("node_entered", "a", {"type": "play"}),
        ("prompt_played", "a", {"media": ["sound:one", "sound:two"], "interrupted_by": "9"}),
        ("dtmf_received", "a", {"digit": "9"}),
    ]
    assert menu_events(journal) == [("menu_selected", {"digit": "5", "next": "end"})]
    # A play node without `next` ends the flow.
    assert (result.outcome, result.last_node) == ("hangup_by_flow", "end")


async def test_without_barge_in_a_digit_waits_in_the_buffer() -> None:
    # The digit pressed during b's playback doesn't stop it and answers the menu that follows.
    call, journal = ScriptedCall([Listen(), Interrupt("5")]), ListJournal()
    await run_flow(PLAYS, call, journal)
    assert ("prompt_played", "b", {"media": ["sound:three"]}) in journal.entries
    assert call.actions[1] == ("play", ["sound:three"], False)
    assert menu_events(journal) == [("menu_selected", {"digit": "5", "next": "end"})]


# -- hangups --------------------------------------------------------------------------------------


async def test_caller_hangup_mid_prompt(demo: Flow) -> None:
    call, journal = ScriptedCall([HangUp()]), ListJournal()
    result = await run_flow(demo, call, journal)

    assert (result.outcome, result.reason, result.last_node) == ("caller_hangup", "caller_hangup", "main")
    assert journal.entries == [
        ("node_entered", "welcome", {"type": "answer"}),
        ("node_entered", "main", {"type": "menu"}),
        ("prompt_played", "main", {"media": PROMPT, "interrupted_by": "hangup"}),
        ("caller_hangup", "main", {}),
        ("flow_ended", "main", {"reason": "caller_hangup"}),
    ]
    assert call.hung_up_by == "caller"
    assert ("hangup",) not in call.actions


async def test_caller_hangup_while_waiting_for_a_digit() -> None:
    journal = ListJournal()
    # Past the invalid prompt and the re-prompt, then gone during the wait.
    call = ScriptedCall([Press("7"), Listen(), Listen(), HangUp()])
    result = await run_flow(MENU, call, journal)
    assert result.outcome == "caller_hangup"
    assert journal.types()[-4:] == ["prompt_played", "prompt_played", "caller_hangup", "flow_ended"]
    assert call.actions[-1] == ("read_digit", 3.0)


async def test_caller_hangup_during_a_play_node() -> None:
    journal = ListJournal()
    result = await run_flow(PLAYS, ScriptedCall([HangUp()]), journal)
    assert (result.outcome, result.last_node) == ("caller_hangup", "a")
    assert journal.types() == ["node_entered", "prompt_played", "caller_hangup", "flow_ended"]
    assert journal.of_type("prompt_played")[0].detail["interrupted_by"] == "hangup"


async def test_caller_hanging_up_as_the_flow_does_is_still_a_flow_hangup() -> None:
    class RacingCall(ScriptedCall):
        async def hangup(self) -> None:
            raise CallerHungUp()

    journal = ListJournal()
    result = await run_flow(MENU, RacingCall([Press("1")]), journal)
    assert result.outcome == "hangup_by_flow"
    assert journal.types()[-2:] == ["flow_hangup", "flow_ended"]


# -- resume, limits, errors ------------------------------------------------------------------------


async def test_resume_with_start_at_skips_what_came_before(demo: Flow) -> None:
    call, journal = ScriptedCall([Press("2")]), ListJournal()
    result = await run_flow(demo, call, journal, start_at="main")

    assert result.outcome == "hangup_by_flow"
    assert entered(journal) == ["main", "bye", "hangup"]
    assert ("answer",) not in call.actions


async def test_resume_at_an_unknown_node_is_an_error(demo: Flow) -> None:
    call, journal = ScriptedCall(), ListJournal()
    result = await run_flow(demo, call, journal, start_at="gone")

    assert (result.outcome, result.reason, result.last_node) == ("error", "error", None)
    assert result.error == "no node named 'gone' in flow 'demo'"
    assert journal.entries == [
        ("flow_ended", None, {"reason": "error", "error": "no node named 'gone' in flow 'demo'"})
    ]
    assert call.actions == []  # the owner decides what to do with the call


LOOP = flow(
    """
    name: loop
    start: a
    nodes:
      a: {type: play, media: "digits:{{ caller.number }}", next: b}
      b: {type: answer, next: a}
    """
)


async def test_step_limit_ends_a_loop_without_caller_input() -> None:
    journal = ListJournal()
    result = await run_flow(LOOP, ScriptedCall(), journal, max_steps=10)

    assert (result.outcome, result.reason, result.steps, result.last_node) == ("error", "step_limit", 10, "b")
    assert entered(journal) == ["a", "b"] * 5
    assert journal.entries[-1].type == "flow_ended"
    assert journal.entries[-1].detail["reason"] == "step_limit"


async def test_default_step_limit_is_1000() -> None:
    journal = ListJournal()
    result = await run_flow(LOOP, ScriptedCall(), journal)
    assert (result.reason, result.steps) == ("step_limit", 1000)


async def test_a_failing_call_ends_the_run_with_an_error() -> None:
    class BrokenCall(ScriptedCall):
        async def play(self, media: Sequence[str], *, barge_in: bool = True, language: str | None = None) -> str | None:
            raise ConnectionError("ARI is down")

    journal = ListJournal()
    result = await run_flow(MENU, BrokenCall(), journal)
    assert (result.outcome, result.reason, result.last_node) == ("error", "error", "m")
    assert result.error == "ConnectionError: ARI is down"
    assert journal.entries[-1] == ("flow_ended", "m", {"reason": "error", "error": "ConnectionError: ARI is down"})


# -- templates and context -------------------------------------------------------------------------

NAMES = flow(
    """
    name: names
    start: a
    nodes:
      a:
        type: play
        media:
          - "characters:{{ caller.name }}"
          - "digits:{{caller.number}}"
          - "digits:{{ dialed }}"
          - "characters:{{ flow.name }}-x"
    """
)


async def test_every_template_name_renders() -> None:
    call = ScriptedCall(caller_number="600", caller_name="ann", dialed="100")
    await run_flow(NAMES, call, ListJournal())
    assert call.actions[0] == ("play", ["characters:ann", "digits:600", "digits:100", "characters:names-x"], True)


async def test_extra_context_is_merged_deeply() -> None:
    call = ScriptedCall(caller_number="600", caller_name="ann", dialed="100")
    await run_flow(NAMES, call, ListJournal(), context={"caller": {"name": "bob"}, "dialed": 200})
    assert call.actions[0] == ("play", ["characters:bob", "digits:600", "digits:200", "characters:names-x"], True)


async def test_a_play_whose_media_all_render_empty_plays_nothing() -> None:
    f = flow(
        """
        name: t
        start: a
        nodes:
          a: {type: play, media: ["digits:{{ caller.number }}", "characters:{{ caller.name }}"], next: b}
          b: {type: hangup}
        """
    )
    call, journal = ScriptedCall(), ListJournal()
    await run_flow(f, call, journal)
    assert call.actions == [("hangup",)]
    assert journal.types() == ["node_entered", "node_entered", "flow_hangup", "flow_ended"]


async def test_a_template_that_fails_at_run_time_is_an_error() -> None:
    # Only possible for flows built in code: the loader rejects unknown names.
    node = NAMES.nodes["a"].model_copy(update={"media": ["digits:{{ x.y }}"]})
    f = Flow.model_construct(name="t", description=None, start="a", nodes={"a": node})
    result = await run_flow(f, ScriptedCall(), ListJournal())
    assert (result.outcome, result.error) == ("error", "unknown name 'x.y'")


def test_every_node_type_has_a_handler() -> None:
    assert set(_HANDLERS) == set(get_args(get_args(Node)[0]))


# -- the fake itself -------------------------------------------------------------------------------


async def test_scripted_call_when_done_hangup() -> None:
    call = ScriptedCall([Press("7")], when_done="hangup")
    result = await run_flow(MENU, call, ListJournal())
    assert result.outcome == "caller_hangup"
    assert call.script == type(call.script)()
