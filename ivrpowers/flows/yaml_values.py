"""ruamel's round-trip YAML values -> plain Python values, within bounds a flow never reaches.

The flow loader validates what this returns; a value that makes the file unusable as a whole
(an alias bomb, nesting past reason, an alias that contains itself) raises `Unusable` with the line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.scalarbool import ScalarBoolean

from .schema import Loc

# A flow is a few hundred values; these bounds only stop alias bombs ("billion laughs") and
# pathological nesting from eating the controller's memory or stack.
_MAX_VALUES = 100_000
_MAX_DEPTH = 64


class Unusable(Exception):
    """The file cannot be checked any further: one problem, at `line`."""

    def __init__(self, line: int, message: str) -> None:
        self.line, self.message = line, message


def first_line(value: Any) -> int:
    """The 1-based line a round-trip value starts on (1 when ruamel knows none)."""
    lc = getattr(value, "lc", None)
    return lc.line + 1 if lc is not None and lc.line is not None else 1


_STANDARD_TAGS = {None, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:str"}


class Plain:
    """ruamel's round-trip types -> plain dict/list/str/int/float/bool, so strict validation sees
    exactly what the author wrote (ruamel floats are a float subclass, block strings a str subclass...)."""

    def __init__(self, report: Callable[[Loc, str], None]) -> None:
        self.report = report
        self.budget = _MAX_VALUES
        self.active: set[int] = set()

    def convert(self, value: Any, loc: Loc = ()) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise Unusable(1, "flow is too large (too many values, or aliases that expand too much)")
        if len(loc) > _MAX_DEPTH:
            raise Unusable(first_line(value), "flow is nested too deeply")
        self.check_tag(value, loc)
        if isinstance(value, TaggedScalar):
            return str(value.value)
        if isinstance(value, (dict, list)):
            if id(value) in self.active:
                raise Unusable(first_line(value), "an alias refers to the value that contains it")
            self.active.add(id(value))
            try:
                if isinstance(value, dict):
                    return {self.key(k, loc): self.convert(v, (*loc, k)) for k, v in value.items()}
                return [self.convert(v, (*loc, i)) for i, v in enumerate(value)]
            finally:
                self.active.discard(id(value))
        return self.scalar(value)

    def check_tag(self, value: Any, loc: Loc) -> None:
        tag = getattr(getattr(value, "tag", None), "value", None)
        if tag not in _STANDARD_TAGS:
            # Someone expecting `!include` or `!env` to do something must hear that it doesn't.
            self.report(loc, f"YAML tag {tag} is not supported in flow files")

    def key(self, key: Any, loc: Loc) -> Any:
        if isinstance(key, TaggedScalar):
            self.check_tag(key, (*loc, str(key.value)))
            return str(key.value)
        return self.scalar(key)

    @staticmethod
    def scalar(value: Any) -> Any:
        if isinstance(value, ScalarBoolean):  # an anchored `true`: an int subclass, not a bool
            return bool(value)
        # bool before int: bool is an int subclass and must stay a bool.
        for plain in (bool, int, float, str):
            if isinstance(value, plain):
                return plain(value)
        return value  # None, timestamps, complex keys: validation rejects them
