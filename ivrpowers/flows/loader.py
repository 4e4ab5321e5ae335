"""Flow files in, `Flow` or line-numbered problems out.

Flow authors fix files from the problems this module reports, so every failure, however odd the
input, becomes a `Problem` pointing at the line to edit, and all of them are reported at once.
`validate_flow` adds what `lint` finds in a flow that loads, warnings among them.

Checking is linear in the size of the file, and a file past the bounds is refused as it is read,
not once built: flows come from authors' editors and from imports, and a big or hostile one must
cost a CLI run or the controller's loading thread time in proportion to its size, never minutes.
Most of that time is reading the YAML (`ivrpowers.yamlfile`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from typing import Any

from pydantic import ValidationError

from ..yamlfile import MAX_CHARS, Document, FileError, Problem, Unusable, describe, kind_of, read, read_text_file, where
from .lint import Videos, lint
from .schema import GRAPH_CHECKED_BY_CALLER, MEDIA_SCHEMES, NODE_TYPES, Flow, Loc, graph_issues

__all__ = ["FlowError", "Problem", "check_flow", "load_flow", "load_flow_file", "read_flow_file", "validate_flow"]

# A flow is a few hundred values: this bound only stops a huge file from eating memory (the
# others, on values and nesting, are in `ivrpowers.yamlfile`). Characters of text, bytes of a file.
_TOO_LARGE = f"flow file is too large (over {MAX_CHARS // 1024} KiB)"

_NODE_TYPE_NAMES = ", ".join(sorted(NODE_TYPES))


class FlowError(FileError):
    """A flow file that can't be used; `.problems` lists every problem found, by line."""


def load_flow(text: str, filename: str = "<flow>") -> Flow:
    flow, problems = _load(text, filename)
    if flow is None:
        raise FlowError(problems)
    return flow


def load_flow_file(path: str | os.PathLike[str]) -> Flow:
    return load_flow(read_flow_file(path), os.fspath(path))


def read_flow_file(path: str | os.PathLike[str]) -> str:
    """A flow file's text; FlowError if it can't be read, is too large (no more of it is read) or
    is not UTF-8."""
    try:
        return read_text_file(path, _TOO_LARGE)
    except FileError as exc:
        raise FlowError(exc.problems) from None


def check_flow(text: str, filename: str = "<flow>") -> list[Problem]:
    """Every problem in a flow file, sorted by line; empty when the flow is valid."""
    return _load(text, filename)[1]


def validate_flow(text: str, filename: str = "<flow>", *, sounds: Collection[str] | None = None,
                  number_allowed: Callable[[str], bool] | None = None, videos: Videos | None = None) -> list[Problem]:
    """What `flow validate` reports, sorted by line: the problems that stop the flow loading (all
    errors) or, when it loads, what `lint` finds in it, errors and warnings. `sounds`: the sound
    names the Asterisk in use has (`lint.sound_inventory`); None skips that check.
    `number_allowed`: which outside numbers a transfer may dial (None: none). `videos`: the media
    library's video prompts and their codecs; None skips that check."""
    return lint_flow(text, filename, sounds=sounds, number_allowed=number_allowed, videos=videos)[1]


def lint_flow(text: str, filename: str = "<flow>", *, sounds: Collection[str] | None = None,
              number_allowed: Callable[[str], bool] | None = None,
              videos: Videos | None = None) -> tuple[Flow | None, list[Problem]]:
    """`validate_flow`'s problems, and the flow when it loads (whatever lint found): one parse for both."""
    return _load(text, filename, lint_it=True, sounds=sounds, number_allowed=number_allowed, videos=videos)


def _load(text: str, filename: str, *, lint_it: bool = False, sounds: Collection[str] | None = None,
          number_allowed: Callable[[str], bool] | None = None,
          videos: Videos | None = None) -> tuple[Flow | None, list[Problem]]:
    try:
        checker = _Checker(text, filename)
        flow, problems = checker.run()
        if flow is not None and lint_it:
            problems = checker.lint(flow, sounds, number_allowed, videos)
        return flow, problems
    except Exception as exc:  # the contract is "never raise": a bug here must still be a Problem
        return None, [Problem(filename, 1, f"internal error while checking the flow (please report it): {exc!r}")]


class _Checker:
    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.problems: list[Problem] = []
        self.root: Any = None
        self.document: Document | None = None

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.filename, line, message))

    def run(self) -> tuple[Flow | None, list[Problem]]:
        flow = None
        try:
            self.root = self.parse()
            flow = self.validate(self.root)
        except Unusable as exc:
            self.problem(exc.line, exc.message)
        if self.problems:
            # Stable sort: problems on one line keep the order they were found in.
            unique = list(dict.fromkeys(self.problems))
            return None, sorted(unique, key=lambda p: p.line)
        return flow, []

    def lint(self, flow: Flow, sounds: Collection[str] | None,
             number_allowed: Callable[[str], bool] | None, videos: Videos | None) -> list[Problem]:
        found = [Problem(self.filename, self.line(f.loc), f.message, f.severity)
                 for f in lint(flow, sounds=sounds, number_allowed=number_allowed, videos=videos)]
        return sorted(found, key=lambda p: p.line)

    # -- YAML ---------------------------------------------------------------------------------

    def parse(self) -> dict[Any, Any]:
        if len(self.text) > MAX_CHARS:
            raise Unusable(1, _TOO_LARGE)
        document = self.document = read(self.text)
        for line, loc, message in document.problems:
            self.problem(line, f"{where(loc)}: {message}" if loc else message)
        if document.root is None:
            raise Unusable(1, "empty flow file (expected name, start and nodes)")
        if not isinstance(document.root, dict):
            what = kind_of(document.root)
            raise Unusable(document.line, f"a flow must be a mapping with name, start and nodes, not {what}")
        return document.root

    # -- validation ---------------------------------------------------------------------------

    def validate(self, plain: dict[Any, Any]) -> Flow | None:
        flow: Flow | None = None
        try:
            flow = Flow.model_validate(plain, context={GRAPH_CHECKED_BY_CALLER: True})
        except ValidationError as exc:
            for error in exc.errors():
                self.report(error)
        # On the raw data, so a broken field in one node doesn't hide a dangling reference elsewhere.
        nodes, calendars = plain.get("nodes"), plain.get("calendars")
        declared = [name for name in calendars if isinstance(name, str)] if isinstance(calendars, dict) else []
        for loc, message in graph_issues(plain.get("start"), nodes if isinstance(nodes, dict) else {}, declared):
            self.problem(self.line(loc), f"{where(loc)}: {message}")
        return flow if not self.problems else None

    def report(self, error: Any) -> None:
        kind, raw_loc = error["type"], tuple(error["loc"])
        loc = self.strip_tag(raw_loc)
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]  # a bad mapping key: point at the key, name it in the message
        if kind == "union_tag_invalid":
            tag = error.get("ctx", {}).get("tag")
            expected = f"(expected one of: {_NODE_TYPE_NAMES})"
            self.problem(self.line((*loc, "type")), f"{where(loc)}: unknown node type {tag!r} {expected}")
        elif kind == "union_tag_not_found":
            self.problem(self.line(loc), f"{where(loc)}: node has no 'type' (expected one of: {_NODE_TYPE_NAMES})")
        elif kind == "model_attributes_type" and len(loc) == 2 and loc[0] == "nodes":
            what = kind_of(error["input"])
            self.problem(self.line(loc), f"{where(loc)}: a node must be a mapping with a 'type', not {what}")
        else:
            loc, message = describe({**error, "loc": loc}, self.allowed_fields)
            if kind.endswith("_type"):
                message += _space_hint(error["input"])
            self.problem(self.line(loc), message)

    def strip_tag(self, loc: Loc) -> Loc:
        # Discriminated unions put the tag in the error location (nodes.main.menu.timeout);
        # the document has no such level.
        if len(loc) >= 3 and loc[0] == "nodes":
            raw = self.raw_at(loc[:2])
            if isinstance(raw, dict) and raw.get("type") == loc[2]:
                return loc[:2] + loc[3:]
        return loc

    def allowed_fields(self, parent: Loc) -> str:
        model: Any = None
        if parent == ():
            model = Flow
        elif len(parent) == 2 and parent[0] == "nodes":
            raw = self.raw_at(parent)
            model = NODE_TYPES.get(raw.get("type")) if isinstance(raw, dict) else None  # type: ignore[arg-type]
        if model is None:
            return ""
        fields = [f for f in model.model_fields if f != "type"]
        if not fields:
            return f" ({_type_name(model)} nodes have no fields besides 'type')"
        return f" (allowed: {', '.join(fields)})"

    # -- locations ----------------------------------------------------------------------------

    def raw_at(self, loc: Loc) -> Any:
        return self.document.value_at(loc) if self.document is not None else None

    def line(self, loc: Loc) -> int:
        """The line to blame for `loc`: its value if a scalar, its key otherwise, else the nearest parent."""
        return self.document.line_of(loc) if self.document is not None else 1


def _type_name(model: Any) -> str:
    return next((name for name, cls in NODE_TYPES.items() if cls is model), "these")


def _space_hint(value: Any) -> str:
    # `- sound: beep` is a mapping to YAML: the commonest slip when writing media lists.
    if isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if key in MEDIA_SCHEMES:
            return f" (write {key}:{'' if inner is None else inner} with no space after the colon)"
    return ""
