"""The flow YAML reader reads what ruamel reads, the same way (values and lines), whether the events
come from libyaml or from ruamel's own parser, and within its bounds."""

from __future__ import annotations

import datetime
import io
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import YAMLError

from ivrpowers.yamlfile import reader as yaml_reader
from ivrpowers.yamlfile.reader import Unusable, Where, read


def ruamel_plain(value: Any) -> Any:
    """What ruamel's round-trip loader reads, as plain Python values."""
    if isinstance(value, TaggedScalar):
        return str(value.value)
    if isinstance(value, dict):
        return {ruamel_plain(k): ruamel_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ruamel_plain(v) for v in value]
    for plain in (bool, int, float, str):
        if isinstance(value, plain):
            return plain(value)
    return value


def ruamel_load(text: str) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True
    return yaml.load(text)


def both_ways(text: str, monkeypatch: pytest.MonkeyPatch | None = None) -> list[Any]:
    """The document read from libyaml's events and from ruamel's."""
    fast = read(text)
    mp = monkeypatch or pytest.MonkeyPatch()
    with mp.context() as patched:
        patched.setattr(yaml_reader, "_CParser", None)
        slow = read(text)
    return [fast, slow]


TRICKY = [
    "010", "0o17", "0x1F", "1_000", "1:30", ".inf", "-.INF", "+1", "1e3", "1.5", "yes", "no", "on", "off",
    "~", "null", "Null", "true", "False", "TRUE", "2026-12-25", "2026-12-25 10:00:00", "<<", "sound:beep",
    "digits:{{ vars.account }}", "a b", "", "0", "-0", "09", "x: y", "#x", "- a", "'", '"', "é", "\t",
    "3.", ".5", "1e", "0b101",
]

scalars = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x85\u2028\u2029\ufeff"),
             max_size=12),
    st.integers(min_value=-10**6, max_value=10**6),
    st.booleans(),
    st.none(),
)
keys = st.one_of(st.sampled_from(TRICKY), st.text(alphabet="abc123_-: ", min_size=1, max_size=6), st.integers(0, 99))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)


def dumped(value: Any, flow_style: bool | None) -> str:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = flow_style
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(value, out)
    return out.getvalue()


def key_lines(value: Any, where: Where | None, out: list[int]) -> list[int]:
    if where is None:
        return out
    for (key_line, value_line, inner), item in zip(
            where.entries.values() if isinstance(where.entries, dict) else where.entries,
            value.values() if isinstance(value, dict) else value, strict=True):
        out.append(key_line if isinstance(value, dict) else value_line)
        key_lines(item, inner, out)
    return out


def ruamel_lines(value: Any, out: list[int]) -> list[int]:
    if isinstance(value, CommentedMap):
        for key, item in value.items():
            out.append(value.lc.key(key)[0] + 1)
            ruamel_lines(item, out)
    elif isinstance(value, CommentedSeq):
        for index, item in enumerate(value):
            out.append(value.lc.item(index)[0] + 1)
            ruamel_lines(item, out)
    return out


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from([None, True, False]))
def test_values_and_lines_are_ruamels(value: Any, flow_style: bool | None) -> None:
    text = dumped(value, flow_style)
    try:
        expected = ruamel_load(text)
    except YAMLError:  # ruamel writes a few things it can't read back: `{:1: null}`
        assume(False)
    for document in both_ways(text):
        assert document.root == ruamel_plain(expected), text
        assert key_lines(document.root, document.where, []) == ruamel_lines(expected, []), text


HANDWRITTEN = [
    # block scalars, comments, multi-line plain and quoted text, escapes
    "a: |\n  one\n  two\nb: >-\n  folded\n  text\n# comment\nc: plain\n  continued\nd: \"tab\\tand \\u00e9\"\n",
    "a: 'it''s'\nb: \"\\/\"\nc: [sound:hello-world, sound:digits/1]\nd: {\"1\": x, 2: y}\n",
    # anchors, aliases and merges: explicit keys win, then the first merged mapping
    "base: &b {p: 1, q: 2}\nother: &o {q: 9, r: 3}\nm: {<<: [*b, *o], q: 7}\nn: {<<: *b}\nlist: [*b, *b]\n",
    # explicit tags that mean plain values, duplicates (the first wins), a null key, empty values
    "a: !!str 3\nb: !!int '7'\nc: !!float 1\nd: !!bool true\ne: !!null ''\nf: 1\nf: 2\n~: x\ng:\nh: ''\n",
    "%YAML 1.2\n---\na: [1, 2]\n...\n",
    "- a\n- - b\n  - c\n- {d: e}\n- ? f\n  : g\n",
    "a: 2026-12-25\nb: 12:30\nc: 0o14\nd: 1_000\n",
]


@pytest.mark.parametrize("text", HANDWRITTEN)
def test_handwritten_documents_read_as_ruamel_reads_them(text: str) -> None:
    expected = ruamel_plain(ruamel_load(text))
    for document in both_ways(text):
        assert document.root == expected
        assert list(document.root) == list(expected)  # keys in ruamel's order too


def test_merged_keys_point_at_where_they_are_written() -> None:
    document = read("base: &b\n  p: 1\nm:\n  <<: *b\n  q: 2\n")
    assert document.root == {"base": {"p": 1}, "m": {"q": 2, "p": 1}}
    where = document.where
    assert where is not None and isinstance(where.entries, dict)
    inner = where.entries["m"][2]
    assert inner is not None and isinstance(inner.entries, dict)
    assert inner.entries["p"][:2] == (2, 2) and inner.entries["q"][:2] == (5, 5)


def test_aliases_share_the_value_and_count_at_their_expanded_size(monkeypatch: pytest.MonkeyPatch) -> None:
    document = read("a: &x [1, 2, 3]\nb: *x\n")
    assert document.root["a"] is document.root["b"]
    monkeypatch.setattr(yaml_reader, "MAX_VALUES", 50)
    laughs = "a: &a [1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b]\n"
    for patched_parser in (False, True):
        with monkeypatch.context() as patched:
            if patched_parser:
                patched.setattr(yaml_reader, "_CParser", None)
            with pytest.raises(Unusable) as caught:
                read(laughs)
        assert (caught.value.line, caught.value.message) == (
            3, "flow is too large (aliases that expand to more than 50 values)")


@pytest.mark.parametrize(("text", "line", "message"), [
    ("a: !!int abc\n", 1, "YAML: cannot read a value (invalid literal for int() with base 10: 'abc')"),
    ("a: *nowhere\n", 1, "YAML: found undefined alias *nowhere"),
    ("a: 1\n---\nb: 2\n", 2, "YAML: a flow file holds one document; found another here (a second '---')"),
    ("%YAML 1.1\n---\na: yes\n", 1, "YAML: flows are YAML 1.2; remove the %YAML line"),
    ("a: {<<: 3}\n", 1, "YAML: '<<' (merge) takes a mapping or a list of mappings"),
    ("a: [1, 2\nb: 3\n", 1, "YAML: expected ',' or ']', but got ':' "
                            "(while parsing a flow sequence started here; found on line 2)"),
])
def test_unusable_files_say_why_at_their_line(text: str, line: int, message: str) -> None:
    with pytest.raises(Unusable) as caught:
        read(text)
    assert (caught.value.line, caught.value.message) == (line, message)


def test_what_libyaml_refuses_ruamel_reads() -> None:
    # YAML 1.2 takes U+2028 as an ordinary character; libyaml (1.1) stops at it.
    assert read("a: \u2028b\n").root == {"a": "b"}


def test_problems_that_do_not_stop_the_reading_come_with_their_place() -> None:
    document = read("a: !include other.yaml\nb:\n  c: 1\n  c: 2\n  ? [x]\n  : 3\n")
    assert document.root == {"a": "other.yaml", "b": {"c": 1}}
    assert document.problems == [
        (1, ("a",), "YAML tag !include is not supported in flow files"),
        (4, (), "duplicate key 'c'"),
        (5, ("b",), "a key must be text or a number, not a list or mapping"),
    ]


def test_dates_stay_dates_for_validation_to_refuse() -> None:
    assert read("closed: [2026-12-25]\n").root == {"closed": [datetime.date(2026, 12, 25)]}


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(HANDWRITTEN[:3] + HANDWRITTEN[4:]))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        text = text[:at] + draw(st.text(alphabet=" \n-:?,[]{}#&*!|>'\"%@`\\\tab1", max_size=3)) + text[at + cut:]
    return text


@settings(max_examples=1500, deadline=None)
@given(mutated())
def test_damaged_documents_read_as_ruamel_reads_them_or_say_why(text: str) -> None:
    try:
        expected = ruamel_plain(ruamel_load(text))
    except Exception:  # ruamel refuses it: whatever libyaml makes of it, it is read or refused cleanly
        expected = None
    try:
        document = read(text)
    except Unusable as exc:
        assert 1 <= exc.line <= max(1, text.count("\n") + 1)
        return
    # A reported problem (a list as a key...) stops the flow loading; otherwise, ruamel's values.
    if expected is not None and not document.problems:
        assert document.root == expected, text
