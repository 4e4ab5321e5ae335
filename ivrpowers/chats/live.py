"""An open chat in memory (`Live`) and one connection following it (`Listener`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ivrpowers.store.chats import Chat

# Events a listener may fall behind by before it is cut off (it reconnects and asks for what it
# missed, `after` the last message it has): a stalled socket must not hold the chat's memory.
BACKLOG = 256


class Listener:
    """Events (`{"type": "message" | "status", ...}`) in order; None: the end (the chat is closed,
    or this listener fell too far behind)."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.ended = False

    def push(self, event: dict[str, Any]) -> None:
        if self.ended:
            return
        if self.events.qsize() >= BACKLOG:
            self.end()
            return
        self.events.put_nowait(event)

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.events.put_nowait(None)

    async def next(self) -> dict[str, Any] | None:
        return await self.events.get()


@dataclass(eq=False)
class Live:
    chat: Chat  # the record as it is now
    messages: int = 0  # lines in its transcript
    last_line: float = 0.0  # when its last line was written (epoch seconds): idle since then
    warned: bool = False  # told it will be closed if it stays silent (since its last line)
    closing: bool = False  # the router sent it away: its close is being stored
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    listeners: set[Listener] = field(default_factory=set)

    def push(self, event: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener.push(event)
            if listener.ended:
                self.listeners.discard(listener)

    def hang_up(self) -> None:
        for listener in self.listeners:
            listener.end()
        self.listeners.clear()
