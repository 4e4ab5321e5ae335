"""Every node type of the flow language, one pydantic model each (`Node` is their union).

To add a node type: subclass `BaseNode` with a `type: Literal[...]`, type every field that names a
node as `NodeRef` and every media URI as `MediaUri`/`MediaList` (that is all the dangling-reference
and template checks, `transitions()` and `media_items()` need), add the class to `Node`, and
register a handler with `@handles(...)` in `flows/nodes/`. Say what happens to a call adopted by
another controller while it was in a node of that type (`adopt`, see `AdoptPolicy`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AfterValidator, Field, model_validator

from .expressions import Expression, compile_expression
from .fields import (
    JSON_TEMPLATES,
    AdoptPolicy,
    BaseNode,
    Expr,
    JsonPath,
    Language,
    MediaList,
    NodeRef,
    Options,
    Regex,
    Slug,
    Template,
    Text,
    Url,
    VarName,
    _dtmf,
    _error,
    _json_templates,
    _Model,
)


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
    at the attempt it was on, with the digits it had. `secret` (a PIN): the timeline shows that
    keys were pressed, never which, and digits are not kept for an adopting controller."""

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
    secret: bool = False

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


class QueueAnnounce(_Model):
    """What a waiting caller is told every `every` seconds (0: never): their position, the wait."""

    every: Annotated[int, Field(ge=0, le=3600)] = 30
    position: bool = True
    wait_time: bool = True


class QueueNode(BaseNode):
    """Waits in an ACD queue for an agent, hearing the queue's hold media (and `announce`ments),
    then talks to the agent who answers; when the agent hangs up, the flow goes on at `next`.

    `priority` and each `skills` level are expressions (from a gather or an http lookup). The
    caller may press `leave_digit` (to `on_leave`) or `callback_digit`: they keep their place, hang
    up, and are called back at `callback_number` (default: the number they called from) when an
    agent is free. `max_wait` (s) ends the wait at `on_timeout`, as does the queue's own; a queue
    with nobody logged in may refuse the call: `on_no_agents`. Resumed when adopted: the call keeps
    its place and its wait so far."""

    type: Literal["queue"]
    adopt: ClassVar[AdoptPolicy] = "resume"
    queue: Slug
    priority: Expr = Field(default_factory=lambda: compile_expression(0))
    skills: dict[Slug, Expr] = {}
    prompt: MediaList = []  # played once on joining, before the hold media
    max_wait: Annotated[int, Field(ge=1, le=86_400)] | None = None
    announce: QueueAnnounce | None = None  # None: the queue's
    leave_digit: Annotated[str, AfterValidator(_dtmf)] | None = None
    callback_digit: Annotated[str, AfterValidator(_dtmf)] | None = None
    callback_number: Expr | None = None  # None: caller.number
    next: NodeRef | None = None
    on_timeout: NodeRef | None = None
    on_no_agents: NodeRef | None = None
    on_leave: NodeRef | None = None
    on_callback: NodeRef | None = None

    @model_validator(mode="after")
    def _check_digits(self) -> QueueNode:
        if self.leave_digit is not None and self.leave_digit == self.callback_digit:
            raise _error("queue", "leave_digit and callback_digit must differ")
        return self


Node = Annotated[
    AnswerNode | PlayNode | MenuNode | HangupNode | SetNode | BranchNode | GatherNode | HttpNode | SayNode
    | SubflowNode | TransferNode | RecordNode | QueueNode,
    Field(discriminator="type"),
]

NODE_TYPES: Mapping[str, type[BaseNode]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls for cls in get_args(get_args(Node)[0])
}
