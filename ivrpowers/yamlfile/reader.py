"""A YAML file an admin writes (a flow, queues and agents) -> plain Python values and the line of
every key, value and item, within bounds such a file never reaches. Any problem that makes the
file unusable as a whole (bad syntax, an alias bomb, nesting past reason, an alias that contains
itself) raises `Unusable` with its line.

YAML 1.2, as ruamel reads it: ruamel's resolver and constructor decide what a scalar is (`010` is
10, `yes` is text, `2026-12-25` a date). The events come from libyaml (C, through PyYAML) when it is
installed: pure-Python ruamel reads some 100 KB/s, which made a 3,000-node flow take seconds to
check. Whatever libyaml refuses is read again by ruamel's own parser, so the YAML accepted and the
wording of syntax errors are ruamel's.

Values come out as plain dict/list/str/int/float/bool/None (strict validation must see exactly what
the author wrote); an alias gives the same object again, and is counted at its expanded size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError

from .document import Document, Loc, Unusable, Where

__all__ = ["MAX_DEPTH", "MAX_VALUES", "Document", "Loc", "Unusable", "Where", "read"]

try:
    import yaml as _pyyaml  # type: ignore[import-untyped]
    from yaml.cyaml import CParser as _CParser  # type: ignore[import-untyped]
except ImportError:  # PyYAML built without libyaml: ruamel reads everything
    _pyyaml = _CParser = None

# A flow is a few hundred values (a generated 3,000-node flow, some 30,000); these bounds only stop
# huge files, alias bombs ("billion laughs") and pathological nesting from eating memory or stack.
MAX_VALUES = 100_000
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _TAG + "str", _TAG + "map", _TAG + "seq"
# Explicit tags that mean a plain value; any other (`!include`, `!!binary`...) is reported.
_VALUE_TAGS = {_TAG + name for name in ("int", "float", "bool", "null", "timestamp")}


# Where libyaml (YAML 1.1) and ruamel (1.2) both read a text but differently: an anchor or alias
# name running on past libyaml's [A-Za-z0-9_-] (`&a:b` is the anchor `a:b` to ruamel), a tag
# running into a flow indicator (`[!, 2]`), `?` or `:` starting a plain scalar (`[?::x]`), tabs
# (where they end a plain scalar), the line breaks 1.2 no longer has. Found by the differential
# tests in tests/unit/test_yaml_reader.py; such a text goes to ruamel, slower but the same.
_DIVERGES = re.compile(r"[&*][A-Za-z0-9_-]+[?:%@`]|![^\s,\[\]{}]*[,\[\]{}]|\?\S|::|[\[{,]\s*:|"
                       r"[\t\x85\u2028\u2029]")


def read(text: str) -> Document:
    """`text` as a `Document`; `Unusable` when it can't be read."""
    if _CParser is not None and not _DIVERGES.search(text):
        try:
            return _Composer().compose(_libyaml_events(text))
        except _pyyaml.YAMLError:
            pass  # ruamel's parser says why (or reads what libyaml, YAML 1.1, doesn't)
    try:
        return _Composer().compose(_ruamel_events(text))
    except ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise Unusable(line, f"YAML: character U+{char:04X} is not allowed in a YAML file") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        if _mistake_is_at_context(exc):
            # An unclosed bracket or quote, a key without ':': the parser notices further down,
            # but the mistake is where the construct started.
            mark = exc.context_mark
            context = f" ({exc.context} started here; found on line {exc.problem_mark.line + 1})"
        # Errors at end of input are marked past the last line; point at the last real one.
        line = max(1, min(mark.line + 1 if mark is not None else 1, len(text.splitlines()) or 1))
        raise Unusable(line, f"YAML: {what}{context}") from None
    except YAMLError as exc:
        raise Unusable(1, f"YAML: {exc}") from None
    except (AssertionError, ValueError, TypeError) as exc:  # ruamel asserts on e.g. `%YAML 1.12`
        raise Unusable(1, f"YAML: cannot read the file ({exc})") from None


def _libyaml_events(text: str) -> Iterator[Any]:
    parser = _CParser(text)
    try:
        while (event := parser.get_event()) is not None:
            yield event
    finally:
        parser.dispose()


def _ruamel_events(text: str) -> Iterator[Any]:
    # The round-trip scanner and parser, slower than the plain ones (they keep comments), read a
    # little more: `{a: :0}`, as ruamel's round-trip loader does.
    return iter(YAML(typ="rt").parse(text))


def _mistake_is_at_context(exc: MarkedYAMLError) -> bool:
    """True for syntax errors whose cause is at the context mark, not where they were noticed."""
    if exc.context_mark is None or exc.problem_mark is None or exc.context is None:
        return False
    if exc.context_mark.line >= exc.problem_mark.line:
        return False
    return bool(exc.context.startswith(("while scanning", "while parsing a flow")))


# -- scalars --------------------------------------------------------------------------------------


class _Scalars:
    """What a scalar is, as YAML 1.2 and ruamel read it, remembered for the file: a flow repeats
    its values (`hangup`, `sound:beep`) thousands of times."""

    def __init__(self) -> None:
        self.yaml = YAML(typ="rt")
        self.plain: dict[str, Any] = {}

    def resolved(self, value: str) -> Any:
        """A plain (unquoted, untagged) scalar's value: `3`, `true`, `~` and `2026-12-25` are not text."""
        try:
            return self.plain[value]
        except KeyError:
            tag = self.yaml.resolver.resolve(ScalarNode, value, (True, False))
            made = self.plain[value] = value if tag == _STR else self.constructed(tag, value)
            return made

    def constructed(self, tag: str, value: str) -> Any:
        constructor = self.yaml.constructor
        try:
            made = constructor.construct_object(ScalarNode(tag, value), deep=True)
        finally:
            constructor.constructed_objects.clear()
        # ruamel's int and float subclasses keep formatting; a flow wants the number.
        for plain in (bool, int, float, str):
            if isinstance(made, plain):
                return plain(made)
        return made  # None, a date or time: validation says what it expected instead


# -- composing ------------------------------------------------------------------------------------

_ABSENT, _MERGE, _BAD_KEY = object(), object(), object()


class _Frame:
    """A mapping or sequence being read."""

    __slots__ = ("anchor", "entries", "height", "key", "key_line", "line", "merges", "value", "weight")

    def __init__(self, value: Any, entries: Any, line: int, anchor: str | None) -> None:
        self.value, self.entries, self.line, self.anchor = value, entries, line, anchor
        self.key: Any = _ABSENT  # a mapping's key waiting for its value
        self.key_line = 0
        self.merges: list[tuple[dict[Any, Any], Where]] = []
        self.weight, self.height = 1, 1


class _Composer:
    def __init__(self) -> None:
        self.budget = MAX_VALUES
        self.stack: list[_Frame] = []
        # anchor -> (value, where, weight, height), or the frame while it is still being read
        self.anchors: dict[str, Any] = {}
        self.problems: list[tuple[int, Loc, str]] = []
        self.document: Document | None = None
        self.documents = 0
        self.scalars = _Scalars()

    def compose(self, events: Iterator[Any]) -> Document:
        for event in events:
            kind = type(event).__name__
            if kind == "ScalarEvent":
                self.scalar(event)
            elif kind == "MappingStartEvent" or kind == "SequenceStartEvent":
                self.start(event, kind == "MappingStartEvent")
            elif kind == "MappingEndEvent" or kind == "SequenceEndEvent":
                self.end()
            elif kind == "AliasEvent":
                self.alias(event)
            elif kind == "DocumentStartEvent":
                self.documents += 1
                if self.documents > 1:
                    raise Unusable(event.start_mark.line + 1, "YAML: a flow file holds one document; found "
                                                              "another here (a second '---')")
                if getattr(event, "version", None) not in (None, (1, 2)):
                    raise Unusable(event.start_mark.line + 1, "YAML: flows are YAML 1.2; remove the %YAML line")
        if self.document is None:
            return Document(None, None, 1)
        self.document.problems = self.problems
        return self.document

    def count(self, line: int, weight: int = 1) -> None:
        self.budget -= weight
        if self.budget < 0:
            what = "aliases that expand to more than" if weight > 1 else "more than"
            raise Unusable(line, f"flow is too large ({what} {MAX_VALUES:,} values)")

    def scalar(self, event: Any) -> None:
        line = event.start_mark.line + 1
        self.count(line)
        tag, value = event.tag, event.value
        if event.style == ">":  # ruamel's round-trip scanner marks where it folded lines, with BEL
            value = value.replace("\a", "")
        if tag is None:
            if event.implicit[0]:
                if value == "<<" and self._at_key():
                    value = _MERGE  # a merge key, `<<: *defaults`
                else:
                    value = self.scalars.resolved(value)
        elif tag == "!":  # ruamel reads `! 3` as 3, even `! ''` as null: as if there were no tag
            value = self.scalars.resolved(value)
        elif tag in _VALUE_TAGS:
            try:
                value = self.scalars.constructed(tag, value)
            except Exception as exc:  # e.g. `!!int abc`
                raise Unusable(line, f"YAML: cannot read a value ({exc})") from None
        elif tag != _STR:
            self.unsupported(tag, line)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, None, 1, 0)
        self.add(value, None, line, 1, 0)

    def _at_key(self) -> bool:
        return bool(self.stack) and isinstance(self.stack[-1].value, dict) and self.stack[-1].key is _ABSENT

    def start(self, event: Any, mapping: bool) -> None:
        line = event.start_mark.line + 1
        self.count(line)
        if len(self.stack) >= MAX_DEPTH:
            raise Unusable(line, f"flow is nested too deeply (more than {MAX_DEPTH} levels)")
        if event.tag not in (None, "!", _MAP if mapping else _SEQ):
            self.unsupported(event.tag, line)
        frame = _Frame({} if mapping else [], {} if mapping else [], line, event.anchor)
        if event.anchor is not None:
            self.anchors[event.anchor] = frame
        self.stack.append(frame)

    def end(self) -> None:
        frame = self.stack.pop()
        if isinstance(frame.value, dict):
            for source, where in frame.merges:  # keys written in the mapping win
                for key, value in source.items():
                    if key not in frame.value:
                        frame.value[key] = value
                        frame.entries[key] = where.entries[key]
        where = Where(frame.line, frame.entries)
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (frame.value, where, frame.weight, frame.height)
        self.add(frame.value, where, frame.line, frame.weight, frame.height)

    def alias(self, event: Any) -> None:
        line, name = event.start_mark.line + 1, event.anchor
        target = self.anchors.get(name)
        if target is None:
            raise Unusable(line, f"YAML: found undefined alias *{name}")
        if isinstance(target, _Frame):
            raise Unusable(line, f"alias *{name} is used inside the value it names (&{name}): it would contain itself")
        value, where, weight, height = target
        self.count(line, weight)
        if len(self.stack) + height > MAX_DEPTH:
            raise Unusable(line, f"flow is nested too deeply (more than {MAX_DEPTH} levels)")
        self.add(value, where, line, weight, height)

    def add(self, value: Any, where: Where | None, line: int, weight: int, height: int) -> None:
        """A finished value goes into the collection being read (or is the document)."""
        if not self.stack:
            self.document = Document(value, where, line)
            return
        parent = self.stack[-1]
        parent.weight += weight
        parent.height = max(parent.height, height + 1)
        if isinstance(parent.value, list):
            parent.value.append(value)
            parent.entries.append((line, line, where))
        elif parent.key is _ABSENT:
            if isinstance(value, (dict, list)):
                self.problems.append((line, self.loc(), "a key must be text or a number, not a list or mapping"))
                value = _BAD_KEY
            parent.key, parent.key_line = value, line
        else:
            key, parent.key = parent.key, _ABSENT
            if key is _MERGE:
                self.merge(value, where, line, parent)
            elif key is _BAD_KEY:
                pass
            elif key in parent.value:
                # ruamel keeps the first; every duplicate is reported along with everything else.
                self.problems.append((parent.key_line, (), f"duplicate key {key!r}"))
            else:
                parent.value[key] = value
                parent.entries[key] = (parent.key_line, line, where)

    def merge(self, value: Any, where: Where | None, line: int, parent: _Frame) -> None:
        # `<<: *defaults` or `<<: [*a, *b]` (the first one given wins).
        if isinstance(value, dict) and where is not None:
            sources = [(value, where)]
        elif isinstance(value, list) and where is not None:
            sources = [(item, entry[2]) for item, entry in zip(value, where.entries, strict=True)]
        else:
            sources = []
        if not sources or not all(isinstance(item, dict) and item_where for item, item_where in sources):
            raise Unusable(line, "YAML: '<<' (merge) takes a mapping or a list of mappings")
        parent.merges.extend(sources)

    def unsupported(self, tag: str, line: int) -> None:
        # Someone expecting `!include` or `!env` to do something must hear that it doesn't.
        self.problems.append((line, self.loc(), f"YAML tag {tag} is not supported in flow files"))

    def loc(self) -> Loc:
        """Where the value being read goes, as keys and indexes from the root."""
        parts: list[Any] = []
        for frame in self.stack:
            if isinstance(frame.value, list):
                parts.append(len(frame.value))
            elif frame.key is not _ABSENT and frame.key is not _MERGE and frame.key is not _BAD_KEY:
                parts.append(frame.key)
        return tuple(parts)
