"""The expression language's words: its limits, its names, its error, and the tokenizer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_SOURCE = 2000  # characters in one expression
MAX_DEPTH = 32  # nesting of parentheses, lists, operators
MAX_INT = 2**53  # beyond this an integer is refused (JSON consumers lose precision past it)
MAX_TEXT = 65536  # characters in a string built at run time
MAX_LIST = 1000  # items in a list built at run time
REGEX_TIMEOUT = 0.05  # seconds one `matches` may take

# The fixed names a call provides, beside `vars.*`; `now.*` is in the flow's time zone.
NAMES: Mapping[str, frozenset[str] | None] = {
    "caller": frozenset({"number", "name"}),
    "now": frozenset({"time", "weekday", "date", "hour", "minute"}),
    "flow": frozenset({"name"}),
    "dialed": None,  # a value itself, no fields
    "vars": None,  # any field: the flow's variables
}
FUNCTIONS = frozenset({"len", "int", "str", "lower", "upper", "open"})
KEYWORDS = frozenset({"and", "or", "not", "in", "matches", "true", "false", "null"})


class ExpressionError(ValueError):
    """A bad expression (at load) or an operation that cannot be done (at run time).

    `column` is 1-based in the expression's source when the error is about a place in it.
    """

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message if column is None else f"{message} (column {column})")
        self.problem = message
        self.column = column


# -- tokens --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    kind: str  # "num", "str", "name", "op", "end"
    text: str
    value: Any
    column: int


_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "(", ")", "[", "]", ",", ".")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}


def tokens(source: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        col = i + 1
        if c.isspace():
            i += 1
        elif c.isdigit():
            j = i
            while j < n and (source[j].isdigit() or source[j] == "_"):
                j += 1
            is_float = j + 1 < n and source[j] == "." and source[j + 1].isdigit()
            if is_float:
                j += 1
                while j < n and source[j].isdigit():
                    j += 1
            text = source[i:j]
            if len(text) > 20:
                raise ExpressionError(f"number {text[:20]}... is too long", col)
            value: Any = float(text) if is_float else int(text.replace("_", ""))
            if isinstance(value, int) and value > MAX_INT:
                raise ExpressionError(f"number {text} is too large (at most {MAX_INT})", col)
            out.append(Token("num", text, value, col))
            i = j
        elif c in "\"'":
            j, chars = i + 1, []
            while True:
                if j >= n:
                    raise ExpressionError("text is not closed (a quote is missing)", col)
                ch = source[j]
                if ch == c:
                    break
                if ch == "\\" and j + 1 < n and source[j + 1] in _ESCAPES:
                    chars.append(_ESCAPES[source[j + 1]])
                    j += 2
                    continue
                # Any other backslash stays, so a regex reads as written: '^\d{8}$'.
                chars.append(ch)
                j += 1
            out.append(Token("str", source[i:j + 1], "".join(chars), col))
            i = j + 1
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            out.append(Token("name", source[i:j], source[i:j], col))
            i = j
        else:
            op = next((o for o in _OPERATORS if source.startswith(o, i)), None)
            if op is None:
                hint = " (use 'and', 'or', 'not')" if c in "&|!" else ""
                raise ExpressionError(f"unexpected character {c!r}{hint}", col)
            out.append(Token("op", op, op, col))
            i += len(op)
    out.append(Token("end", "", None, n + 1))
    return out
