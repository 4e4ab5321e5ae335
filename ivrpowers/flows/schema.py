"""What a flow is: pydantic models for the flow file, one class per node type.

To add a node type: subclass `BaseNode` with a `type: Literal[...]`, type every field that names a
node as `NodeRef` and every media URI as `MediaUri`/`MediaList` (that is all the dangling-reference
and template checks, `transitions()` and `media_items()` need), add the class to `Node`, and
register a handler with `@handles(...)` in `interpreter.py`. Say what happens to a call adopted
by another controller while it was in a node of that type (`adopt`, see `AdoptPolicy`).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Collection, Iterator, Mapping
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .calendars import OpeningHours, parse_calendar, time_zone
from .expressions import KEYWORDS, Expression, ExpressionError, compile_expression
from .templates import TemplateError, has_template, template_names, unknown_template_name

__all__ = [
    "ADOPT_POLICIES",
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
    "PlayNode",
    "RecordNode",
    "SayNode",
    "SetNode",
    "SubflowNode",
    "TransferNode",
    "graph_issues",
]

# ARI media URI schemes a flow may use; `recording:` plays a stored recording by name.
MEDIA_SCHEMES: frozenset[str] = frozenset({"sound", "digits", "number", "characters", "tone", "recording"})
DTMF_DIGITS = "0123456789*#"
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")
_NODE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

Loc = tuple[str | int, ...]

# What a call adopted mid-node does there: run the node again from its start, go on to its
# `next` as if it had finished, or pick up its partial input (`RunState.partial`) where it was.
AdoptPolicy = Literal["rerun", "skip", "resume"]
ADOPT_POLICIES: tuple[AdoptPolicy, ...] = get_args(AdoptPolicy)


def _error(kind: str, message: str) -> PydanticCustomError:
    # Message goes through ctx so braces in user text (templates!) aren't taken as format fields.
    return PydanticCustomError(kind, "{message}", {"message": message})


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        rule = "lowercase letters, digits, '_' and '-', e.g. 'main-menu'"
        raise _error("slug", f"{value!r} is not a valid name ({rule})")
    return value


def _node_id(value: str) -> str:
    if not _NODE_ID.fullmatch(value):
        raise _error("node_id", f"{value!r} is not a valid node id (letters, digits, '_' and '-')")
    return value


def _media_uri(value: str) -> str:
    scheme, colon, rest = value.partition(":")
    if not colon:
        raise _error("media_uri", f"{value!r} is not a media URI (expected scheme:value, e.g. sound:hello-world)")
    if scheme not in MEDIA_SCHEMES:
        known = ", ".join(sorted(MEDIA_SCHEMES))
        raise _error("media_scheme", f"unknown media scheme {scheme!r} in {value!r} (expected one of: {known})")
    # An empty value is only legitimate when a template may fill it in at run time.
    if not rest.strip():
        raise _error("media_uri", f"{value!r} has nothing after '{scheme}:'")
    try:
        template_names(value)
    except TemplateError as exc:
        raise _error("template", str(exc)) from None
    return value


def _var_name(value: str) -> str:
    if not _VAR_NAME.fullmatch(value):
        raise _error("var_name", f"{value!r} is not a variable name (a letter or '_', then letters, digits, '_')")
    if value in KEYWORDS:
        raise _error("var_name", f"{value!r} is a word of the expression language: vars.{value} could not be read")
    return value


def _expression(value: Any) -> Expression:
    if isinstance(value, Expression):
        return value
    try:
        return compile_expression(value)
    except ExpressionError as exc:
        raise _error("expression", f"{exc}{_quote_hint(value, exc)}") from None


def _quote_hint(value: Any, exc: ExpressionError) -> str:
    # `greeting: hello` in a set node: the author meant text, the language reads a name.
    if isinstance(value, str) and exc.problem.startswith("unknown name") and value.isidentifier():
        return f"; text goes in quotes: \"'{value}'\""
    return ""


def _template(value: str) -> str:
    try:
        template_names(value)
    except TemplateError as exc:
        raise _error("template", str(exc)) from None
    return value


def _url(value: str) -> str:
    _template(value)
    if not value.startswith(("http://", "https://", "{{")):
        raise _error("url", f"{value!r} is not an http:// or https:// URL")
    return value


def _json_templates(value: Any, depth: int = 0) -> Any:
    if depth > 16:
        raise _error("body", "the body is nested too deep (at most 16 levels)")
    if isinstance(value, str):
        _template(value)
    elif isinstance(value, dict):
        for item in value.values():
            _json_templates(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _json_templates(item, depth + 1)
    return value


def _language(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2,3}([_-][A-Za-z0-9]{1,8}){0,3}", value):
        raise _error("language", f"{value!r} is not a language code (e.g. en, es, fr_FR, en_US_f_Allison)")
    return value


def _regex(value: str) -> str:
    import regex

    try:
        regex.compile(value)
    except regex.error as exc:
        raise _error("regex", f"bad regex {value!r}: {exc}") from None
    return value


def _json_path(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", value):
        raise _error("json_path", f"{value!r} is not a dotted path into the answer (e.g. customer.tier or items.0.id)")
    return value


def _one_or_many(value: Any) -> Any:
    # `prompt: sound:x` is the natural way to write a single prompt.
    return [value] if isinstance(value, str) else value


def _dtmf(value: str) -> str:
    if len(value) != 1 or value not in DTMF_DIGITS:
        raise _error("dtmf", f"{value!r} is not a DTMF digit (0-9, * or #)")
    return value


def _digit_keys(value: Any) -> Any:
    # Unquoted `1: next` is a YAML int; accept it rather than make every flow author quote digits.
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, target in value.items():
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 9:
            key = str(key)
        if key in out:
            raise _error("dtmf", f"digit {key!r} is listed twice")
        out[key] = target
    return out


class _Marker:
    """Annotated metadata saying what a string field holds, so whole-flow checks, lint and the graph
    find every node reference and media URI from the type annotations, including in node types
    added later, and even in raw data that failed validation elsewhere."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


NODE_REF = _Marker("node_ref")
MEDIA = _Marker("media")
EXPRESSION = _Marker("expression")
TEMPLATE = _Marker("template")  # text with {{ names }}, `secrets.*` among them (http nodes only)
TEXT = _Marker("text")  # text with {{ names }}, no secrets (what a caller or a CDR may see)
JSON_TEMPLATES = _Marker("json_templates")  # a JSON value whose every string is a TEMPLATE

Slug = Annotated[str, AfterValidator(_slug)]
NodeId = Annotated[str, AfterValidator(_node_id)]
NodeRef = Annotated[str, NODE_REF]  # existence is a whole-flow property, checked by `graph_issues`
MediaUri = Annotated[str, AfterValidator(_media_uri), MEDIA]
# One string is accepted for a list of one (and editors are told so by the JSON Schema).
MediaList = Annotated[
    list[MediaUri], BeforeValidator(_one_or_many, json_schema_input_type=MediaUri | list[MediaUri])
]
Digit = Annotated[str, AfterValidator(_dtmf)]
VarName = Annotated[str, AfterValidator(_var_name)]
Language = Annotated[str, AfterValidator(_language)]
Template = Annotated[str, AfterValidator(_template), TEMPLATE]
Text = Annotated[str, AfterValidator(_template), TEXT]
Url = Annotated[str, AfterValidator(_url), TEMPLATE]
JsonPath = Annotated[str, AfterValidator(lambda v: _json_path(v))]
Regex = Annotated[str, AfterValidator(_regex)]
# Written as text (or a YAML number, boolean or null: a literal); parsed when the flow loads.
Expr = Annotated[
    Expression, PlainValidator(_expression), WithJsonSchema({"type": ["string", "number", "boolean", "null"]}),
    EXPRESSION,
]
# Field first: after the BeforeValidator its minimum would reach the JSON Schema as a string's minLength.
Options = Annotated[dict[Digit, NodeRef], Field(min_length=1), BeforeValidator(_digit_keys)]


class Issue(NamedTuple):
    """A problem found in a flow, located by its path in the document (e.g. `("nodes", "main", "next")`)."""

    loc: Loc
    message: str


def _walk(annotation: Any, value: Any, loc: Loc) -> Iterator[tuple[_Marker, Loc, str]]:
    # Values of the wrong shape are skipped, not errors: field validation reports those.
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        marker = next((m for m in metadata if isinstance(m, _Marker)), None)
        if marker is None:
            yield from _walk(base, value, loc)
        elif isinstance(value, str):
            yield marker, loc, value
        elif marker is EXPRESSION and isinstance(value, Expression):
            yield marker, loc, value.source
        elif marker is JSON_TEMPLATES:
            yield from _json_strings(value, loc)
    elif origin in (Union, UnionType):
        for option in get_args(annotation):
            yield from _walk(option, value, loc)
    elif origin is list:
        (item,) = get_args(annotation)
        if isinstance(value, str):  # raw `media: sound:x`, before validation makes it a list
            yield from _walk(item, value, loc)
        elif isinstance(value, list):
            for index, element in enumerate(value):
                yield from _walk(item, element, (*loc, index))
    elif origin is dict:
        _, item = get_args(annotation)
        if isinstance(value, Mapping):
            for key, element in value.items():
                yield from _walk(item, element, (*loc, key))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _walk_model(annotation, value, loc)


def _json_strings(value: Any, loc: Loc, depth: int = 0) -> Iterator[tuple[_Marker, Loc, str]]:
    if isinstance(value, str):
        yield TEMPLATE, loc, value
    elif depth < 16 and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _json_strings(item, (*loc, key), depth + 1)
    elif depth < 16 and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_strings(item, (*loc, index), depth + 1)


def _walk_model(cls: type[BaseModel], value: Any, loc: Loc = ()) -> Iterator[tuple[_Marker, Loc, str]]:
    for name, field in cls.model_fields.items():
        if isinstance(value, BaseModel):
            element = getattr(value, name)
        elif isinstance(value, Mapping) and name in value:
            element = value[name]
        else:
            continue
        # pydantic moves a field's own Annotated metadata (e.g. `next: NodeRef`) to field.metadata.
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        yield from _walk(annotation, element, (*loc, name))


class _Model(BaseModel):
    # strict: YAML already typed the values; "yes" silently becoming True or "5" becoming 5.0 would
    # hide mistakes. frozen: one parsed Flow is shared by every concurrent call running it.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BaseNode(_Model):
    type: str  # each node type narrows this to its Literal, the discriminator of `Node`
    adopt: ClassVar[AdoptPolicy] = "rerun"

    def adopt_policy(self) -> AdoptPolicy:
        """What a call adopted in this node does (a node type may decide by its fields)."""
        return self.adopt

    def transitions(self) -> Iterator[tuple[Loc, str]]:
        """Every node id this node can go to, with the field it is written in, e.g. (("next",), "main")."""
        return ((loc, value) for marker, loc, value in _walk_model(type(self), self) if marker is NODE_REF)

    def media_items(self) -> Iterator[tuple[Loc, str]]:
        """Every media URI (possibly templated) this node can play, with where it is written."""
        return ((loc, value) for marker, loc, value in _walk_model(type(self), self) if marker is MEDIA)


class AnswerNode(BaseNode):
    """Answering an answered channel is a no-op: rerun."""

    type: Literal["answer"]
    next: NodeRef


class PlayNode(BaseNode):
    """Adopted mid-play: Asterisk goes on playing a queued prompt while no controller watches, so
    by adoption the caller has most likely heard it. A barge-in prompt is one the caller may skip
    anyway: skip it rather than make them hear it twice. A prompt without barge-in is one they
    must hear whole (a legal notice): rerun it, so nobody misses it."""

    type: Literal["play"]
    media: Annotated[MediaList, Field(min_length=1)]
    barge_in: bool = True
    next: NodeRef | None = None  # None: the flow ends here and hangs up

    def adopt_policy(self) -> AdoptPolicy:
        return "skip" if self.barge_in else "rerun"


class MenuNode(BaseNode):
    """Adopted mid-menu: resume at the attempt it was on (prompt again, same retries left), so a
    caller who already used two tries is not given three more."""

    type: Literal["menu"]
    adopt: ClassVar[AdoptPolicy] = "resume"
    prompt: MediaList = []
    options: Options
    timeout: Annotated[float, Field(gt=0, le=600)] = 5.0
    retries: Annotated[int, Field(ge=0, le=20)] = 2
    invalid_prompt: MediaList = []
    on_invalid: NodeRef | None = None  # None: the flow ends here and hangs up
    on_timeout: NodeRef | None = None


class HangupNode(BaseNode):
    """Rerun: the hang-up did not happen, or the call would not be there to adopt."""

    type: Literal["hangup"]


class SetNode(BaseNode):
    """Sets variables, in the order written (a later one may read an earlier one).

    Rerun: its changes reach the journal with the next node's entry, so a call adopted here had
    not kept them, and running it again gives the same values."""

    type: Literal["set"]
    vars: Annotated[dict[VarName, Expr], Field(min_length=1)]
    next: NodeRef | None = None


class Case(_Model):
    when: Expr
    next: NodeRef


class BranchNode(BaseNode):
    """Goes to the first case whose `when` is true, else to `default` (none: the flow ends). Rerun."""

    type: Literal["branch"]
    cases: Annotated[list[Case], Field(min_length=1)]
    default: NodeRef | None = None


class GatherNode(BaseNode):
    """Collects several digits into a variable (an account number, a PIN).

    Input ends at `max_digits`, at the `terminator` (not stored), or when `digit_timeout` passes
    after a digit; it is valid with at least `min_digits` digits that `pattern` (a regex, whole
    input) matches. Digits typed during a prompt barge in and count. Adopted mid-gather: resume
    at the attempt it was on, with the digits it had."""

    type: Literal["gather"]
    adopt: ClassVar[AdoptPolicy] = "resume"
    prompt: MediaList = []
    var: VarName
    min_digits: Annotated[int, Field(ge=1, le=64)] = 1
    max_digits: Annotated[int, Field(ge=1, le=64)] = 20
    terminator: Annotated[str | None, AfterValidator(lambda v: v if v is None else _dtmf(v))] = "#"
    timeout: Annotated[float, Field(gt=0, le=600)] = 5.0
    digit_timeout: Annotated[float, Field(gt=0, le=600)] = 3.0
    pattern: Regex | None = None
    retries: Annotated[int, Field(ge=0, le=20)] = 2
    invalid_prompt: MediaList = []
    next: NodeRef
    on_invalid: NodeRef | None = None  # None: the flow ends here and hangs up
    on_timeout: NodeRef | None = None

    @model_validator(mode="after")
    def _check_lengths(self) -> GatherNode:
        if self.min_digits > self.max_digits:
            raise _error("gather", f"min_digits ({self.min_digits}) is more than max_digits ({self.max_digits})")
        return self


TRANSFER_TARGET = re.compile(r"^(endpoint:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}|number:\+?[0-9*#]{1,32})$")


def _transfer_target(value: str) -> str:
    # Literal only: no template, so no caller input can choose where a call goes.
    if not TRANSFER_TARGET.fullmatch(value):
        raise _error("transfer_target", f"{value!r} is not a transfer target: endpoint:NAME (a phone or browser "
                                        "user of this Asterisk) or number:DIGITS (an outside number, no templates)")
    return value


class TransferNode(BaseNode):
    """Rings `to`; when it answers, the caller and it are bridged and the flow ends (disposition
    `transferred`). Otherwise `on_no_answer` (after `timeout` s), `on_busy`, `on_failure` (a refused
    or unreachable target); none given: the flow ends. Adopted mid-ring: rerun (ring again)."""

    type: Literal["transfer"]
    ends_run: ClassVar[bool] = True  # answered, the call is handed off: an end for lint
    to: Annotated[str, AfterValidator(_transfer_target)]
    timeout: Annotated[float, Field(ge=1, le=300)] = 30.0
    caller_id: Annotated[Text, Field(max_length=80)] | None = None  # None: the caller's own
    on_no_answer: NodeRef | None = None
    on_busy: NodeRef | None = None
    on_failure: NodeRef | None = None


class RecordNode(BaseNode):
    """Voicemail: plays `prompt`, beeps, records the caller until `terminator`, `silence_seconds` of
    silence or `max_seconds`; the recording's name goes into `var` (play it with `recording:NAME`)
    and the timeline (name, duration, size). A caller who hangs up while recording leaves a kept
    message. Adopted mid-recording: skip (Asterisk finishes the recording on its own)."""

    type: Literal["record"]
    adopt: ClassVar[AdoptPolicy] = "skip"
    prompt: MediaList = []
    beep: bool = True
    max_seconds: Annotated[int, Field(ge=1, le=3600)] = 120
    silence_seconds: Annotated[int, Field(ge=0, le=60)] = 5  # 0: silence never ends it
    terminator: Annotated[str | None, AfterValidator(lambda v: v if v is None else _dtmf(v))] = "#"
    var: VarName | None = None
    next: NodeRef | None = None


class SubflowNode(BaseNode):
    """Runs another flow (its published version, pinned for the rest of the call) with the call's
    variables, then goes on to `next`. Inside the subflow, the end of a path returns here; a
    `hangup` node hangs up. Rerun when adopted on it (nothing happened yet)."""

    type: Literal["subflow"]
    flow: Slug
    next: NodeRef | None = None


SAY_KINDS = ("digits", "number", "characters", "date", "time")


class SayNode(BaseNode):
    """Speaks a value with Asterisk's own sounds: exactly one of `digits`, `number`, `characters`,
    `date` ("YYYY-MM-DD") or `time` ("HH:MM"), each an expression (`number: vars.balance`). Dates
    and times are composed from the stock day, month and number sounds. A value that cannot be
    said (unset, not a number...) is skipped, and the timeline says why. Adopted: as `play`."""

    type: Literal["say"]
    digits: Expr | None = None
    number: Expr | None = None
    characters: Expr | None = None
    date: Expr | None = None
    time: Expr | None = None
    language: Language | None = None  # None: the flow's, else the channel's
    barge_in: bool = True
    next: NodeRef | None = None

    @model_validator(mode="after")
    def _one_value(self) -> SayNode:
        given = [kind for kind in SAY_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise _error("say", f"a say node says one of {', '.join(SAY_KINDS)}; it has "
                                f"{', '.join(given) if given else 'none'}")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in SAY_KINDS if getattr(self, kind) is not None)

    @property
    def value(self) -> Expression:
        value = getattr(self, self.kind)
        assert isinstance(value, Expression)
        return value

    def adopt_policy(self) -> AdoptPolicy:
        return "skip" if self.barge_in else "rerun"


class HttpNode(BaseNode):
    """A web-service request (a CRM lookup): its answer's values saved into variables.

    A timeout, a refused connection, a non-2xx status or an answer that is not JSON takes
    `on_error` (none: the flow ends); the status is in `vars.http_status` whenever there was one.
    Timeouts, connection errors and 5xx are tried `retries` more times. Rerun when adopted: a
    lookup is safe to repeat (a POST that is not should say so to its server with an idempotency key)."""

    type: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: Url
    headers: dict[str, Template] = {}
    body: Annotated[dict[str, Any], AfterValidator(_json_templates), JSON_TEMPLATES] | None = None
    timeout: Annotated[float, Field(gt=0, le=30)] = 3.0
    retries: Annotated[int, Field(ge=0, le=5)] = 0
    save: dict[VarName, JsonPath] = {}
    next: NodeRef | None = None
    on_error: NodeRef | None = None


Node = Annotated[
    AnswerNode | PlayNode | MenuNode | HangupNode | SetNode | BranchNode | GatherNode | HttpNode | SayNode
    | SubflowNode | TransferNode | RecordNode,
    Field(discriminator="type"),
]

NODE_TYPES: Mapping[str, type[BaseNode]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls for cls in get_args(get_args(Node)[0])
}


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
    def _check_graph(self) -> Flow:
        issues = graph_issues(self.start, self.nodes, self.calendars)
        if issues:
            raise _error("flow_graph", "; ".join(f"{'.'.join(map(str, i.loc))}: {i.message}" for i in issues))
        return self
