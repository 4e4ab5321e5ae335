"""`{{ dotted.path }}` templates: a value put into text (a prompt, a URL).

Deliberately not Jinja: flows are data written by non-programmers and rendered on every call, so
a template is a lookup and nothing else (no filters, no code, nothing to sandbox); computing is
for expressions (`flows.expressions`), in `set` and `branch`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .expressions import to_text

__all__ = ["TEMPLATE_NAMES", "TemplateError", "has_template", "render", "template_names", "unknown_template_name"]

# Names every call provides (see `interpreter.base_context`), beside `vars.NAME` (the flow's
# variables, any path below them) and `now.*`. Validation rejects any other name, so a typo is
# caught when the flow is loaded, not when a caller reaches the node.
TEMPLATE_NAMES: frozenset[str] = frozenset({"caller.number", "caller.name", "dialed", "flow.name"})
NOW_NAMES: frozenset[str] = frozenset({"now.time", "now.weekday", "now.date", "now.hour", "now.minute"})

# A placeholder cannot hold "{{" or "}}": so a scan never goes past the next one (linear in the text).
_PLACEHOLDER = re.compile(r"\{\{((?:[^{}]|\{(?!\{)|\}(?!\}))*)\}\}")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class TemplateError(ValueError):
    """A malformed template, or a name the render context doesn't have."""


def _placeholders(template: str) -> Iterator[re.Match[str]]:
    yield from _PLACEHOLDER.finditer(template)
    # Leftover braces mean a half-written placeholder; rendering it literally would make
    # Asterisk say "open brace open brace" to a caller, so it's an error instead.
    rest = _PLACEHOLDER.sub("", template)
    if "{{" in rest or "}}" in rest:
        raise TemplateError(f"unbalanced '{{{{' / '}}}}' in {template!r}")


def template_names(template: str) -> list[str]:
    """The dotted names a template refers to, in order; raises TemplateError on bad syntax."""
    names = []
    for match in _placeholders(template):
        path = match.group(1).strip()
        if not _PATH.fullmatch(path):
            raise TemplateError(f"{{{{ {path} }}}} is not a name (expected e.g. {{{{ caller.number }}}})")
        names.append(path)
    return names


def unknown_template_name(name: str, *, secrets: bool = False) -> str | None:
    """Why a template may not use `name`, or None when it may. `secrets.NAME` only where `secrets`
    (an http node's url, headers and body: never where a caller could hear or a CDR keep it)."""
    if name in TEMPLATE_NAMES or name in NOW_NAMES or name.startswith("vars."):
        return None
    if name.startswith("secrets.") and name.count(".") == 1:
        where = "an http node's url, headers and body"
        return None if secrets else f"{{{{ {name} }}}}: secrets may be used only in {where}"
    known = ", ".join([*sorted(TEMPLATE_NAMES), "now.*", "vars.NAME", *(["secrets.NAME"] if secrets else [])])
    return f"unknown name {{{{ {name} }}}} (known: {known})"


def has_template(text: str) -> bool:
    return "{{" in text or "}}" in text


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    value: Any = context
    parts = path.split(".")
    for index, part in enumerate(parts):
        if not isinstance(value, Mapping) or part not in value:
            if index >= 2 and parts[0] == "vars":
                return None  # below a variable, a missing key is null, as in expressions
            if index == 1 and parts[0] == "vars" and isinstance(value, Mapping):
                return None  # an unset variable
            raise TemplateError(f"unknown name {path!r}")
        value = value[part]
    if isinstance(value, Mapping) and parts[0] != "vars":
        raise TemplateError(f"{path!r} is a group of names, not a value")
    return value


def render(template: str, context: Mapping[str, Any]) -> str:
    """Replace each `{{ path }}` with its value from `context`, as text (`expressions.to_text`:
    null renders as empty, true as "true")."""
    template_names(template)  # syntax first, so a bad template fails the same way every time

    def substitute(match: re.Match[str]) -> str:
        return to_text(_lookup(context, match.group(1).strip()))

    return _PLACEHOLDER.sub(substitute, template)
