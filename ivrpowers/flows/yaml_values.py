"""YAML for flows, within bounds a flow never reaches: composed by `BoundedComposer`, which
refuses a file past them while it reads it, then ruamel's round-trip values -> plain Python values.

The flow loader validates what this returns; a value that makes the file unusable as a whole
(an alias bomb, nesting past reason, an alias that contains itself) raises `Unusable` with the line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.composer import Composer
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import CollectionNode, ScalarNode
from ruamel.yaml.scalarbool import ScalarBoolean

from .schema import Loc

# A flow is a few hundred values (a generated 3,000-node flow, some 30,000); these bounds only stop
# huge files, alias bombs ("billion laughs") and pathological nesting from eating the controller's
# memory or stack.
MAX_VALUES = 100_000
MAX_DEPTH = 64


class Unusable(Exception):
    """The file cannot be checked any further: one problem, at `line`."""

    def __init__(self, line: int, message: str) -> None:
        self.line, self.message = line, message


def first_line(value: Any) -> int:
    """The 1-based line a round-trip value starts on (1 when ruamel knows none)."""
    lc = getattr(value, "lc", None)
    return lc.line + 1 if lc is not None and lc.line is not None else 1


_STANDARD_TAGS = {None, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:str"}


class BoundedComposer(Composer):
    """ruamel's composer, refusing a file at the first node past the bounds, at that node's line:
    before, a 1 MiB list was built whole (half a minute, hundreds of MB) only to be refused after.

    Also an error: an alias inside the collection it names (`a: &x {next: *x}`), which ruamel's
    round-trip constructor quietly turns into null ("hang up here"). Aliases cost nothing here;
    what they expand to is counted by `Plain`. Duplicate keys are collected, not refused, so they
    are reported along with every other problem.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.budget = MAX_VALUES
        self.duplicates: list[tuple[int, str]] = []  # (line, key)
        self.root: Any = None  # the document's node tree, once composed

    def get_single_node(self) -> Any:
        self.root = super().get_single_node()
        return self.root

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            # A collection's end mark is set when it is complete: without one, it contains the alias.
            if isinstance(target, CollectionNode) and target.end_mark is None:
                name = event.anchor
                raise Unusable(line, f"alias *{name} is used inside the value it names (&{name}): "
                                     "it would contain itself")
        else:
            self.budget -= 1
            if self.budget < 0:
                raise Unusable(line, f"flow is too large (more than {MAX_VALUES:,} values)")
            if self.depth > MAX_DEPTH:  # as deep as `Plain` allows: the root is at depth 0
                raise Unusable(line, f"flow is nested too deeply (more than {MAX_DEPTH} levels)")
        return super().compose_node(parent, index)

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        keys: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if isinstance(key, ScalarNode):
                ident = (str(key.tag), key.value)
                if ident in keys:
                    self.duplicates.append((key.start_mark.line + 1, key.value))
                keys.add(ident)
        return node


class Plain:
    """ruamel's round-trip types -> plain dict/list/str/int/float/bool, so strict validation sees
    exactly what the author wrote (ruamel floats are a float subclass, block strings a str subclass...)."""

    def __init__(self, report: Callable[[Loc, str], None]) -> None:
        self.report = report
        self.budget = MAX_VALUES
        self.active: set[int] = set()

    def convert(self, value: Any, loc: Loc = ()) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise Unusable(1, f"flow is too large (aliases that expand to more than {MAX_VALUES:,} values)")
        if len(loc) > MAX_DEPTH:
            raise Unusable(first_line(value), f"flow is nested too deeply (more than {MAX_DEPTH} levels)")
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
