"""Agents sign in to the /agent page with their own account, not the API's token.

An agent's password is that of the SIP account its calls ring (`endpoint create --webrtc`): one
secret per person, which the page also needs to register the browser. Signing in gives a token
that speaks for that agent only: its own state, stats, chats and events (`agent_may`), for
`TOKEN_TTL` seconds. A token is signed with the installation's `session_key` (secrets.json), so
every controller sharing the secrets accepts it, and nothing is kept per session.

Wrong passwords are throttled per agent name: after `MAX_FAILURES` in a row, sign-in is refused
for `LOCKOUT` seconds, whatever the password.

A wallboard gets a *view* token from the CLI (`ivrpowers wallboard`), signed with the same key: it
may read the statistics and follow them live (`view_may`), nothing else, and sees no caller's
details (the events websocket sends it statistics only). It lasts `VIEW_TTL` (a screen on a wall
runs for weeks); changing `session_key` voids every token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

TOKEN_PREFIX = "agent."
VIEW_PREFIX = "view."
# Where the auth check leaves a signed-in agent's id (or a wallboard's name) on its request.
AGENT = web.RequestKey("agent", str)
VIEWER = web.RequestKey("viewer", str)
TOKEN_TTL = 12 * 3600  # a working day
VIEW_TTL = 90 * 86400
MAX_FAILURES = 5
LOCKOUT = 60.0

_ID = r"[a-z0-9][a-z0-9_-]{0,62}"
# What an agent's token may do: (method, path pattern); `{me}` is the agent's own id.
_ALLOWED = [
    ("GET", r"/api/agents/{me}"),
    ("GET", r"/api/agents/{me}/(state|stats|chats)"),
    ("POST", r"/api/agents/{me}/[a-z-]{1,20}"),
    ("POST", r"/api/agents/{me}/call/(hold|unhold|transfer)"),
    ("GET", r"/api/queues"),  # where a call may be transferred: the queues' names and definitions
    ("POST", r"/api/agents/{me}/chats/chat-[0-9a-f]{32}/[a-z]{1,20}"),
    ("GET", r"/api/agents/{me}/chats/chat-[0-9a-f]{32}/ws"),  # a chat it holds, live (chats_api)
    ("POST", r"/api/agents/{me}/recordings/[0-9a-f-]{36}"),  # a call it answered (recordings_api)
    ("GET", r"/api/events"),  # the agent's own events only (the route filters them)
    # Supervisors' only: the routes refuse other agents (supervision_api).
    ("GET", r"/api/supervision"),
    ("POST", r"/api/supervision/[0-9a-f-]{36}"),
    ("DELETE", r"/api/supervision/[0-9a-f-]{36}"),
]


# What a wallboard's token may do: read the statistics, now and live.
_VIEW_ALLOWED = [("GET", r"/api/stats"), ("GET", r"/api/events")]


def agent_may(agent_id: str, method: str, path: str) -> bool:
    me = re.escape(agent_id)
    return any(method == m and re.fullmatch(p.replace("{me}", me), path) for m, p in _ALLOWED)


def view_may(method: str, path: str) -> bool:
    return any(method == m and re.fullmatch(p, path) for m, p in _VIEW_ALLOWED)


@dataclass
class SignedTokens:
    """Tokens `<prefix><subject>.<expires>.<mac>`: an agent's (`agent.`) or a wallboard's (`view.`).
    The prefix is signed too: one kind cannot be passed off as the other."""

    key: bytes
    prefix: str = TOKEN_PREFIX
    ttl: int = TOKEN_TTL
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._pattern = re.compile(rf"{re.escape(self.prefix)}({_ID})\.(\d{{1,12}})\.([A-Za-z0-9_-]{{43}})")

    def _sign(self, subject: str, expires: int) -> str:
        mac = hmac.new(self.key, f"{self.prefix}{subject}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, subject: str) -> tuple[str, int]:
        """A token for `subject` and when it expires (Unix time)."""
        expires = int(self.clock()) + self.ttl
        return f"{self.prefix}{subject}.{expires}.{self._sign(subject, expires)}", expires

    def verify(self, token: str) -> str | None:
        """The subject a token speaks for, or None (forged, expired, another kind, not a token)."""
        match = self._pattern.fullmatch(token)
        if match is None:
            return None
        subject, expires = match.group(1), int(match.group(2))
        if expires < self.clock() or not hmac.compare_digest(match.group(3), self._sign(subject, expires)):
            return None
        return subject

    def views(self) -> SignedTokens:
        """The wallboards' tokens, signed with the same key."""
        return SignedTokens(self.key, VIEW_PREFIX, VIEW_TTL, self.clock)


@dataclass
class Throttle:
    """Failed sign-ins per name; a name with too many in a row is locked out for a while."""

    clock: Callable[[], float] = time.monotonic
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (count, locked until)

    def locked(self, name: str) -> float:
        """Seconds until `name` may try again (0: now)."""
        _, until = self.failures.get(name, (0, 0.0))
        return max(0.0, until - self.clock())

    def failed(self, name: str) -> None:
        count, _ = self.failures.get(name, (0, 0.0))
        count += 1
        until = self.clock() + LOCKOUT if count >= MAX_FAILURES else 0.0
        self.failures[name] = (0 if until else count, until)
        if len(self.failures) > 10_000:  # names tried at random: forget the oldest
            self.failures.pop(next(iter(self.failures)))

    def succeeded(self, name: str) -> None:
        self.failures.pop(name, None)
