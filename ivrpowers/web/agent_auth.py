"""Agents sign in to the /agent page with their own account, not the API's token.

An agent's password is that of the SIP account its calls ring (`endpoint create --webrtc`): one
secret per person, which the page also needs to register the browser. Signing in gives a token
that speaks for that agent only: its own state, stats, chats and events (`agent_may`), for
`TOKEN_TTL` seconds. A token is signed with the installation's `session_key` (secrets.json), so
every controller sharing the secrets accepts it, and nothing is kept per session.

Wrong passwords are throttled per agent name: after `MAX_FAILURES` in a row, sign-in is refused
for `LOCKOUT` seconds, whatever the password.
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
# Where the auth check leaves a signed-in agent's id on its request.
AGENT = web.RequestKey("agent", str)
TOKEN_TTL = 12 * 3600  # a working day
MAX_FAILURES = 5
LOCKOUT = 60.0

_ID = r"[a-z0-9][a-z0-9_-]{0,62}"
_TOKEN = re.compile(rf"agent\.({_ID})\.(\d{{1,12}})\.([A-Za-z0-9_-]{{43}})")
# What an agent's token may do: (method, path pattern); `{me}` is the agent's own id.
_ALLOWED = [
    ("GET", r"/api/agents/{me}"),
    ("GET", r"/api/agents/{me}/(state|stats|chats)"),
    ("POST", r"/api/agents/{me}/[a-z-]{1,20}"),
    ("POST", r"/api/agents/{me}/chats/chat-[0-9a-f]{32}/[a-z]{1,20}"),
    ("GET", r"/api/events"),  # the agent's own events only (the route filters them)
]


def agent_may(agent_id: str, method: str, path: str) -> bool:
    me = re.escape(agent_id)
    return any(method == m and re.fullmatch(p.replace("{me}", me), path) for m, p in _ALLOWED)


@dataclass
class AgentTokens:
    key: bytes
    ttl: int = TOKEN_TTL
    clock: Callable[[], float] = time.time

    def _sign(self, agent_id: str, expires: int) -> str:
        mac = hmac.new(self.key, f"{agent_id}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, agent_id: str) -> tuple[str, int]:
        """A token for `agent_id` and when it expires (Unix time)."""
        expires = int(self.clock()) + self.ttl
        return f"{TOKEN_PREFIX}{agent_id}.{expires}.{self._sign(agent_id, expires)}", expires

    def verify(self, token: str) -> str | None:
        """The agent a token speaks for, or None (forged, expired, not a token)."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        agent_id, expires = match.group(1), int(match.group(2))
        if expires < self.clock() or not hmac.compare_digest(match.group(3), self._sign(agent_id, expires)):
            return None
        return agent_id


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
