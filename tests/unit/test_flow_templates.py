"""The `{{ dotted.path }}` renderer: a lookup and nothing else."""

from __future__ import annotations

import pytest

from ivrpowers.flows import TEMPLATE_NAMES, TemplateError, render
from ivrpowers.flows.templates import template_names

CONTEXT = {"caller": {"number": "600", "name": None}, "dialed": 100, "flow": {"name": "demo"}}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("sound:beep", "sound:beep"),
        ("digits:{{ caller.number }}", "digits:600"),
        ("digits:{{caller.number}}{{ dialed }}", "digits:600100"),
        ("characters:{{ caller.name }}", "characters:"),  # None renders empty
        ("x-{{\n flow.name\n}}-y", "x-demo-y"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ caller.nope }}", "unknown name 'caller.nope'"),
        ("{{ nope }}", "unknown name 'nope'"),
        ("{{ caller.number.x }}", "unknown name 'caller.number.x'"),
        ("{{ caller }}", "'caller' is a group of names, not a value"),
        ("{{ caller.number }", "unbalanced"),
        ("a }} b", "unbalanced"),
        ("{{ }}", "is not a name"),
        ("{{ caller['number'] }}", "is not a name"),
        ("{{ a.b | upper }}", "is not a name"),
    ],
)
def test_render_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("[", r"\[").replace("|", r"\|")):
        render(template, CONTEXT)


def test_template_names() -> None:
    assert template_names("a {{ caller.number }} b {{dialed}}") == ["caller.number", "dialed"]
    assert template_names("plain") == []


def test_builtin_names() -> None:
    assert {"caller.number", "caller.name", "dialed", "flow.name"} == TEMPLATE_NAMES
