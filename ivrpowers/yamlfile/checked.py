"""A YAML file in, a validated model or line-numbered problems out.

Admins fix files from the problems reported here, so every failure, however odd the input,
becomes a `Problem` pointing at the line to edit, and all of them are reported at once. The flow
loader (`flows.loader`) adds what only flows have (node types, the graph) on the same pieces.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from .reader import Document, Loc, Unusable, read

Severity = Literal["error", "warning"]
M = TypeVar("M", bound=BaseModel)

# Files admins write are a few KiB: this bound only stops a huge one from eating memory (the
# others, on values and nesting, are in `reader`). Characters of text, bytes of a file.
MAX_CHARS = 1024 * 1024
TOO_LARGE = f"file is too large (over {MAX_CHARS // 1024} KiB)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file; `str()` is the familiar `FILE:LINE: message`."""

    file: str
    line: int  # 1-based
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        label = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {label}{self.message}"


class FileError(ValueError):
    """A file that can't be used; `.problems` lists every problem found, by line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(map(str, self.problems)))


def read_text_file(path: str | os.PathLike[str], too_large: str = TOO_LARGE) -> str:
    """A file's text; FileError if it can't be read, is too large (no more of it is read) or is not UTF-8."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as fh:
            data = fh.read(MAX_CHARS + 1)
    except OSError as exc:
        raise FileError([Problem(filename, 1, f"cannot read file: {exc.strerror or exc}")]) from None
    if len(data) > MAX_CHARS:
        raise FileError([Problem(filename, 1, too_large)])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileError([Problem(filename, line, "file is not valid UTF-8")]) from None


def check_file(
    text: str, filename: str, model: type[M], *, what: str,
    extra: Callable[[M, Document], Iterable[tuple[Loc, str]]] | None = None,
) -> tuple[M | None, list[Problem]]:
    """`text` validated as `model`, or every problem sorted by line. `what` names the file's kind
    in messages ("an ACD file"); `extra` adds whole-file checks on a valid model, located by loc."""
    problems: list[Problem] = []
    try:
        if len(text) > MAX_CHARS:
            raise Unusable(1, TOO_LARGE)
        document = read(text)
        problems += [Problem(filename, line, f"{where(loc)}: {message}" if loc else message)
                     for line, loc, message in document.problems]
        if document.root is None:
            raise Unusable(1, f"empty file (expected {what})")
        if not isinstance(document.root, dict):
            raise Unusable(document.line, f"expected {what}, not {kind_of(document.root)}")
        try:
            checked = model.model_validate(document.root)
        except ValidationError as exc:
            for error in exc.errors():
                loc, message = describe(error)
                problems.append(Problem(filename, document.line_of(loc), message))
        else:
            problems += [Problem(filename, document.line_of(loc), f"{where(loc)}: {message}")
                         for loc, message in (extra(checked, document) if extra is not None else ())]
            if not problems:
                return checked, []
    except Unusable as exc:
        problems.append(Problem(filename, exc.line, exc.message))
    except Exception as exc:  # the contract is "never raise": a bug here must still be a Problem
        problems.append(Problem(filename, 1, f"internal error while checking the file (please report it): {exc!r}"))
    return None, sorted(dict.fromkeys(problems), key=lambda p: p.line)


def describe(error: Any, allowed_fields: Callable[[Loc], str] = lambda loc: "") -> tuple[Loc, str]:
    """A pydantic error as (where it is, what to tell the author): `unknown field 'x' (allowed: ...)`,
    `missing required field 'y'`, `..., got a string ('abc')`. `allowed_fields(parent)` says which
    fields the mapping at `parent` takes."""
    kind, loc, message = error["type"], tuple(error["loc"]), error["msg"]
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]  # a bad mapping key: point at the key, name it in the message
    if kind in ("extra_forbidden", "missing"):
        parent, field = loc[:-1], loc[-1]
        text = f"missing required field {field!r}" if kind == "missing" else \
            f"unknown field {field!r}{allowed_fields(parent)}"
        return loc, f"{where(parent)}: {text}" if parent else text
    if kind.endswith("_type"):
        message = f"{message}, got {kind_of(error['input'])}"
    return loc, f"{where(loc)}: {message}" if loc else message


def where(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "file"


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) <= 40 else "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"
