"""What reading a YAML file gives (`reader.read`): the plain values, where each one is written
(`Where`, by line), and the problems that did not stop the reading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Where a value is in a document: keys and indexes from the root, e.g. ("nodes", "main", "next").
Loc = tuple[str | int, ...]

_ABSENT = object()


class Unusable(Exception):
    """The file cannot be checked any further: one problem, at `line`."""

    def __init__(self, line: int, message: str) -> None:
        self.line, self.message = line, message


# (key line, value line, the value's Where when it is a collection); an item's two lines are equal.
Entry = tuple[int, int, "Where | None"]


class Where:
    """Where the parts of one mapping or sequence are: for each key (or index), the key's line, the
    value's line and, for a collection, the value's own `Where`. Lines are 1-based."""

    __slots__ = ("entries", "start")

    def __init__(self, start: int, entries: dict[Any, Entry] | list[Entry]) -> None:
        self.start, self.entries = start, entries


@dataclass
class Document:
    root: Any
    where: Where | None  # None when the root is a scalar
    line: int  # where the root starts
    # Problems that don't stop the reading: duplicate keys, unsupported tags, keys that are lists.
    problems: list[tuple[int, Loc, str]] = field(default_factory=list)

    def line_of(self, loc: Loc) -> int:
        """The line to blame for `loc`: its value if a scalar, its key otherwise, else the nearest
        parent (a missing field: the mapping that should have it)."""
        line, node, where = 1, self.root, self.where
        for index, key in enumerate(loc):
            if where is None:
                break
            if isinstance(node, dict):
                found = find_key(node, key)
                if found is _ABSENT:
                    continue
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                found = key
            else:
                break
            key_line, value_line, inner = where.entries[found]
            node = node[found]
            # A null value's position is wherever the next token is, often the next line.
            scalar = node is not None and inner is None
            line = value_line if index == len(loc) - 1 and scalar else key_line
            where = inner
        return line

    def value_at(self, loc: Loc) -> Any:
        """The value at `loc`, or None when there is none."""
        node = self.root
        for key in loc:
            if isinstance(node, dict):
                found = find_key(node, key)
                if found is _ABSENT:
                    return None
                node = node[found]
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                node = node[key]
            else:
                return None
        return node


def find_key(mapping: dict[Any, Any], key: Any) -> Any:
    """`key` as `mapping` has it, or `_ABSENT`: validation may have normalised a key (the YAML
    int 1 is the menu option "1")."""
    try:
        if key in mapping:
            return key
    except TypeError:
        pass
    for candidate in mapping:
        if isinstance(candidate, (str, int)) and str(candidate) == str(key):
            return candidate
    return _ABSENT
