"""The expression language's syntax: the tree, and a Pratt parser checking names at load.

`flows.expressions` evaluates what this parses; the language itself is described there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import regex

from .expression_tokens import (
    FUNCTIONS,
    KEYWORDS,
    MAX_DEPTH,
    MAX_INT,
    MAX_LIST,
    MAX_SOURCE,
    MAX_TEXT,
    NAMES,
    REGEX_TIMEOUT,
    ExpressionError,
    Token,
    tokens,
)

__all__ = [
    "FUNCTIONS", "KEYWORDS", "MAX_DEPTH", "MAX_INT", "MAX_LIST", "MAX_SOURCE", "MAX_TEXT", "NAMES", "REGEX_TIMEOUT",
    "Attr", "Binary", "Call", "ExpressionError", "Index", "ListOf", "Literal", "Matches", "Name", "Node", "Unary",
    "is_number", "parse", "subtrees",
]

# -- the tree ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Name:
    root: str  # "vars", "caller", "now", "flow", "dialed"
    fields: tuple[str, ...]  # the dotted part: ("account",) for vars.account


@dataclass(frozen=True)
class Attr:
    base: Node
    name: str
    column: int


@dataclass(frozen=True)
class Index:
    base: Node
    index: Node
    column: int


@dataclass(frozen=True)
class ListOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    operand: Node
    column: int


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node
    column: int


@dataclass(frozen=True)
class Matches:
    subject: Node
    pattern: Any  # a compiled `regex` pattern
    column: int


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]
    column: int


Node = Literal | Name | Attr | Index | ListOf | Unary | Binary | Matches | Call


# -- the parser ----------------------------------------------------------------------------------
# Binding power of infix operators: higher binds tighter.
_INFIX = {"or": 10, "and": 20, "==": 40, "!=": 40, "<": 40, "<=": 40, ">": 40, ">=": 40, "in": 40,
          "not": 40, "matches": 40, "+": 50, "-": 50}


class _Parser:
    def __init__(self, source: str, calendars: frozenset[str] | None) -> None:
        self.tokens = tokens(source)
        self.pos = 0
        self.depth = 0
        self.calendars = calendars

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.take()
        if token.text != text or token.kind not in ("op", "name"):
            raise ExpressionError(f"expected {text!r}, found {_describe(token)}", token.column)
        return token

    def parse(self) -> Node:
        node = self.expression(0)
        token = self.peek()
        if token.kind != "end":
            raise ExpressionError(f"unexpected {_describe(token)} (an operator or the end was expected)",
                                  token.column)
        return node

    def expression(self, power: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested too deep (at most {MAX_DEPTH} levels)", self.peek().column)
        try:
            left = self.prefix()
            while True:
                token = self.peek()
                op = _infix_op(token)
                if op is None or _INFIX[op] <= power:
                    return left
                left = self.infix(left, op, token)
        finally:
            self.depth -= 1

    def prefix(self) -> Node:
        token = self.take()
        if token.kind in ("num", "str"):
            return Literal(token.value)
        if token.kind == "name":
            word = token.text
            if word == "true":
                return Literal(True)
            if word == "false":
                return Literal(False)
            if word == "null":
                return Literal(None)
            if word == "not":
                return Unary("not", self.expression(30), token.column)
            if word in KEYWORDS:
                raise ExpressionError(f"{word!r} needs something on its left", token.column)
            if self.peek().text == "(" and self.peek().kind == "op":
                return self.call(token)
            return self.postfix(self.name(token))
        if token.text == "-" and token.kind == "op":
            operand = self.expression(60)
            if isinstance(operand, Literal) and is_number(operand.value):
                return Literal(-operand.value)
            return Unary("-", operand, token.column)
        if token.text == "(" and token.kind == "op":
            inner = self.expression(0)
            self.expect(")")
            return self.postfix(inner)
        if token.text == "[" and token.kind == "op":
            return self.postfix(self.list_literal(token))
        raise ExpressionError(f"expected a value, found {_describe(token)}", token.column)

    def name(self, token: Token) -> Node:
        root = token.text
        if root not in NAMES:
            hint = f"; variables are vars.{root}" if root.isidentifier() else ""
            raise ExpressionError(f"unknown name {root!r} (known: {', '.join(sorted(NAMES))}{hint})", token.column)
        allowed = NAMES[root]
        fields: list[str] = []
        if root == "vars":
            fields.append(self.field(token))
        elif allowed is not None:
            field_name = self.field(token)
            if field_name not in allowed:
                raise ExpressionError(f"{root}.{field_name} does not exist (known: "
                                      f"{', '.join(f'{root}.{f}' for f in sorted(allowed))})", token.column)
            fields.append(field_name)
        return Name(root, tuple(fields))

    def field(self, token: Token) -> str:
        if not (self.peek().kind == "op" and self.peek().text == "."):
            raise ExpressionError(f"{token.text!r} needs a field, e.g. {token.text}.{_example(token.text)}",
                                  token.column)
        self.take()
        name = self.take()
        if name.kind != "name" or name.text in KEYWORDS:
            raise ExpressionError(f"expected a name after '.', found {_describe(name)}", name.column)
        return name.text

    def postfix(self, node: Node) -> Node:
        while True:
            token = self.peek()
            if token.kind == "op" and token.text == ".":
                self.take()
                name = self.take()
                if name.kind != "name":
                    raise ExpressionError(f"expected a name after '.', found {_describe(name)}", name.column)
                node = Attr(node, name.text, name.column)
            elif token.kind == "op" and token.text == "[":
                self.take()
                index = self.expression(0)
                self.expect("]")
                node = Index(node, index, token.column)
            else:
                return node

    def call(self, token: Token) -> Node:
        function = token.text
        if function not in FUNCTIONS:
            raise ExpressionError(f"unknown function {function!r} (known: {', '.join(sorted(FUNCTIONS))})",
                                  token.column)
        self.expect("(")
        args: list[Node] = []
        if not (self.peek().kind == "op" and self.peek().text == ")"):
            while True:
                args.append(self.expression(0))
                if self.peek().kind == "op" and self.peek().text == ",":
                    self.take()
                    continue
                break
        self.expect(")")
        if len(args) != 1:
            raise ExpressionError(f"{function}() takes one argument, got {len(args)}", token.column)
        if function == "open":
            (arg,) = args
            if not (isinstance(arg, Literal) and isinstance(arg.value, str)):
                raise ExpressionError('open() takes a calendar\'s name in quotes, e.g. open("support")', token.column)
            if self.calendars is not None and arg.value not in self.calendars:
                known = ", ".join(sorted(self.calendars)) or "none declared"
                raise ExpressionError(f"no calendar named {arg.value!r} in this flow's calendars (known: {known})",
                                      token.column)
        return self.postfix(Call(function, tuple(args), token.column))

    def list_literal(self, token: Token) -> Node:
        items: list[Node] = []
        if not (self.peek().kind == "op" and self.peek().text == "]"):
            while True:
                items.append(self.expression(0))
                if len(items) > MAX_LIST:
                    raise ExpressionError(f"a list may have at most {MAX_LIST} items", token.column)
                if self.peek().kind == "op" and self.peek().text == ",":
                    self.take()
                    continue
                break
        self.expect("]")
        if all(isinstance(i, Literal) for i in items):
            return Literal([i.value for i in items if isinstance(i, Literal)])
        return ListOf(tuple(items))

    def infix(self, left: Node, op: str, token: Token) -> Node:
        self.take()
        if op == "not":  # `not in`
            after = self.take()
            if after.text != "in" or after.kind != "name":
                raise ExpressionError(f"expected 'in' after 'not', found {_describe(after)}", after.column)
            op = "not in"
        if op == "matches":
            pattern = self.take()
            if pattern.kind != "str":
                raise ExpressionError('matches takes a regex in quotes on its right, e.g. matches "^[0-9]{8}$"',
                                      pattern.column)
            try:
                compiled = regex.compile(pattern.value)
            except regex.error as exc:
                raise ExpressionError(f"bad regex {pattern.value!r}: {exc}", pattern.column) from None
            node: Node = Matches(left, compiled, token.column)
            if _infix_op(self.peek()) in ("+", "-"):
                # `x matches "a" + y` would test x, then add y to the boolean: say so now.
                raise ExpressionError("the regex of `matches` is a literal: put parentheses around the whole "
                                      "comparison to add to it", self.peek().column)
        else:
            right = self.expression(_INFIX[token.text])
            node = Binary(op, left, right, token.column)
        nxt = _infix_op(self.peek())
        if _INFIX[op.split()[-1]] == 40 and nxt is not None and _INFIX[nxt] == 40:
            raise ExpressionError("comparisons don't chain: write a < b and b < c", self.peek().column)
        return node


def _infix_op(token: Token) -> str | None:
    if token.kind == "op" and token.text in _INFIX:
        return token.text
    if token.kind == "name" and token.text in ("and", "or", "in", "not", "matches"):
        return token.text
    return None


def _describe(token: Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


def _example(root: str) -> str:
    allowed = NAMES.get(root)
    return sorted(allowed)[0] if allowed else "account"


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def subtrees(node: Node) -> Iterator[Node]:
    """`node` and every node under it."""
    yield node
    match node:
        case Attr(base, _, _) | Unary(_, base, _) | Matches(base, _, _):
            yield from subtrees(base)
        case Index(base, index, _):
            yield from subtrees(base)
            yield from subtrees(index)
        case Binary(_, left, right, _):
            yield from subtrees(left)
            yield from subtrees(right)
        case ListOf(items) | Call(_, items, _):
            for item in items:
                yield from subtrees(item)


def parse(source: str, calendars: frozenset[str] | None) -> Node:
    """The tree of `source`; ExpressionError (with its column) if it is not an expression."""
    return _Parser(source, calendars).parse()
