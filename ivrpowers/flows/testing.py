"""A scripted caller and an in-memory journal: run flows with no Asterisk.

Used by the unit tests and meant for the flow simulator: a script says what the caller does at
each moment the flow gives them a chance to act (during a playback, or while it waits for a digit).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from .call import CallerHungUp

__all__ = [
    "CallerAction",
    "Entry",
    "HangUp",
    "Interrupt",
    "ListJournal",
    "Listen",
    "Press",
    "ScriptedCall",
    "Silence",
]


@dataclass(frozen=True)
class Press:
    """A digit pressed while the flow waits for one (after any playback has finished)."""

    digit: str


@dataclass(frozen=True)
class Interrupt:
    """A digit pressed during the next playback: it stops a barge-in playback and is returned by
    it, or without barge-in stays buffered for the next wait."""

    digit: str


@dataclass(frozen=True)
class Listen:
    """The caller lets the next playback play to the end. Only needed to get past a playback when
    the next action is one a playback would take (`Interrupt`, `HangUp`): playbacks leave `Press`
    and `Silence` for the wait that follows them."""


@dataclass(frozen=True)
class Silence:
    """Nothing pressed during the next wait: it times out."""


@dataclass(frozen=True)
class HangUp:
    """The caller hangs up during the next playback or wait."""


CallerAction = Press | Interrupt | Listen | Silence | HangUp


class ScriptedCall:
    """A `Call` whose caller follows a script. `actions` logs what the flow did to the call:
    ("answer",), ("play", [uris], barge_in), ("read_digit", timeout), ("hangup",)."""

    def __init__(
        self,
        script: Iterable[CallerAction] = (),
        *,
        caller_number: str = "",
        caller_name: str = "",
        dialed: str = "100",
        when_done: Literal["silence", "hangup"] = "silence",
    ) -> None:
        self.script: deque[CallerAction] = deque(script)
        self.when_done = when_done
        self._caller_number, self._caller_name, self._dialed = caller_number, caller_name, dialed
        self.actions: list[tuple[Any, ...]] = []
        self.answered = False
        self.hung_up_by: Literal["flow", "caller"] | None = None
        self._buffer: deque[str] = deque()

    @property
    def caller_number(self) -> str:
        return self._caller_number

    @property
    def caller_name(self) -> str:
        return self._caller_name

    @property
    def dialed(self) -> str:
        return self._dialed

    def _ensure_up(self) -> None:
        if self.hung_up_by is not None:
            raise CallerHungUp()

    def _caller_leaves(self) -> CallerHungUp:
        self.hung_up_by = "caller"
        return CallerHungUp()

    async def answer(self) -> None:
        self._ensure_up()
        self.actions.append(("answer",))
        self.answered = True

    async def play(self, media: Sequence[str], *, barge_in: bool = True) -> str | None:
        self._ensure_up()
        self.actions.append(("play", list(media), barge_in))
        while self.script:
            action = self.script[0]
            if isinstance(action, HangUp):
                self.script.popleft()
                raise self._caller_leaves()
            if isinstance(action, Listen):
                self.script.popleft()
                break
            if not isinstance(action, Interrupt):
                break  # the caller acts after this playback
            self.script.popleft()
            if barge_in:
                return action.digit
            self._buffer.append(action.digit)
        return None

    async def read_digit(self, timeout: float) -> str | None:
        self._ensure_up()
        self.actions.append(("read_digit", timeout))
        if self._buffer:
            return self._buffer.popleft()
        if not self.script:
            if self.when_done == "hangup":
                raise self._caller_leaves()
            return None
        action = self.script.popleft()
        if isinstance(action, HangUp):
            raise self._caller_leaves()
        if isinstance(action, (Silence, Listen)):
            return None  # a Listen where nothing plays: the caller just listens to the silence
        return action.digit

    async def hangup(self) -> None:
        self._ensure_up()
        self.actions.append(("hangup",))
        self.hung_up_by = "flow"


class Entry(NamedTuple):
    """One journal event; compares equal to a plain (type, node, detail) tuple."""

    type: str
    node: str | None
    detail: dict[str, Any]


class ListJournal:
    """A `Journal` that keeps events in a list."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    async def record(self, type: str, node: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        self.entries.append(Entry(type, node, dict(detail or {})))

    def types(self) -> list[str]:
        return [entry.type for entry in self.entries]

    def of_type(self, type: str) -> list[Entry]:
        return [entry for entry in self.entries if entry.type == type]
