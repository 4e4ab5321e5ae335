"""The building blocks of flow files: field types with their validation, the markers that let whole-flow
checks find node references, media and expressions in any node type, and `BaseNode`."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
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
)
from pydantic_core import PydanticCustomError

from .expressions import KEYWORDS, Expression, ExpressionError, compile_expression
from .templates import TemplateError, template_names

# ARI media URI schemes a flow may use; `recording:` plays a stored recording by name.
MEDIA_SCHEMES: frozenset[str] = frozenset({"sound", "video", "digits", "number", "characters", "tone", "recording"})
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


_Found = Iterator[tuple[_Marker, Loc, str]]
_Walker = Callable[[Any, Loc], _Found]


def _walker(annotation: Any) -> _Walker | None:
    """A function finding the marked strings in a value of `annotation`'s type; None when that
    type can hold none. Made once per model (`_fields`): reading type annotations per node was most
    of the cost of checking a big flow."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        marker = next((m for m in metadata if isinstance(m, _Marker)), None)
        if marker is None:
            return _walker(base)
        if marker is JSON_TEMPLATES:
            return _json_strings
        return functools.partial(_marked, marker)
    if origin in (Union, UnionType):
        options = [found for option in get_args(annotation) if (found := _walker(option)) is not None]
        return functools.partial(_any_of, options) if options else None
    if origin is list:
        item = _walker(get_args(annotation)[0])
        return functools.partial(_items, item) if item is not None else None
    if origin is dict:
        item = _walker(get_args(annotation)[1])
        return functools.partial(_values, item) if item is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return functools.partial(_walk_model, annotation) if _fields(annotation) else None
    return None


# Values of the wrong shape are skipped, not errors: field validation reports those.
def _marked(marker: _Marker, value: Any, loc: Loc) -> _Found:
    if isinstance(value, str):
        yield marker, loc, value
    elif marker is EXPRESSION and isinstance(value, Expression):
        yield marker, loc, value.source


def _any_of(options: list[_Walker], value: Any, loc: Loc) -> _Found:
    for option in options:
        yield from option(value, loc)


def _items(item: _Walker, value: Any, loc: Loc) -> _Found:
    if isinstance(value, str):  # raw `media: sound:x`, before validation makes it a list
        yield from item(value, loc)
    elif isinstance(value, list):
        for index, element in enumerate(value):
            yield from item(element, (*loc, index))


def _values(item: _Walker, value: Any, loc: Loc) -> _Found:
    if isinstance(value, Mapping):
        for key, element in value.items():
            yield from item(element, (*loc, key))


def _json_strings(value: Any, loc: Loc, depth: int = 0) -> _Found:
    if isinstance(value, str):
        yield TEMPLATE, loc, value
    elif depth < 16 and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _json_strings(item, (*loc, key), depth + 1)
    elif depth < 16 and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_strings(item, (*loc, index), depth + 1)


@functools.cache
def _fields(cls: type[BaseModel]) -> list[tuple[str, _Walker]]:
    """The fields of `cls` that can hold marked strings, with the walker of each."""
    found = []
    for name, field in cls.model_fields.items():
        # pydantic moves a field's own Annotated metadata (e.g. `next: NodeRef`) to field.metadata.
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        if (walker := _walker(annotation)) is not None:
            found.append((name, walker))
    return found


def _walk_model(cls: type[BaseModel], value: Any, loc: Loc = ()) -> _Found:
    model = isinstance(value, BaseModel)
    if not model and not isinstance(value, Mapping):
        return
    for name, walker in _fields(cls):
        if model:
            element = getattr(value, name)
        elif name in value:
            element = value[name]
        else:
            continue
        yield from walker(element, (*loc, name))


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

    def secret_templates(self) -> Iterator[tuple[Loc, str]]:
        """Every template that may use `secrets.*` (an http request's url, headers, body strings)."""
        return ((loc, value) for marker, loc, value in _walk_model(type(self), self) if marker is TEMPLATE)
