"""The expression language: parsing, load-time checks, evaluation, and hostile input."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from ivrpowers.flows.expressions import (
    MAX_DEPTH,
    MAX_INT,
    ExpressionError,
    Scope,
    compile_expression,
)

NOW = {"time": "09:30", "weekday": "mon", "date": "2026-12-07", "hour": 9, "minute": 30}


def scope(vars: Mapping[str, Any] | None = None, open_calendars: frozenset[str] = frozenset()) -> Scope:
    return Scope(vars=dict(vars or {}), caller={"number": "+34600111222", "name": "Ana"}, dialed="100",
                 flow={"name": "demo"}, now=lambda: NOW, is_open=lambda name: name in open_calendars)


def ev(source: Any, vars: Mapping[str, Any] | None = None, **kw: Any) -> Any:
    return compile_expression(source, frozenset({"support", "sales"})).evaluate(scope(vars, **kw))


@pytest.mark.parametrize(("source", "expected"), [
    ("1 + 2 - 4", -1),
    ("2.5 + 1", 3.5),
    ("'a' + \"b\"", "ab"),
    ("[1, 2] + [3]", [1, 2, 3]),
    ("-(1 + 2)", -3),
    ("1 == 1.0", True),
    ("1 == '1'", False),
    ("true == 1", False),
    ("null == null", True),
    ("'abc' < 'abd'", True),
    ("3 >= 3 and 2 > 1", True),
    ("not 1 == 2", True),
    ("false or 0 or ''", False),
    ("'b' in ['a', 'b']", True),
    ("'ell' in 'hello'", True),
    ("3 not in [1, 2]", True),
    ("len('hello') + len([1]) + len(null)", 6),
    ("int('42') + int(2.9) + int(true)", 45),
    ("str(5) + str(1.5) + str(true) + str(null)", "51.5true"),
    ("upper('ab') + lower('CD')", "ABcd"),
    ("'  x' matches '^\\s+x$'", True),
    ("'a\\d' == 'a' + '\\\\' + 'd'", True),  # an unknown escape keeps its backslash
    ("caller.number matches '^\\\\+34'", True),
    ("caller.name == 'Ana' and dialed == '100' and flow.name == 'demo'", True),
    ("now.weekday in ['sat', 'sun'] or now.hour < 9", False),
    ("now.time >= '09:00' and now.date == '2026-12-07' and now.minute == 30", True),
    (42, 42),
    (True, True),
])
def test_evaluates(source: Any, expected: Any) -> None:
    assert ev(source) == expected


def test_variables_nested_values_and_unset_ones() -> None:
    vars = {"customer": {"tier": "gold", "tags": ["vip", "es"]}, "n": 3}
    assert ev("vars.customer.tier", vars) == "gold"
    assert ev("vars.customer.tags[1]", vars) == "es"
    assert ev("vars.customer['tier']", vars) == "gold"
    assert ev("vars.customer.tags[-1] == 'es' and vars.customer.tags[9] == null", vars) is True
    assert ev("vars.missing", vars) is None
    assert ev("vars.missing.deeper", vars) is None
    assert ev("not vars.missing and vars.n + 1 == 4", vars) is True
    assert ev("vars.account matches '^[0-9]{8}$'", {"account": "12345678"}) is True
    assert ev("vars.account matches '^[0-9]{8}$'", {}) is False  # unset: no match, no error


def test_calendars_are_asked_by_name() -> None:
    assert ev("open('support')", open_calendars=frozenset({"support"})) is True
    assert ev('open("sales")', open_calendars=frozenset({"support"})) is False


def test_reads_names_the_variables_used() -> None:
    e = compile_expression("vars.a + vars.b.c == len(vars.d) and vars.e[vars.f] in [vars.g]")
    assert e.reads == {"a", "b", "d", "e", "f", "g"}


@pytest.mark.parametrize(("source", "problem", "column"), [
    ("vars", "needs a field", 1),
    ("account == 1", "unknown name 'account'", 1),
    ("caller.phone", "caller.phone does not exist", 1),
    ("now.month", "now.month does not exist", 1),
    ("vars.a ==", "expected a value", 10),
    ("vars.a = 1", "unexpected character '='", 8),
    ("vars.a && vars.b", "use 'and', 'or', 'not'", 8),
    ("(1 + 2", "expected ')'", 7),
    ("1 2", "unexpected '2'", 3),
    ("'open", "not closed", 1),
    ("1 < 2 < 3", "don't chain", 7),
    ("foo(1)", "unknown function 'foo'", 1),
    ("len(1, 2)", "takes one argument", 1),
    ("open(vars.x)", "calendar's name in quotes", 1),
    ("open('night')", "no calendar named 'night'", 1),
    ("vars.a matches vars.b", "regex in quotes", 16),
    ("vars.a matches '(unclosed'", "bad regex", 16),
    ("vars.a not 1", "expected 'in' after 'not'", 12),
    ("and 1", "needs something on its left", 1),
    ("", "empty expression", None),
    ("99999999999999999999", "too large", 1),
])
def test_load_time_errors_say_what_and_where(source: str, problem: str, column: int | None) -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(source, frozenset({"support"}))
    assert problem in raised.value.problem
    assert raised.value.column == column


@pytest.mark.parametrize(("source", "vars", "problem"), [
    ("vars.a + 1", {"a": "1"}, "cannot add text + number"),
    ("vars.a < 1", {"a": None}, "cannot compare null < number"),
    ("vars.a - 'x'", {"a": 1}, "cannot subtract"),
    ("-vars.a", {"a": "x"}, "cannot negate text"),
    ("int(vars.a)", {"a": "12a"}, "not a whole number"),
    ("vars.a.b", {"a": 5}, "cannot take .b of number"),
    ("vars.a[0]", {"a": {"k": 1}}, "an object's key is text"),
    ("vars.a matches 'x'", {"a": 5}, "needs text on its left"),
    ("len(vars.a)", {"a": 5}, "len() of number"),
    ("1 in vars.a", {"a": 5}, "'in' needs text, a list or an object"),
])
def test_run_time_errors_are_expression_errors(source: str, vars: dict[str, Any], problem: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(problem)):
        ev(source, vars)


# -- hostile input: every bound is an error, never a hang or a crash -----------------------------
def test_deep_nesting_is_refused_at_load() -> None:
    for source in ("(" * 5000 + "1" + ")" * 5000, "[" * 5000 + "]" * 5000, "not " * 5000 + "true",
                   "-" * 5000 + "1"):
        with pytest.raises(ExpressionError, match=r"nested too deep|too long"):
            compile_expression(source)
    ok = "(" * (MAX_DEPTH - 2) + "1" + ")" * (MAX_DEPTH - 2)
    assert compile_expression(ok).evaluate(scope()) == 1


def test_huge_numbers_and_values_are_refused() -> None:
    with pytest.raises(ExpressionError, match="too large"):
        ev("vars.a + vars.a", {"a": MAX_INT})
    with pytest.raises(ExpressionError, match="too large"):
        ev("vars.a + 1.0", {"a": 1e308 * 10 if False else float("inf")})
    with pytest.raises(ExpressionError, match="not a whole number"):
        ev("int(vars.a)", {"a": "9" * 5000})
    with pytest.raises(ExpressionError, match="text longer"):
        ev("vars.a + vars.a", {"a": "x" * 40000})
    with pytest.raises(ExpressionError, match="too long"):
        compile_expression("1 + " * 1000 + "1")


def test_a_catastrophic_regex_is_cut_off_by_its_time_limit() -> None:
    with pytest.raises(ExpressionError, match="took too long"):
        ev("vars.a matches '^(a|aa)+$'", {"a": "a" * 60 + "!"})


def test_arbitrary_text_never_crashes_the_parser() -> None:
    samples = ["vars.", "vars.a.", "[1,", "[,]", "len()", "()", "'a' 'b'", "vars.a[", "1..2", "1.", ".5",
               "not", "vars.a not", "matches", "1 matches", "\x00", "vars.and", "vars.a . b", "–1", "١٢"]
    for source in samples:
        try:
            compile_expression(source)
        except ExpressionError:
            pass


def test_matches_takes_a_literal_so_adding_to_it_is_refused_at_load() -> None:
    with pytest.raises(ExpressionError, match="put parentheses"):
        compile_expression("vars.a matches 'x' + vars.b")
    assert compile_expression("(vars.a matches 'x') == true").evaluate(scope({"a": "x"})) is True
