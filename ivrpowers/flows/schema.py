"""What a flow is: the `Flow` model (its nodes are `node_types`, their fields `fields`), and the
whole-flow checks no single field can make (`graph_issues`). The names of both are re-exported here.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Collection, Iterator, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from .calendars import OpeningHours, parse_calendar, time_zone
from .expressions import ExpressionError, compile_expression
from .fields import (
    ADOPT_POLICIES,
    DTMF_DIGITS,
    EXPRESSION,
    MEDIA,
    MEDIA_SCHEMES,
    NODE_REF,
    TEMPLATE,
    TEXT,
    AdoptPolicy,
    BaseNode,
    Issue,
    Language,
    Loc,
    NodeId,
    NodeRef,
    Slug,
    _error,
    _Marker,
    _Model,
    _walk_model,
)
from .node_types import (
    NODE_TYPES,
    AnswerNode,
    BranchNode,
    GatherNode,
    HangupNode,
    HttpNode,
    MenuNode,
    Node,
    PlayNode,
    QueueAnnounce,
    QueueNode,
    RecordNode,
    SayNode,
    SetNode,
    SubflowNode,
    TransferNode,
)
from .templates import TemplateError, has_template, template_names, unknown_template_name

__all__ = [
    "ADOPT_POLICIES",
    "DTMF_DIGITS",
    "MEDIA",
    "MEDIA_SCHEMES",
    "NODE_REF",
    "NODE_TYPES",
    "AdoptPolicy",
    "AnswerNode",
    "BaseNode",
    "BranchNode",
    "Calendar",
    "Flow",
    "GatherNode",
    "HangupNode",
    "HttpNode",
    "Issue",
    "Loc",
    "MenuNode",
    "Node",
    "NodeRef",
    "PlayNode",
    "QueueAnnounce",
    "QueueNode",
    "RecordNode",
    "SayNode",
    "SetNode",
    "SubflowNode",
    "TransferNode",
    "graph_issues",
]


# Validation context key: the caller runs `graph_issues` itself, on the raw data, with every
# location (the loader), so validation need not run it too.
GRAPH_CHECKED_BY_CALLER = "graph_checked_by_caller"


def _did_you_mean(name: str, choices: Collection[str]) -> str:
    """` (did you mean 'x'?)`: difflib's closest choice, if close enough. It compares the name with
    every choice: `graph_issues` gives it a few candidates, not all of a big flow's ids."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _references(node: Any) -> Iterator[tuple[_Marker, Loc, str]]:
    if isinstance(node, BaseNode):
        yield from _walk_model(type(node), node)
    elif isinstance(node, Mapping) and isinstance(node.get("type"), str) and node["type"] in NODE_TYPES:
        yield from _walk_model(NODE_TYPES[node["type"]], node)


def graph_issues(start: object, nodes: Mapping[Any, Any], calendars: Collection[str] = ()) -> list[Issue]:
    """Whole-flow checks no single field can make: dangling node ids, unknown template names,
    calendars that `open()` names but the flow does not declare.

    `nodes` may be validated nodes or the raw mapping from the file: the loader runs this on raw
    data so that a broken field in one node doesn't hide a dangling reference in another.
    """
    node_ids = [node_id for node_id in nodes if isinstance(node_id, str)]
    known_ids = set(node_ids)
    # "Did you mean" for every dangling reference, each against every id, made a big broken flow
    # quadratic (3,000 nodes: minutes). Ids one edit away, the usual typo, share a one-letter
    # deletion with the name: an index of those gives a few candidates; only `full_searches`
    # names without any get a search of all ids. Each name is looked up once.
    near: dict[str, list[str]] = {}
    full_searches = 8
    hints: dict[str, str] = {}

    def deletions(name: str) -> set[str]:
        return {name, *(name[:i] + name[i + 1 :] for i in range(len(name)))} if len(name) <= 64 else set()

    def hint(name: str) -> str:
        nonlocal full_searches
        if name in hints:
            return hints[name]
        if not near:
            for node_id in node_ids:
                for key in deletions(node_id):
                    ids = near.setdefault(key, [])
                    if len(ids) < 16:  # a short key ("1") may fit hundreds of ids: the first will do
                        ids.append(node_id)
        candidates = dict.fromkeys(node_id for key in deletions(name) for node_id in near.get(key, ()))
        found = _did_you_mean(name, candidates) if candidates else ""
        if not found and full_searches > 0:
            full_searches -= 1
            found = _did_you_mean(name, node_ids)
        hints[name] = found
        return found

    issues = []
    if isinstance(start, str) and start not in known_ids:
        issues.append(Issue(("start",), f"start node {start!r} does not exist{hint(start)}"))
    for node_id in node_ids:
        for marker, loc, value in _references(nodes[node_id]):
            where = ("nodes", node_id, *loc)
            if marker is NODE_REF and value not in known_ids:
                issues.append(Issue(where, f"no node named {value!r}{hint(value)}"))
            elif marker in (MEDIA, TEMPLATE, TEXT) and has_template(value):
                try:
                    used = template_names(value)
                except TemplateError:
                    continue  # a syntax error, already reported by field validation
                secrets = marker is TEMPLATE
                issues.extend(Issue(where, problem) for name in used
                              if (problem := unknown_template_name(name, secrets=secrets)))
            elif marker is EXPRESSION:
                try:
                    opened = compile_expression(value).calendars
                except ExpressionError:
                    continue  # reported by field validation
                for name in sorted(opened - set(calendars)):
                    known = ", ".join(sorted(calendars)) or "none declared"
                    issues.append(Issue(where, f"open({name!r}): no such calendar in this flow's calendars "
                                               f"(known: {known})"))
    return issues


class Calendar(_Model):
    """Opening hours per weekday and closed dates (`flows.calendars`)."""

    hours: dict[str, str | list[str]] = {}
    closed: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> Calendar:
        try:
            parse_calendar(self.hours, self.closed)
        except ValueError as exc:
            raise _error("calendar", str(exc)) from None
        return self

    @functools.cached_property
    def opening_hours(self) -> OpeningHours:
        return parse_calendar(self.hours, self.closed)


def _time_zone(value: str) -> str:
    try:
        time_zone(value)
    except ValueError as exc:
        raise _error("timezone", str(exc)) from None
    return value


class Flow(_Model):
    """A validated flow: every transition names an existing node, every template a known name."""

    name: Slug
    description: str | None = None
    timezone: Annotated[str, AfterValidator(_time_zone)] | None = None  # None: the controller's
    language: Language | None = None  # of every prompt; None: the channel's (Asterisk's default, en)
    calendars: dict[Slug, Calendar] = {}
    start: NodeRef
    nodes: Annotated[dict[NodeId, Node], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_graph(self, info: ValidationInfo) -> Flow:
        if info.context is not None and info.context.get(GRAPH_CHECKED_BY_CALLER):
            return self
        issues = graph_issues(self.start, self.nodes, self.calendars)
        if issues:
            raise _error("flow_graph", "; ".join(f"{'.'.join(map(str, i.loc))}: {i.message}" for i in issues))
        return self
