"""A small async AMI client over panoramisk (pinned: 1.4 handles events and EventList replies).

Actions (`action`, `contacts`) on a connection of their own (`async with AmiClient(...)`), or events:

    ami.on_event("ContactStatus", handler)   # handler(fields), in Asterisk's order
    ami.on_login(handler)                    # after every login: events missed meanwhile are lost
    task = asyncio.create_task(ami.run())    # connects, and stays connected until close()
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager

log = logging.getLogger("ivrpowers.ami")


class AmiError(Exception):
    pass


EventHandler = Callable[[dict[str, Any]], None]  # an event's fields (Event, and its headers)


@dataclass(frozen=True)
class Contact:
    """A registered SIP contact (what a phone told Asterisk when it registered)."""

    endpoint: str
    uri: str
    status: str
    user_agent: str
    expires_in: int | None


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk reconnects whenever the connection drops, even after close(): not after ours."""

    closing = False

    def close(self) -> None:
        self.closing = True
        super().close()

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closing:  # a reconnect scheduled before close()
            return None
        return super().connect(*args, **kwargs)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closing:
            self._connected = False
            return
        super().connection_lost(exc)


def _deliver(handler: EventHandler) -> Callable[[Manager, Any], None]:
    def deliver(manager: Manager, message: Any) -> None:
        try:
            handler(dict(message.items()))
        except Exception:
            log.exception("AMI event handler %r failed", handler)

    return deliver


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class AmiClient:
    def __init__(self, host: str, port: int, username: str, secret: str) -> None:
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self._manager: Manager | None = None
        self._handlers: list[tuple[str, EventHandler]] = []
        self._on_login: list[Callable[[], None]] = []
        self._closed = False
        self.logins = 0  # successful logins: the first, then one after each reconnect
        self.problem: str | None = None  # why `run` is not connected, while it is not

    def on_event(self, name: str, handler: EventHandler) -> None:
        """Call `handler(fields)` for every event `name` (as the account's read class and eventfilter let
        Asterisk send it), in the order Asterisk sent them. Before `connect`/`run`."""
        self._handlers.append((name, handler))

    def on_login(self, handler: Callable[[], None]) -> None:
        """Call `handler()` after every login: the first, and each one after panoramisk reconnected (the
        events sent meanwhile are lost: read the state again)."""
        self._on_login.append(handler)

    @property
    def connected(self) -> bool:
        """Logged in on a live connection (events flow)."""
        manager = self._manager
        return manager is not None and bool(manager.authenticated) and bool(manager._connected)

    async def run(self, retry: float = 2.0) -> None:
        """Connect, retrying every `retry` s while Asterisk cannot be reached or refuses; once in,
        panoramisk reconnects after a drop by itself. Returns at `close()`."""
        while not self._closed:
            manager = self._manager
            if manager is not None and manager._connected and not manager.authenticated \
                    and manager.authenticated_future is None:
                self._drop()  # panoramisk reconnected, but its login was refused: it would stay so
            if self._manager is None:
                try:
                    await self.connect()
                    self.problem = None
                except AmiError as exc:
                    if str(exc) != self.problem:
                        log.warning("AMI: %s; retrying every %.0f s", exc, retry)
                    self.problem = str(exc)
            await asyncio.sleep(retry)

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect and log in; AmiError if Asterisk refuses the login or cannot be reached."""
        # panoramisk retries a refused connection quietly until the timeout: ask once, fail at once.
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), min(timeout, 3.0))
        except (OSError, TimeoutError) as exc:
            errno = exc.errno if isinstance(exc, OSError) else None
            why = os.strerror(errno).lower() if errno else "no answer"
            raise AmiError(f"nothing answers on {self.host}:{self.port}: {why}") from exc
        writer.close()
        manager = _Manager(
            loop=asyncio.get_running_loop(), host=self.host, port=self.port,
            username=self._username, secret=self._secret, ping_delay=10, reconnect_timeout=2,
            log=log, on_login=self._logged_in,
        )
        for name, handler in self._handlers:
            manager.register_event(name, _deliver(handler))
        manager.connect()
        self._manager = manager
        deadline = time.monotonic() + timeout
        # panoramisk reports the login outcome only through state: poll it.
        while time.monotonic() < deadline:
            if manager.authenticated:
                return
            if manager.protocol is not None and manager.authenticated_future is None:
                self._drop()
                raise AmiError(f"AMI login as {self._username!r} refused by {self.host}:{self.port}")
            await asyncio.sleep(0.02)
        self._drop()
        raise AmiError(f"no AMI login on {self.host}:{self.port} within {timeout:.0f}s")

    def _logged_in(self, manager: Manager) -> None:
        if manager is not self._manager:
            return  # a late login of a connection given up meanwhile
        self.logins += 1
        for handler in list(self._on_login):
            try:
                handler()
            except Exception:
                log.exception("AMI login handler %r failed", handler)

    def close(self) -> None:
        """Disconnect; `run` returns."""
        self._closed = True
        self._drop()

    def _drop(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def manager(self) -> Manager:
        if self._manager is None or not self._manager.authenticated:
            raise AmiError("AMI not connected")
        return self._manager

    async def action(self, name: str, **fields: str) -> list[Any]:
        """Send an action; the reply as a list of messages (one, or an EventList's items)."""
        reply = await self.manager.send_action({"Action": name, **fields})
        messages = reply if isinstance(reply, list) else [reply]
        first = messages[0]
        if first.get("Response") == "Error":
            raise AmiError(f"AMI {name}: {first.get('Message', 'error')}")
        return messages

    async def contacts(self) -> list[Contact]:
        """Registered PJSIP contacts: which phones are reachable, where, with what."""
        try:
            replies = await self.action("PJSIPShowContacts")
        except AmiError as exc:
            if "No Contacts found" in str(exc):  # Asterisk's way of saying "an empty list"
                return []
            raise
        return [
            Contact(
                endpoint=m.get("Endpoint", ""), uri=m.get("Uri", ""), status=m.get("Status", ""),
                user_agent=m.get("UserAgent", ""),
                expires_in=max(0, exp - int(time.time())) if (exp := _int(m.get("ExpirationTime"))) else None,
            )
            for m in replies
            if m.get("Event") == "ContactList"
        ]
