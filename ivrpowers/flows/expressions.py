"""The flow expression language: parsed once when a flow loads, evaluated on every call.

Never `eval`: a small Pratt parser builds a tree of frozen dataclasses, checked at load against
the names a call has, and an evaluator walks it. The language (docs/flows.md, "Expressions"):

    literals      "text" 'text' 42 -3 2.5 true false null [1, 2, "a"]
    names         vars.NAME  caller.number  caller.name  dialed  flow.name
                  now.time ("HH:MM")  now.weekday ("mon".."sun")  now.date ("YYYY-MM-DD")  now.hour  now.minute
    access        vars.customer.tier   vars.items[0]   vars.map["key"]
    operators     or  and  not  == != < <= > >=  in  not in  matches "REGEX"  + -
    functions     len(x) int(x) str(x) lower(s) upper(s) open("CALENDAR")

Truth: null, false, 0, "", empty lists and empty objects are false, everything else true. An unset variable is
null. `==` never equates values of different kinds (1 == "1" is false, 1 == 1.0 is true); `<`
compares numbers with numbers and text with text; `+` adds numbers, joins text or lists. `matches`
searches its left side for the regex on its right, a literal checked at load and run with a time
limit (the `regex` package), so no pattern can stall a call. Every bound (source length, nesting,
number size, text and list length) is an error, never a hang or a crash.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .expression_syntax import (
    FUNCTIONS,
    KEYWORDS,
    MAX_DEPTH,
    MAX_INT,
    MAX_LIST,
    MAX_SOURCE,
    MAX_TEXT,
    NAMES,
    REGEX_TIMEOUT,
    Attr,
    Binary,
    Call,
    ExpressionError,
    Index,
    ListOf,
    Literal,
    Matches,
    Name,
    Node,
    Unary,
    is_number,
    parse,
    subtrees,
)

__all__ = [
    "FUNCTIONS",
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_LIST",
    "MAX_SOURCE",
    "MAX_TEXT",
    "NAMES",
    "REGEX_TIMEOUT",
    "Expression",
    "ExpressionError",
    "Scope",
    "compile_expression",
    "to_text",
    "truthy",
]


@dataclass
class Scope:
    """What an expression sees: the call's variables and facts, the time, the calendars.

    `now` and `is_open` are called only when the expression uses them.
    """

    vars: Mapping[str, Any]
    caller: Mapping[str, Any]
    dialed: str
    flow: Mapping[str, Any]
    now: Callable[[], Mapping[str, Any]]
    is_open: Callable[[str], bool]


@dataclass(frozen=True)
class Expression:
    """A parsed expression: `source` as written, the variables it `reads`, the `calendars` it opens."""

    source: str
    tree: Node
    reads: frozenset[str] = frozenset()
    calendars: frozenset[str] = frozenset()

    def evaluate(self, scope: Scope) -> Any:
        return _eval(self.tree, scope)

    def test(self, scope: Scope) -> bool:
        return truthy(self.evaluate(scope))


def compile_expression(source: Any, calendars: frozenset[str] | None = None) -> Expression:
    """Parse and check an expression (a YAML number or boolean is a literal). Raises ExpressionError.

    `calendars`: the names `open()` may use; None leaves that to a whole-flow check (`schema`).
    """
    if isinstance(source, bool) or source is None or is_number(source):
        return Expression(to_text(source) if source is not None else "null", Literal(source))
    if not isinstance(source, str):
        raise ExpressionError(f"an expression is text, not {type(source).__name__}")
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"expression too long ({len(source)} characters, at most {MAX_SOURCE})")
    if not source.strip():
        raise ExpressionError("empty expression")
    return _compile_text(source, calendars)


# A flow repeats its conditions (`vars.tries > 3` in every retry loop); an Expression is immutable.
@functools.lru_cache(maxsize=4096)
def _compile_text(source: str, calendars: frozenset[str] | None) -> Expression:
    tree = parse(source, calendars)
    return Expression(source, tree, frozenset(_reads(tree)), frozenset(_opened(tree)))


def _reads(node: Node) -> list[str]:
    return [sub.fields[0] for sub in subtrees(node) if isinstance(sub, Name) and sub.root == "vars"]


def _opened(node: Node) -> list[str]:
    return [sub.args[0].value for sub in subtrees(node)
            if isinstance(sub, Call) and sub.function == "open" and isinstance(sub.args[0], Literal)]


def truthy(value: Any) -> bool:
    return not (value is None or value is False or value == 0 or value == "" or value == [] or value == {})


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _eval(node: Node, scope: Scope) -> Any:
    match node:
        case Literal(value):
            return value
        case Name(root, fields):
            return _name(root, fields, scope)
        case Attr(base, name, column):
            value = _eval(base, scope)
            if value is None:
                return None
            if not isinstance(value, Mapping):
                raise ExpressionError(f"cannot take .{name} of {_kind(value)}", column)
            return value.get(name)
        case Index(base, index, column):
            return _index(_eval(base, scope), _eval(index, scope), column)
        case ListOf(items):
            return [_eval(item, scope) for item in items]
        case Unary("not", operand, _):
            return not truthy(_eval(operand, scope))
        case Unary(_, operand, column):
            value = _eval(operand, scope)
            if not is_number(value):
                raise ExpressionError(f"cannot negate {_kind(value)}", column)
            return -value
        case Binary("and", left, right, _):
            return truthy(_eval(left, scope)) and truthy(_eval(right, scope))
        case Binary("or", left, right, _):
            return truthy(_eval(left, scope)) or truthy(_eval(right, scope))
        case Binary(op, left, right, column):
            return _binary(op, _eval(left, scope), _eval(right, scope), column)
        case Matches(subject, pattern, column):
            value = _eval(subject, scope)
            if value is None:
                return False
            if not isinstance(value, str):
                raise ExpressionError(f"matches needs text on its left, got {_kind(value)}", column)
            try:
                return pattern.search(value, timeout=REGEX_TIMEOUT) is not None
            except TimeoutError:
                raise ExpressionError(f"regex {pattern.pattern!r} took too long on this input", column) from None
        case Call(function, args, column):
            return _call(function, [_eval(a, scope) for a in args], scope, column)
    raise AssertionError(f"unknown expression node {node!r}")


def _name(root: str, fields: tuple[str, ...], scope: Scope) -> Any:
    if root == "vars":
        return scope.vars.get(fields[0])
    if root == "dialed":
        return scope.dialed
    source = scope.now() if root == "now" else scope.caller if root == "caller" else scope.flow
    return source.get(fields[0])


def _index(value: Any, index: Any, column: int) -> Any:
    if value is None:
        return None
    if isinstance(value, list | str):
        if not isinstance(index, int) or isinstance(index, bool):
            raise ExpressionError(f"a {_kind(value)} index is a whole number, not {_kind(index)}", column)
        return value[index] if -len(value) <= index < len(value) else None
    if isinstance(value, Mapping):
        if not isinstance(index, str):
            raise ExpressionError(f"an object's key is text, not {_kind(index)}", column)
        return value.get(index)
    raise ExpressionError(f"cannot index {_kind(value)}", column)


def _equal(a: Any, b: Any) -> bool:
    if _kind(a) != _kind(b):
        return False
    return bool(a == b)


def _binary(op: str, a: Any, b: Any, column: int) -> Any:
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("in", "not in"):
        found = _contains(b, a, column)
        return found if op == "in" else not found
    if op in ("<", "<=", ">", ">="):
        if not ((is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise ExpressionError(f"cannot compare {_kind(a)} {op} {_kind(b)}", column)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "+":
        if is_number(a) and is_number(b):
            return _number(a + b, column)
        if isinstance(a, str) and isinstance(b, str):
            if len(a) + len(b) > MAX_TEXT:
                raise ExpressionError(f"text longer than {MAX_TEXT} characters", column)
            return a + b
        if isinstance(a, list) and isinstance(b, list):
            if len(a) + len(b) > MAX_LIST:
                raise ExpressionError(f"list longer than {MAX_LIST} items", column)
            return a + b
        raise ExpressionError(f"cannot add {_kind(a)} + {_kind(b)} (str() turns a number into text)", column)
    if op == "-":
        if is_number(a) and is_number(b):
            return _number(a - b, column)
        raise ExpressionError(f"cannot subtract {_kind(a)} - {_kind(b)}", column)
    raise AssertionError(f"unknown operator {op!r}")


def _contains(container: Any, item: Any, column: int) -> bool:
    if container is None:
        return False
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ExpressionError(f"'in' text needs text on its left, got {_kind(item)}", column)
        return item in container
    if isinstance(container, list):
        return any(_equal(item, element) for element in container)
    if isinstance(container, Mapping):
        return isinstance(item, str) and item in container
    raise ExpressionError(f"'in' needs text, a list or an object on its right, got {_kind(container)}", column)


def _number(value: int | float, column: int) -> int | float:
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise ExpressionError(f"number too large (at most {MAX_INT})", column)
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError("number too large", column)
    return value


def _call(function: str, args: list[Any], scope: Scope, column: int) -> Any:
    (value,) = args
    if function == "len":
        if isinstance(value, str | list | Mapping):
            return len(value)
        if value is None:
            return 0
        raise ExpressionError(f"len() of {_kind(value)}", column)
    if function == "str":
        return to_text(value)
    if function == "int":
        return _to_int(value, column)
    if function in ("lower", "upper"):
        if not isinstance(value, str):
            raise ExpressionError(f"{function}() needs text, got {_kind(value)}", column)
        return value.lower() if function == "lower" else value.upper()
    if function == "open":
        return scope.is_open(value)
    raise AssertionError(f"unknown function {function!r}")


def _to_int(value: Any, column: int) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError("int() of a number too large", column)
        return _number(int(value), column)  # type: ignore[return-value]
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 20 or not (text.lstrip("+-").isdigit() and text.isascii()):
            raise ExpressionError(f"int() of {value[:30]!r}: not a whole number", column)
        return _number(int(text), column)  # type: ignore[return-value]
    raise ExpressionError(f"int() of {_kind(value)}", column)


def to_text(value: Any) -> str:
    """A value as text, the way templates and str() show it: null as "", true as "true", 2.0 as "2.0"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if is_number(value):
            return str(value)
    return orjson.dumps(value).decode()
