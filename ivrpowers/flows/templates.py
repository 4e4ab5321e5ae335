"""`{{ dotted.path }}` templates: the only expression language flows have.

Deliberately not Jinja: flows are data written by non-programmers and rendered on every call, so
the language is a lookup and nothing else (no filters, no code, nothing to sandbox).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["TEMPLATE_NAMES", "TemplateError", "has_template", "render", "template_names"]

# Names every call provides (see `interpreter.base_context`). Validation rejects any other name,
# so a typo is caught when the flow is loaded, not when a caller reaches the node.
TEMPLATE_NAMES: frozenset[str] = frozenset({"caller.number", "caller.name", "dialed", "flow.name"})

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
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


def has_template(text: str) -> bool:
    return "{{" in text or "}}" in text


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise TemplateError(f"unknown name {path!r}")
        value = value[part]
    if isinstance(value, Mapping):
        raise TemplateError(f"{path!r} is a group of names, not a value")
    return value


def render(template: str, context: Mapping[str, Any]) -> str:
    """Replace each `{{ path }}` with its value from `context` (None renders as empty)."""
    template_names(template)  # syntax first, so a bad template fails the same way every time

    def substitute(match: re.Match[str]) -> str:
        value = _lookup(context, match.group(1).strip())
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(substitute, template)
