"""The interface between the pure flow interpreter and a live call.

The interpreter knows nothing of ARI: it drives a `Call` and writes its timeline to a `Journal`.
`ivrpowers.calls` implements both on a real Asterisk channel; tests and the simulator use fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class CallerHungUp(Exception):
    """The caller left: raised by any `Call` method once the channel is gone or hanging up."""


class Call(Protocol):
    """A live call as the interpreter sees it."""

    @property
    def caller_number(self) -> str: ...

    @property
    def caller_name(self) -> str: ...

    @property
    def dialed(self) -> str: ...

    async def answer(self) -> None:
        """Answer the call (a no-op when already answered)."""

    async def play(self, media: Sequence[str], *, barge_in: bool = True, language: str | None = None) -> str | None:
        """Play `media` (ARI media URIs such as `sound:hello-world`, `digits:123`, `number:42`) in order.

        With `barge_in`, a digit already buffered skips the prompt and is returned, and the first
        digit pressed during it stops it and is returned. Without `barge_in`, the prompt plays to
        the end and digits pressed meanwhile stay buffered for the next read. Returns None when the
        media played to the end. (`flows.digits.CallMedia` implements these rules for every call.)
        `language` picks the sounds' language for this playback (None: the channel's own).
        """

    async def read_digit(self, timeout: float) -> str | None:
        """Return the next buffered or incoming DTMF digit, or None after `timeout` seconds."""

    async def hangup(self) -> None:
        """Hang the call up from the flow's side."""

    async def hold(self, media: str | None) -> None:
        """Start hold media (`moh:CLASS`: Asterisk's music on hold; `sound:NAME`: that sound over and
        over) or, with None, stop it. It plays until stopped, through digit waits; stop it before a
        playback."""


class Journal(Protocol):
    """Where the interpreter writes the call's timeline (node entered, prompt played, DTMF...)."""

    async def record(self, type: str, node: str | None = None, detail: Mapping[str, Any] | None = None) -> None: ...
