"""Web chats at run time: each chat a task on the ACD's router (channel `chat`: the same queues,
priorities, skills and strategies as calls; an agent holds chats up to its chat capacity), its
record and transcript in SQL (`store.chats`), its messages pushed to whoever listens (websockets).

One lock per chat orders what happens to it: a message, an answer, a close are each stored before
the next is taken, so the transcript's order is the order things happened. The router is told
first (it decides who holds the chat), the record written next; after a crash in between, `start`
makes the record agree with the router's saved state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from ivrpowers.acd import AcdError, Router, Task
from ivrpowers.chats.desk import ChatDesk
from ivrpowers.chats.live import Listener, Live
from ivrpowers.chats.schemas import MAX_MESSAGES, MAX_OPEN_PER_QUEUE, MAX_SOCKETS
from ivrpowers.flows.services import QueueRefused
from ivrpowers.store.chats import Chat, ChatRepository, ChatStatus, Message, Sender, status_fields

log = logging.getLogger("ivrpowers.chats")

# How a chat the router sent away is closed, and what its transcript says.
_SENT_AWAY = {"timeout": "No agent could take the chat in time.", "no_agents": "No agent is available."}
_NO_DIGEST = hashlib.sha256(b"no such chat").hexdigest()


class ChatAcd(Protocol):
    """What chats need of the ACD (`calls.acd_service.AcdService`)."""

    @property
    def router(self) -> Router: ...

    def submit(self, task: Task, desk: ChatDesk) -> None: ...

    def attach(self, task_id: str, desk: ChatDesk) -> None: ...

    def answered(self, task_id: str, agent_id: str) -> bool: ...

    def not_answered(self, task_id: str, agent_id: str, declined: bool) -> None: ...

    def end(self, task_id: str, reason: str) -> None: ...

    def chat_idle_timeout(self, queue: str) -> float | None: ...


class ChatError(Exception):
    """`kind`: `not_found`, `conflict` (closed, not this agent's, no such offer), `refused` (with
    `reason`: unknown_queue, not_chat, invalid, no_agents) or `full` (a limit reached)."""

    def __init__(self, kind: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.reason = kind, reason


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ChatService:
    def __init__(self, repo: ChatRepository, acd: ChatAcd, clock: Callable[[], float] = time.time,
                 idle_check: float = 5.0) -> None:
        self.repo, self.acd, self.clock = repo, acd, clock
        self.live: dict[str, Live] = {}  # open chats
        self.desk = ChatDesk(lambda chat_id: chat_id in self.live, self._sent_away, self._stray)
        self._tasks: set[asyncio.Task[None]] = set()
        self.idle_check = idle_check  # seconds between two looks for silent chats
        self._idle_task: asyncio.Task[None] | None = None

    # -- life -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Take back the open chats: each keeps its place (or its agent) as the router saved it."""
        for chat in await self.repo.open_chats():
            self.live[chat.id] = Live(chat, last_line=chat.created_at.timestamp())
        for chat_id, (count, last) in (await self.repo.message_counts(list(self.live))).items():
            self.live[chat_id].messages, self.live[chat_id].last_line = count, last.timestamp()
        router = self.acd.router
        known = set(router.task_ids())
        for live in list(self.live.values()):
            await self._restore(live, live.chat.id in known)
        for task_id in known - set(self.live):  # closed here, the router's save came before
            task = router.task(task_id)
            if task.task.channel == "chat":
                self.acd.end(task_id, "conversation_ended" if task.status == "active" else "left")
        self._idle_task = asyncio.create_task(self._idle_watch(), name="chats-idle")

    async def close(self) -> None:
        if self._idle_task is not None:
            self._idle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_task
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for live in self.live.values():
            live.hang_up()

    async def _restore(self, live: Live, known: bool) -> None:
        chat, router = live.chat, self.acd.router
        if not known:  # the router's last save came before it: it joins again, at its place
            if chat.status == "active":
                await self._change(live, "waiting", "The agent was disconnected; waiting for an agent again.")
            try:
                self.acd.submit(self._task(live.chat), self.desk)
            except (QueueRefused, AcdError) as exc:
                outcome = exc.reason if isinstance(exc, QueueRefused) and exc.reason == "no_agents" else "failed"
                self._sent_away(chat.id, outcome)
            return
        task = router.task(chat.id)
        self.acd.attach(chat.id, self.desk)
        for agent_id, expires in task.offers:  # ringing when the controller stopped: still offered
            if not self.desk.offered(chat.id, agent_id):
                self.desk.ring(chat.id, agent_id, expires)
        if task.status == "active" and (chat.status != "active" or chat.agent_id != task.agent):
            # Answered a moment before the crash, not yet written.
            await self._change(live, "active", "An agent joined the chat.", agent_id=task.agent)
        elif task.status != "active" and chat.status == "active" and chat.agent_id is not None:
            # Written as answered, the router's save came before: answer it again if it can be.
            if self.acd.answered(chat.id, chat.agent_id):
                self.desk.taken(chat.id, chat.agent_id)
            else:
                await self._change(live, "waiting", "The agent was disconnected; waiting for an agent again.")

    # -- customers ------------------------------------------------------------------------------
    async def create(self, customer_name: str, queue: str, message: str, skills: dict[str, int] | None = None,
                     priority: int = 0) -> tuple[Chat, str]:
        """A new chat in `queue` with the customer's first message: (the chat, the customer's token)."""
        if sum(1 for live in self.live.values() if live.chat.queue == queue) >= MAX_OPEN_PER_QUEUE:
            raise ChatError("full", f"queue {queue!r} has {MAX_OPEN_PER_QUEUE} open chats: try again later")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        chat = Chat(id=f"chat-{uuid.uuid4().hex}", queue=queue, customer_name=customer_name,
                    token_digest=token_digest(token), created_at=datetime.fromtimestamp(now, UTC),
                    skills=dict(skills or {}), priority=priority)
        try:
            task = self._task(chat)
        except AcdError as exc:  # what the body's schema lets through, the router's rules may not
            raise ChatError("refused", str(exc), "invalid") from None
        await self.repo.create(chat, message)
        live = self.live[chat.id] = Live(chat, messages=1, last_line=now)
        try:
            self.acd.submit(task, self.desk)
        except (QueueRefused, AcdError) as exc:
            del self.live[chat.id]
            self.desk.forget(chat.id)
            await self.repo.delete(chat.id)
            reason = exc.reason if isinstance(exc, QueueRefused) else "not_chat"
            raise ChatError("refused", str(exc), reason) from None
        return live.chat, token

    async def leave(self, chat_id: str) -> Chat:
        """The customer is gone: a waiting chat leaves its queue, an answered one is over."""
        live = await self._open(chat_id)
        async with live.lock:
            self._still_open(live)
            answered = live.chat.status == "active"
            self.acd.end(chat_id, "conversation_ended" if answered else "left")
            await self._close(live, "handled" if answered else "left", "The customer left the chat.")
        return live.chat

    # -- agents ---------------------------------------------------------------------------------
    async def accept(self, chat_id: str, agent_id: str) -> Chat:
        live = await self._open(chat_id)
        async with live.lock:
            self._still_open(live)
            if not self.acd.answered(chat_id, agent_id):
                raise ChatError("conflict", f"chat {chat_id} is not being offered to {agent_id} (taken, "
                                            "withdrawn or never offered)")
            self.desk.taken(chat_id, agent_id)
            await self._change(live, "active", "An agent joined the chat.", agent_id=agent_id)
        return live.chat

    async def decline(self, chat_id: str, agent_id: str) -> None:
        live = await self._open(chat_id)
        async with live.lock:
            if not self.desk.offered(chat_id, agent_id):
                raise ChatError("conflict", f"chat {chat_id} is not being offered to {agent_id}")
            self.desk.taken(chat_id, agent_id)
            self.acd.not_answered(chat_id, agent_id, declined=True)

    async def close_by_agent(self, chat_id: str, agent_id: str) -> Chat:
        live = await self._open(chat_id)
        async with live.lock:
            self._holder(live, agent_id)
            self.acd.end(chat_id, "conversation_ended")
            await self._close(live, "handled", "The agent closed the chat.", agent_id=agent_id)
        return live.chat

    def agent_chats(self, agent_id: str) -> dict[str, Any]:
        """The chats offered to the agent now, and those it holds. Raises ChatError for an unknown agent."""
        try:
            self.acd.router.agent(agent_id)
        except AcdError:
            raise ChatError("not_found", f"there is no agent {agent_id!r}") from None
        offered = [self.view(self.live[chat_id].chat) for chat_id in self.desk.offered_to(agent_id)
                   if chat_id in self.live]
        active = [self.view(live.chat) for live in self.live.values()
                  if live.chat.status == "active" and live.chat.agent_id == agent_id]
        return {"agent": agent_id, "offered": offered, "active": active}

    # -- both -----------------------------------------------------------------------------------
    async def post(self, chat_id: str, sender: Sender, text: str, agent_id: str | None = None) -> Message:
        """A message from the customer, or from the agent who holds the chat."""
        live = await self._open(chat_id)
        async with live.lock:
            if sender == "agent":
                self._holder(live, agent_id)
            self._still_open(live)
            if live.messages >= MAX_MESSAGES:
                raise ChatError("full", f"chat {chat_id} has {MAX_MESSAGES} messages, its most")
            message = await self.repo.add_message(chat_id, sender, text, self._now(), agent_id)
            live.messages += 1
            live.last_line, live.warned = message.at.timestamp(), False
            live.push({"type": "message", **message.to_dict()})
        return message

    async def get(self, chat_id: str) -> Chat:
        chat = await self.repo.get(chat_id)
        if chat is None:
            raise ChatError("not_found", f"there is no chat {chat_id!r}")
        return chat

    async def record(self, chat_id: str, after: int = 0) -> tuple[Chat, list[Message]]:
        """The chat and its transcript (the messages after `after`)."""
        return await self.get(chat_id), await self.repo.messages(chat_id, after)

    def view(self, chat: Chat) -> dict[str, Any]:
        """The record as the API shows it, with the offers ringing now (agent -> when each rings out)."""
        offers = self.desk.offers.get(chat.id, {})
        return {**chat.to_dict(), "offers": {agent: _iso(expires) for agent, expires in offers.items()}}

    async def find(self, status: ChatStatus | None, queue: str | None, limit: int) -> list[Chat]:
        statuses: tuple[ChatStatus, ...] = (status,) if status else ("waiting", "active", "closed")
        return await self.repo.find(statuses, queue, limit)

    async def token_matches(self, chat_id: str, token: str) -> bool:
        """Whether `token` is the chat's customer token (compared as digests, in constant time)."""
        live = self.live.get(chat_id)
        chat = live.chat if live is not None else await self.repo.get(chat_id)
        return hmac.compare_digest(token_digest(token), chat.token_digest if chat is not None else _NO_DIGEST)

    def listen(self, chat_id: str) -> Listener | None:
        """What happens to the chat from now on (None: it is closed). Raises ChatError when it has
        as many listeners as it may."""
        live = self.live.get(chat_id)
        if live is None:
            return None
        if len(live.listeners) >= MAX_SOCKETS:
            raise ChatError("full", f"chat {chat_id} has {MAX_SOCKETS} connections open, its most")
        listener = Listener()
        live.listeners.add(listener)
        return listener

    def unlisten(self, chat_id: str, listener: Listener) -> None:
        live = self.live.get(chat_id)
        if live is not None:
            live.listeners.discard(listener)

    async def close_idle(self) -> None:
        """Warn the answered chats about to reach their queue's `chat_idle_timeout` without a line
        (once, `_warning(limit)` before), and close those that reached it."""
        for live in list(self.live.values()):
            limit = self.acd.chat_idle_timeout(live.chat.queue)
            if limit is None or not self._idle(live, limit - _warning(limit)):
                continue
            async with live.lock:  # a line may have come while it waited for the lock: look again
                if self._idle(live, limit):
                    self.acd.end(live.chat.id, "conversation_ended")
                    await self._close(live, "inactive", f"The chat was closed after {_duration(limit)} without a "
                                      "message.", agent_id=live.chat.agent_id)
                elif self._idle(live, limit - _warning(limit)) and not live.warned:
                    note = f"This chat will close in {_duration(_warning(limit))} without a message."
                    # Not a line of the conversation: the silence it warns about goes on being counted.
                    message = await self.repo.add_message(live.chat.id, "system", note, self._now(),
                                                          live.chat.agent_id)
                    live.messages, live.warned = live.messages + 1, True
                    live.push({"type": "message", **message.to_dict()})

    def _idle(self, live: Live, seconds: float) -> bool:
        return live.chat.status == "active" and not live.closing and self.clock() - live.last_line >= seconds

    async def _idle_watch(self) -> None:
        while True:
            await asyncio.sleep(self.idle_check)
            try:
                await self.close_idle()
            except Exception as exc:  # the database away: the next look tries again
                log.warning("chat: closing idle chats failed (%s: %s)", type(exc).__name__, exc)

    # -- the router's side ----------------------------------------------------------------------
    def _sent_away(self, chat_id: str, outcome: str) -> None:
        live = self.live.get(chat_id)
        if live is None or live.closing:
            return
        live.closing = True
        self._spawn(self._close_locked(live, outcome, _SENT_AWAY.get(outcome, "The chat was closed.")))

    def _stray(self, chat_id: str, agent_id: str) -> None:
        # An offer of a chat that is over: end it after the router's current event (not inside it).
        log.warning("chat %s offered to %s but it is closed: ending it", chat_id, agent_id)
        asyncio.get_running_loop().call_soon(self.acd.end, chat_id, "left")

    async def _close_locked(self, live: Live, outcome: str, note: str) -> None:
        async with live.lock:
            if live.chat.status != "closed":
                await self._close(live, outcome, note)

    # -- helpers --------------------------------------------------------------------------------
    async def _open(self, chat_id: str) -> Live:
        live = self.live.get(chat_id)
        if live is None:
            await self.get(chat_id)  # not_found
            raise ChatError("conflict", f"chat {chat_id} is closed")
        return live

    @staticmethod
    def _still_open(live: Live) -> None:
        if live.chat.status == "closed" or live.closing:
            raise ChatError("conflict", f"chat {live.chat.id} is closed")

    @staticmethod
    def _holder(live: Live, agent_id: str | None) -> None:
        if live.chat.status != "active" or live.chat.agent_id != agent_id or live.closing:
            raise ChatError("conflict", f"chat {live.chat.id} is not held by agent {agent_id}")

    async def _change(self, live: Live, status: ChatStatus, note: str, agent_id: str | None = None,
                      outcome: str | None = None) -> None:
        now = self._now()
        message = await self.repo.change(live.chat.id, now, note, status=status, agent_id=agent_id, outcome=outcome)
        live.chat = dataclasses.replace(live.chat, **status_fields(status, now, agent_id, outcome))
        live.messages += 1
        live.last_line, live.warned = now.timestamp(), False
        live.push({"type": "message", **message.to_dict()})
        live.push({"type": "status", "status": status, "outcome": live.chat.outcome, "agent": live.chat.agent_id})

    async def _close(self, live: Live, outcome: str, note: str, agent_id: str | None = None) -> None:
        live.closing = True
        self.desk.forget(live.chat.id)
        try:
            await self._change(live, "closed", note, agent_id=agent_id, outcome=outcome)
        finally:
            self.live.pop(live.chat.id, None)
            live.hang_up()

    @staticmethod
    def _task(chat: Chat) -> Task:
        return Task(chat.id, chat.queue, "chat", arrived=chat.created_at.timestamp(), priority=chat.priority,
                    skills=dict(chat.skills))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("chat: storing a change failed (%s: %s)", type(exc).__name__, exc)


def _warning(limit: float) -> float:
    """How long before an idle chat is closed its participants are warned: a minute, or half a
    short timeout."""
    return min(60.0, limit / 2)


def _duration(seconds: float) -> str:
    if seconds < 60 or seconds % 60:
        return "1 second" if seconds == 1 else f"{seconds:g} seconds"
    return "1 minute" if seconds == 60 else f"{seconds / 60:g} minutes"


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat()
