"""Flow loading: every problem becomes FILE:LINE: message, on the line the author must edit."""

from __future__ import annotations

import random
from pathlib import Path
from textwrap import dedent

import pytest
from pydantic import ValidationError

from ivrpowers.flows import (
    NODE_TYPES,
    Flow,
    FlowError,
    MenuNode,
    PlayNode,
    Problem,
    check_flow,
    load_flow,
    load_flow_file,
)

TYPES = ", ".join(sorted(NODE_TYPES))  # every node type, as the messages list them
DEMO = Path(__file__).resolve().parents[2] / "ivrpowers" / "demo" / "demo.yaml"


def doc(text: str) -> str:
    return dedent(text).lstrip("\n")


def problems(text: str) -> list[str]:
    return [str(p) for p in check_flow(doc(text), "f.yaml")]


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


VALID = """
    name: t
    start: a
    nodes:
      a:
        type: answer
        next: m
      m:
        type: menu
        prompt: sound:hello-world
        options: {"1": p, 2: b}
      p:
        type: play
        media: ["digits:{{ caller.number }}"]
        next: m
      b:
        type: hangup
"""


# -- valid flows ------------------------------------------------------------------------------


def test_demo_flow_loads() -> None:
    flow = load_flow_file(DEMO)
    assert flow.name == "demo"
    assert flow.start == "welcome"
    menu = flow.nodes["main"]
    assert isinstance(menu, MenuNode)
    assert menu.options == {"1": "readback", "2": "account", "3": "office-hours", "4": "support"}
    assert (menu.timeout, menu.retries, menu.on_invalid, menu.on_timeout) == (4, 2, "bye", "bye")
    # The issues' contract for the demo: gather, set, branch by business hours, voicemail, transfer,
    # and a queue (the ACD's).
    assert {"gather", "set", "branch", "record", "transfer", "queue"} <= {node.type for node in flow.nodes.values()}
    assert "office" in flow.calendars
    readback = flow.nodes["readback"]
    assert isinstance(readback, PlayNode)
    assert readback.media == ["digits:{{ caller.number }}"]
    assert readback.next == "main"
    assert check_flow(DEMO.read_text(), str(DEMO)) == []


def test_shorthands_and_defaults() -> None:
    flow = load_flow(doc(VALID))
    menu = flow.nodes["m"]
    assert isinstance(menu, MenuNode)
    assert menu.prompt == ["sound:hello-world"]  # a single string is a one-item list
    assert menu.options == {"1": "p", "2": "b"}  # unquoted digit keys are accepted
    assert (menu.timeout, menu.retries, menu.invalid_prompt) == (5.0, 2, [])
    assert (menu.on_invalid, menu.on_timeout) == (None, None)
    play = flow.nodes["p"]
    assert isinstance(play, PlayNode) and play.barge_in is True


def test_transitions_and_media_items_come_from_annotations() -> None:
    flow = load_flow(doc(VALID))
    assert list(flow.nodes["m"].transitions()) == [(("options", "1"), "p"), (("options", "2"), "b")]
    assert list(flow.nodes["a"].transitions()) == [(("next",), "m")]
    assert list(flow.nodes["p"].media_items()) == [(("media", 0), "digits:{{ caller.number }}")]
    assert list(flow.nodes["b"].transitions()) == []


def test_flow_model_rejects_dangling_references_outside_the_loader_too() -> None:
    with pytest.raises(ValidationError, match=r"nodes\.a\.next: no node named 'nope'"):
        Flow.model_validate({"name": "x", "start": "a", "nodes": {"a": {"type": "answer", "next": "nope"}}})


# -- one problem, exact line --------------------------------------------------------------------


def test_unclosed_bracket_points_at_the_line_that_opened_it() -> None:
    # The parser notices on line 5; the mistake (no closing brace) is on line 4.
    assert only_problem(
        """
        name: t
        start: a
        nodes:
          a: {type: hangup
          b: 1
        """
    ).startswith("f.yaml:4: YAML: ")


def test_unclosed_quote_points_at_the_opening_quote() -> None:
    problem = only_problem('name: t\nstart: a\nnodes:\n  a:\n    type: play\n    media: "sound:x\n    next: b\n')
    assert problem.startswith("f.yaml:6: YAML: ")


def test_bad_indentation_points_at_the_indented_line() -> None:
    assert only_problem("name: t\nstart: a\n nodes:\n  a:\n    type: hangup\n").startswith("f.yaml:3: YAML: ")


def test_unclosed_list_at_end_of_file_points_at_a_real_line() -> None:
    assert only_problem("name: t\nstart: [a\n").startswith("f.yaml:2: YAML: ")


def test_unknown_node_type_points_at_the_type_value() -> None:
    assert only_problem(
        """
        name: t
        start: a
        nodes:
          a:
            next: b
            type: plya
          b: {type: hangup}
        """
    ) == f"f.yaml:6: nodes.a: unknown node type 'plya' (expected one of: {TYPES})"


def test_node_without_type() -> None:
    assert only_problem(
        """
        name: t
        start: a
        nodes:
          a:
            next: a
        """
    ) == f"f.yaml:4: nodes.a: node has no 'type' (expected one of: {TYPES})"


def test_unknown_field_points_at_the_key() -> None:
    assert only_problem(
        """
        name: t
        start: a
        nodes:
          a:
            type: play
            media: sound:beep
            colour: red
        """
    ) == "f.yaml:7: nodes.a: unknown field 'colour' (allowed: media, barge_in, next)"


def test_unknown_top_level_field() -> None:
    assert only_problem(
        """
        name: t
        start: a
        version: 2
        nodes:
          a: {type: hangup}
        """
    ) == "f.yaml:3: unknown field 'version' (allowed: name, description, timezone, language, calendars, start, nodes)"


def test_missing_field_points_at_the_node() -> None:
    assert only_problem(
        """
        name: t
        start: a
        nodes:
          a:
            type: play
            next: a
        """
    ) == "f.yaml:4: nodes.a: missing required field 'media'"


def test_missing_start_is_line_1() -> None:
    assert only_problem(
        """
        # comment first
        name: t
        nodes:
          a: {type: hangup}
        """
    ) == "f.yaml:1: missing required field 'start'"


def test_start_naming_a_missing_node_points_at_start() -> None:
    assert only_problem(
        """
        name: t
        nodes:
          hello: {type: hangup}
        start: helo
        """
    ) == "f.yaml:4: start: start node 'helo' does not exist (did you mean 'hello'?)"


@pytest.mark.parametrize(
    ("field", "where", "line"),
    [
        ("next", "nodes.a.next", 7),
        ("options", "nodes.m.options.2", 12),
        ("on_invalid", "nodes.m.on_invalid", 13),
        ("on_timeout", "nodes.m.on_timeout", 14),
    ],
)
def test_dangling_transition_points_at_its_value(field: str, where: str, line: int) -> None:
    targets = dict.fromkeys(["next", "options", "on_invalid", "on_timeout"], "a")
    targets[field] = "nowhere"
    text = f"""
        name: t
        start: a
        nodes:
          a:
            type: play
            media: [sound:beep]
            next: {targets["next"]}
          m:
            type: menu
            options:
              "1": a
              "2": {targets["options"]}
            on_invalid: {targets["on_invalid"]}
            on_timeout: {targets["on_timeout"]}
    """
    assert only_problem(text) == f"f.yaml:{line}: {where}: no node named 'nowhere'"


def test_wrong_value_types() -> None:
    found = problems(
        """
        name: t
        start: a
        nodes:
          a:
            type: menu
            options: {"1": a}
            timeout: "4"
            retries: 1.5
          b:
            type: play
            media: [sound:beep]
            barge_in: yes
            next: 3
        """
    )
    assert found == [
        "f.yaml:7: nodes.a.timeout: Input should be a valid number, got a string ('4')",
        "f.yaml:8: nodes.a.retries: Input should be a valid integer, got a number (1.5)",
        "f.yaml:12: nodes.b.barge_in: Input should be a valid boolean, got a string ('yes')",
        "f.yaml:13: nodes.b.next: Input should be a valid string, got a number (3)",
    ]


def test_out_of_range_values() -> None:
    found = problems(
        """
        name: Bad Name
        start: a
        nodes:
          a:
            type: menu
            options: {"1": a, "x": a}
            timeout: 0
            retries: -1
        """
    )
    assert [p.split(": ", 1)[0] for p in found] == ["f.yaml:1", "f.yaml:6", "f.yaml:7", "f.yaml:8"]
    assert "not a valid name" in found[0]
    assert "nodes.a.options.x: 'x' is not a DTMF digit" in found[1]


def test_options_digit_given_twice() -> None:
    assert "digit '1' is listed twice" in only_problem(
        """
        name: t
        start: a
        nodes:
          a:
            type: menu
            options: {1: a, "1": a}
        """
    )


@pytest.mark.parametrize(
    ("media", "message"),
    [
        ("foo:bar", "unknown media scheme 'foo' in 'foo:bar'"),
        ("hello-world", "'hello-world' is not a media URI (expected scheme:value"),
        ("'sound:'", "'sound:' has nothing after 'sound:'"),
        ("sound: beep", "got a mapping (write sound:beep with no space after the colon)"),
        ("'digits:{{ caller.number'", "unbalanced '{{' / '}}'"),
        ("'digits:{{ 1 + 2 }}'", "{{ 1 + 2 }} is not a name"),
    ],
)
def test_invalid_media_uri_points_at_the_item(media: str, message: str) -> None:
    problem = only_problem(
        f"""
        name: t
        start: a
        nodes:
          a:
            type: play
            media:
              - sound:beep
              - {media}
        """
    )
    assert problem.startswith("f.yaml:8: nodes.a.media.1: "), problem
    assert message in problem


def test_every_media_scheme_is_accepted() -> None:
    media = ["sound:beep", "digits:12", "number:42", "characters:abc", "tone:ring", "recording:msg1"]
    flow = Flow.model_validate({"name": "t", "start": "a", "nodes": {"a": {"type": "play", "media": media}}})
    assert flow.nodes["a"].media == media  # type: ignore[union-attr]


def test_unknown_template_name_points_at_the_item() -> None:
    assert only_problem(
        """
        name: t
        start: a
        nodes:
          a:
            type: play
            media: [sound:beep,
                    "digits:{{ caller.numbr }}"]
        """
    ) == (
        "f.yaml:7: nodes.a.media.1: unknown name {{ caller.numbr }} "
        "(known: caller.name, caller.number, dialed, flow.name, now.*, vars.NAME)"
    )


def test_all_template_names_are_known() -> None:
    load_flow(
        doc(
            """
            name: t
            start: a
            nodes:
              a:
                type: play
                media:
                  - "digits:{{caller.number}}"
                  - "characters:{{ caller.name }}"
                  - "digits:{{ dialed }}"
                  - "characters:{{ flow.name }}"
            """
        )
    )


def test_duplicate_keys_are_all_reported() -> None:
    assert problems(
        """
        name: t
        start: a
        nodes:
          a:
            type: play
            media: [sound:beep]
            media: [sound:beep]
          a: {type: hangup}
        start: a
        """
    ) == [
        "f.yaml:7: duplicate key 'media'",
        "f.yaml:8: duplicate key 'a'",
        "f.yaml:9: duplicate key 'start'",
    ]


def test_bad_node_ids() -> None:
    assert problems(
        """
        name: t
        start: a
        nodes:
          a: {type: hangup}
          bad id: {type: hangup}
          7: {type: hangup}
        """
    ) == [
        "f.yaml:5: nodes.bad id: 'bad id' is not a valid node id (letters, digits, '_' and '-')",
        "f.yaml:6: nodes.7: Input should be a valid string, got a number (7)",
    ]


# -- many problems at once ----------------------------------------------------------------------


def test_several_problems_are_reported_together_sorted_by_line() -> None:
    text = doc(
        """
        name: t
        start: welcom
        nodes:
          welcome:
            type: answer
            next: main
          main:
            type: menu
            prompt: ["digits:{{ callr.number }}", "foo:x"]
            options: {"1": readbak}
            retries: many
          readback:
            type: plya
          bye:
            type: play
            media: sound:goodbye
            next: nowhere
            extra: 1
        """
    )
    with pytest.raises(FlowError) as caught:
        load_flow(text, "flows/t.yaml")
    found = [str(p) for p in caught.value.problems]
    assert [p.split(": ", 1)[0] for p in found] == [
        "flows/t.yaml:2",
        "flows/t.yaml:9",
        "flows/t.yaml:9",
        "flows/t.yaml:10",
        "flows/t.yaml:11",
        "flows/t.yaml:13",
        "flows/t.yaml:17",
        "flows/t.yaml:18",
    ]
    assert "start node 'welcom' does not exist (did you mean 'welcome'?)" in found[0]
    assert "unknown media scheme 'foo'" in found[1] and "unknown name {{ callr.number }}" in found[2]
    assert "nodes.main.options.1: no node named 'readbak' (did you mean 'readback'?)" in found[3]
    assert str(caught.value) == "\n".join(found)
    assert all(isinstance(p, Problem) for p in caught.value.problems)


def test_problem_str() -> None:
    assert str(Problem("flows/x.yaml", 3, "boom")) == "flows/x.yaml:3: boom"


# -- garbage never raises anything but FlowError --------------------------------------------------

GARBAGE = [
    "",
    "   \n\n",
    "# only a comment\n",
    "null",
    "42",
    "just a string",
    "- a\n- b\n",
    "name: t\nstart: a\nnodes: [a, b]\n",
    "name: t\nstart: a\nnodes: 5\n",
    "name: t\nstart: a\nnodes: {}\n",
    "name: t\nstart: a\nnodes:\n",
    "name: [t]\nstart: {a: 1}\nnodes: {a: [1, 2]}\n",
    "name: t\nstart: a\nnodes:\n  a:\n    type: [menu]\n",
    "name: t\nstart: a\nnodes:\n  a:\n    type: {x: 1}\n",
    "name: t\nstart: a\nnodes:\n  a:\n    type: menu\n    options: [1, 2]\n    prompt: {a: 1}\n",
    "name: t\nstart: a\nnodes:\n  a:\n    type: menu\n    options: {[1]: a, null: b, true: c}\n",
    "name: t\nstart: a\nnodes:\n  a:\n    type: play\n    media: [[sound:x], {sound: x}, 3, null]\n",
    "name: t\nstart: a\nnodes:\n  a: !!python/object:os.system {type: hangup}\n",
    "name: !!str t\nstart: !env START\nnodes:\n  a: !include other.yaml\n",
    "name: !custom t\nstart: 2024-01-01\nnodes:\n  ? [complex, key]\n  : {type: hangup}\n",
    "&a [*a]",
    "a: &x {b: *x}",
    "a: *undefined",
    "--- a\n--- b\n",
    "\x00\x01",
    "name: t\n\tstart: a\n",
    "{{ caller.number }}",
    "[" * 1000,
    "name: t\nstart: a\nnodes: {}\n" + "#" * (1024 * 1024),
    "a: " + "[" * 200 + "]" * 200,
    # A billion laughs: aliases that would expand to 10**9 values.
    "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)),
    "base: &b {type: play, media: sound:x}\nname: t\nstart: a\nnodes:\n  a:\n    <<: *b\n    next: nope\n",
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_gives_problems_not_exceptions(text: str) -> None:
    with pytest.raises(FlowError) as caught:
        load_flow(text, "g.yaml")
    assert caught.value.problems
    for problem in caught.value.problems:
        assert problem.file == "g.yaml" and problem.line >= 1 and problem.message
        assert "internal error" not in problem.message


def test_yaml_tags_are_reported() -> None:
    assert problems(
        """
        name: !!str t
        start: a
        nodes:
          a: !include {type: hangup}
          b: !!python/object:os.system {type: hangup}
        """
    ) == [
        "f.yaml:4: nodes.a: YAML tag !include is not supported in flow files",
        "f.yaml:5: nodes.b: YAML tag tag:yaml.org,2002:python/object:os.system is not supported in flow files",
    ]


def test_merge_keys_are_located() -> None:
    found = problems(
        """
        base: &b {type: play, media: sound:x}
        name: t
        start: a
        nodes:
          a:
            <<: *b
            next: nope
        """
    )
    assert found == [
        "f.yaml:1: unknown field 'base' (allowed: name, description, timezone, language, calendars, start, nodes)",
        "f.yaml:7: nodes.a.next: no node named 'nope'",
    ]


def test_mutated_demo_never_crashes() -> None:
    source = DEMO.read_text()
    rng = random.Random(20240601)
    alphabet = "abc:{}[]-#*&!|>'\"\n  \t0123456789"
    for _ in range(500):
        text = list(source)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(text))
            op = rng.random()
            if op < 0.4:
                del text[pos : pos + rng.randint(1, 20)]
            elif op < 0.8:
                text.insert(pos, rng.choice(alphabet))
            else:
                text[pos] = rng.choice(alphabet)
        mutated = "".join(text)
        for problem in check_flow(mutated, "m.yaml"):
            assert problem.line >= 1
            assert "internal error" not in problem.message, (problem, mutated)


def test_load_flow_file_errors_are_problems(tmp_path: Path) -> None:
    with pytest.raises(FlowError) as caught:
        load_flow_file(tmp_path / "missing.yaml")
    assert str(caught.value).startswith(f"{tmp_path / 'missing.yaml'}:1: cannot read file")

    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"name: t\nstart: a\ndescription: caf\xe9\n")
    with pytest.raises(FlowError) as caught:
        load_flow_file(latin1)
    assert str(caught.value) == f"{latin1}:3: file is not valid UTF-8"


def test_load_flow_file_names_problems_after_the_path(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: t\nstart: a\nnodes:\n  a: {type: hangup, extra: 1}\n")
    with pytest.raises(FlowError) as caught:
        load_flow_file(path)
    assert str(caught.value) == f"{path}:4: nodes.a: unknown field 'extra' (hangup nodes have no fields besides 'type')"
