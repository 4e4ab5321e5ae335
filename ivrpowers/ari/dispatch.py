"""Routing of parsed events (and resync notices) to registered handlers.

Kept apart from the websocket code so the ordering and isolation rules can be read, and tested,
on their own:

* handlers run in the order they subscribed, for each event in the order Asterisk sent it;
* a coroutine handler is awaited before the next handler and the next event, which is what
  gives per-call code a consistent view (DTMF after the StasisStart that created the call...);
  the price is that a slow handler stalls every call, so handlers must be quick and hand long
  work to their own task;
* an exception in a handler is logged and goes no further.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

from .events import EVENT_TYPES, Event, event_channel_id
from .models import Channel

log = logging.getLogger("ivrpowers.ari")

E = TypeVar("E", bound=Event)
# Handlers may declare the precise event class they subscribe to (`def on_start(ev: StasisStart)`):
# the dispatcher only hands them events of the type they named.
EventHandler: TypeAlias = Callable[[E], Awaitable[Any] | Any]
ResyncHandler: TypeAlias = Callable[[list[Channel], bool], Awaitable[Any] | Any]

ALL_EVENTS = "*"
RESYNC = "resync"


class Subscription:
    """A registered handler; `cancel()` unregisters it (idempotent, safe inside a handler)."""

    __slots__ = ("_owner", "_seq", "channel_id", "event_type", "handler")

    def __init__(
        self,
        event_type: str,
        handler: Callable[..., Any],
        channel_id: str | None,
        seq: int,
        owner: list[Subscription],
    ) -> None:
        self.event_type = event_type
        self.handler = handler
        self.channel_id = channel_id
        self._seq = seq
        self._owner: list[Subscription] | None = owner

    @property
    def active(self) -> bool:
        return self._owner is not None

    def cancel(self) -> None:
        if self._owner is not None:
            self._owner.remove(self)
            self._owner = None

    def __repr__(self) -> str:
        where = f" channel={self.channel_id}" if self.channel_id else ""
        state = "" if self.active else " cancelled"
        return f"<Subscription {self.event_type}{where}{state}>"


async def call_handler(handler: Callable[..., Any], what: str, *args: Any) -> None:
    """Call a sync or async handler; log instead of raising."""
    try:
        result = handler(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        name = getattr(handler, "__qualname__", None) or repr(handler)
        log.exception("ARI %s handler %s failed", what, name)


class Dispatcher:
    """Holds subscriptions and delivers events and resyncs to them."""

    def __init__(self) -> None:
        self._by_type: dict[str, list[Subscription]] = {}
        self._resync: list[Subscription] = []
        self._seq = itertools.count()

    def subscribe(
        self,
        event_type: str | type[E],
        handler: EventHandler[E],
        *,
        channel_id: str | None = None,
    ) -> Subscription:
        if isinstance(event_type, type):
            event_type = ALL_EVENTS if event_type is Event else event_type.__name__
        if not event_type:
            raise ValueError("event_type must be an ARI event type name or '*'")
        bucket = self._by_type.setdefault(event_type, [])
        sub = Subscription(event_type, handler, channel_id, next(self._seq), bucket)
        bucket.append(sub)
        return sub

    def wants(self, event_type: object) -> bool:
        """Would an event of this type reach any handler? (If not, it need not even be parsed.)"""
        return bool(self._by_type.get(ALL_EVENTS)) or (
            isinstance(event_type, str) and bool(self._by_type.get(event_type))
        )

    def on_resync(self, handler: ResyncHandler) -> Subscription:
        sub = Subscription(RESYNC, handler, None, next(self._seq), self._resync)
        self._resync.append(sub)
        return sub

    def _targets(self, event: Event) -> list[Subscription]:
        typed = EVENT_TYPES.get(event.type)
        if typed is not None and not isinstance(event, typed):
            # A known type that failed validation (parse_event logged it): handlers of that type
            # were promised the typed model, so only "*" handlers see the raw event.
            candidates = list(self._by_type.get(ALL_EVENTS, []))
        else:
            candidates = self._by_type.get(event.type, []) + self._by_type.get(ALL_EVENTS, [])
        if not candidates:
            return []
        candidates.sort(key=lambda s: s._seq)
        channel_id = event_channel_id(event)
        return [s for s in candidates if s.channel_id is None or s.channel_id == channel_id]

    async def dispatch(self, event: Event) -> None:
        # Iterate over a snapshot: handlers commonly subscribe or cancel while being called.
        for sub in self._targets(event):
            if sub.active:
                await call_handler(sub.handler, event.type, event)

    async def resync(self, channels: list[Channel], reconnected: bool) -> None:
        for sub in list(self._resync):
            if sub.active:
                # Each handler gets its own list, so one handler mutating it cannot affect another.
                await call_handler(sub.handler, RESYNC, list(channels), reconnected)
