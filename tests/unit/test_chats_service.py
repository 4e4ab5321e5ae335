"""Chats on the ACD's router (`chats.service.ChatService`): offered, accepted, messages both ways,
closed with their transcript; capacity; refusals; limits; a restart from the router's saved state.

The ACD here is `FakeAcd`: the real pure router behind the run time's interface (`submit`, `attach`,
`answered`, `not_answered`, `end`, desks rung, cancelled and closed as `calls.acd_service` does),
without its database or timers; the chats' store is the real one, on SQLite.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ivrpowers.acd import (
    AgentConfig,
    CancelOffer,
    Decision,
    NoAgents,
    Offer,
    QueueConfig,
    Router,
    Snapshot,
    Task,
    TaskTimedOut,
)
from ivrpowers.acd.model import AcdError
from ivrpowers.chats import schemas, service
from ivrpowers.chats.desk import ChatDesk
from ivrpowers.chats.service import ChatError, ChatService
from ivrpowers.flows.services import QueueRefused
from ivrpowers.store.chats import ChatRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade


class Clock:
    """A millisecond passes at every reading: chats created one after the other are ordered."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


class FakeAcd:
    """The run time's side of the ACD, as `calls.acd_service.AcdService` has it, on a real router."""

    def __init__(self, router: Router, clock: Clock) -> None:
        self.router, self.clock = router, clock
        self.desks: dict[str, ChatDesk] = {}
        self.pending: dict[str, dict[str, float]] = {}
        self.ends: list[tuple[str, str]] = []
        self.idle_timeouts: dict[str, float] = {"web": 1800.0}  # the queues' chat_idle_timeout

    def submit(self, task: Task, desk: ChatDesk) -> None:
        if task.queue not in {q.name for q in self.router.queues}:
            raise QueueRefused("unknown_queue", f"there is no queue named {task.queue!r}")
        decisions = self.router.arrive(task, self.clock())
        if any(isinstance(d, NoAgents) and d.task == task.id for d in decisions):
            self._apply([d for d in decisions if not isinstance(d, NoAgents)])
            raise QueueRefused("no_agents", f"nobody is logged in to queue {task.queue!r}")
        self.desks[task.id] = desk
        self._apply(decisions)

    def attach(self, task_id: str, desk: ChatDesk) -> None:
        self.desks[task_id] = desk
        for agent_id, expires in self.pending.pop(task_id, {}).items():
            desk.ring(task_id, agent_id, expires)

    def answered(self, task_id: str, agent_id: str) -> bool:
        try:
            self._apply(self.router.answer(task_id, agent_id, self.clock()))
        except AcdError:
            return False
        return True

    def not_answered(self, task_id: str, agent_id: str, declined: bool) -> None:
        try:
            now = self.clock()
            self._apply(self.router.decline(task_id, agent_id, now) if declined else
                        self.router.offer_timed_out(task_id, agent_id, now))
        except AcdError:
            pass

    def end(self, task_id: str, reason: str) -> None:
        self.ends.append((task_id, reason))
        self.desks.pop(task_id, None)
        self.pending.pop(task_id, None)
        if task_id in self.router.task_ids():
            self._apply(self.router.end_task(task_id, self.clock()))

    def chat_idle_timeout(self, queue: str) -> float | None:
        return self.idle_timeouts.get(queue)

    # what agents and time do
    def login(self, agent_id: str) -> None:
        self._apply(self.router.login(agent_id, self.clock()))

    def logout(self, agent_id: str) -> None:
        self._apply(self.router.logout(agent_id, self.clock()))

    def tick(self) -> None:
        self._apply(self.router.tick(self.clock()))

    def _apply(self, decisions: Sequence[Decision]) -> None:
        for d in decisions:
            if isinstance(d, Offer):
                desk = self.desks.get(d.task)
                if desk is not None:
                    desk.ring(d.task, d.agent, d.expires)
                else:
                    self.pending.setdefault(d.task, {})[d.agent] = d.expires
            elif isinstance(d, CancelOffer):
                self.pending.get(d.task, {}).pop(d.agent, None)
                if (desk := self.desks.get(d.task)) is not None:
                    desk.cancel(d.task, d.agent)
            elif isinstance(d, NoAgents | TaskTimedOut):
                self.pending.pop(d.task, None)
                if (desk := self.desks.pop(d.task, None)) is not None:
                    desk.closed(d.task, "no_agents" if isinstance(d, NoAgents) else "timeout")


def make_router(strategy: Any = "linear", capacity: int = 2, max_wait: float | None = None) -> Router:
    return Router(
        queues=[QueueConfig("web", strategy=strategy, channels=frozenset({"chat"}), max_wait=max_wait),
                QueueConfig("phones", channels=frozenset({"voice"}))],
        agents=[AgentConfig("ana", queues={"web": 0, "phones": 0}, capacity={"chat": capacity}),
                AgentConfig("bo", queues={"web": 1}, capacity={"chat": capacity})])


class Setup:
    def __init__(self, db: Database, router: Router) -> None:
        self.db, self.clock = db, Clock()
        self.repo = ChatRepository(db)
        self.acd = FakeAcd(router, self.clock)
        self.chats = ChatService(self.repo, self.acd, clock=self.clock)

    async def restarted(self) -> Setup:
        """A new controller on the same database, with the router as its last save left it."""
        await self.chats.close()
        again = Setup(self.db, Router.restore(Snapshot.from_dict(self.acd.router.snapshot().to_dict())))
        again.clock.now = self.clock.now
        await again.chats.start()
        return again


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chats.db'}"
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    yield database
    await database.close()


@pytest.fixture
async def setup(db: Database) -> AsyncIterator[Setup]:
    made = Setup(db, make_router())
    await made.chats.start()
    yield made
    await made.chats.close()


def lines(messages: Sequence[Any]) -> list[tuple[str, str | None, str]]:
    return [(m.sender, m.agent_id, m.text) for m in messages]


async def test_a_chat_is_offered_accepted_written_both_ways_and_closed_with_its_transcript(setup: Setup) -> None:
    chats, acd = setup.chats, setup.acd
    acd.login("ana")
    chat, token = await chats.create("Lucía", "web", "Hola, my order is late", {}, 0)
    assert chat.status == "waiting"
    assert chats.desk.offered_to("ana") == {chat.id: pytest.approx(setup.clock.now + 20, abs=1)}
    assert [c["id"] for c in chats.agent_chats("ana")["offered"]] == [chat.id]
    listener = chats.listen(chat.id)
    assert listener is not None

    accepted = await chats.accept(chat.id, "ana")
    assert (accepted.status, accepted.agent_id) == ("active", "ana")
    assert acd.router.task(chat.id).status == "active" and acd.router.agent("ana").active == (chat.id,)
    await chats.post(chat.id, "agent", "Let me look", "ana")
    await chats.post(chat.id, "customer", "Thanks")
    closed = await chats.close_by_agent(chat.id, "ana")
    assert (closed.status, closed.outcome) == ("closed", "handled")
    assert chat.id not in acd.router.task_ids() and acd.router.agent("ana").active == ()

    record, transcript = await chats.record(chat.id)
    assert (record.status, record.outcome, record.agent_id) == ("closed", "handled", "ana")
    assert record.answered_at is not None and record.closed_at is not None
    assert lines(transcript) == [("customer", None, "Hola, my order is late"),
                                 ("system", "ana", "An agent joined the chat."),
                                 ("agent", "ana", "Let me look"), ("customer", None, "Thanks"),
                                 ("system", "ana", "The agent closed the chat.")]
    # What a follower saw, in order, then the end.
    seen = []
    while (event := await listener.next()) is not None:
        seen.append((event["type"], event.get("text") or event.get("status")))
    assert seen == [("message", "An agent joined the chat."), ("status", "active"), ("message", "Let me look"),
                    ("message", "Thanks"), ("message", "The agent closed the chat."), ("status", "closed")]
    assert chats.listen(chat.id) is None  # closed: nothing more to follow
    # Only the token's digest is stored, and it is the token's.
    assert record.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert await chats.token_matches(chat.id, token) and not await chats.token_matches(chat.id, token[:-1])


async def test_chats_stack_up_to_the_agents_chat_capacity_and_the_next_waits_for_a_free_place(
    setup: Setup,
) -> None:
    chats, acd = setup.chats, setup.acd
    acd.login("ana")  # capacity 2; bo stays logged out
    first, _ = await chats.create("A", "web", "one")
    await chats.accept(first.id, "ana")
    second, _ = await chats.create("B", "web", "two")
    assert chats.desk.offered(second.id, "ana")
    await chats.accept(second.id, "ana")
    third, _ = await chats.create("C", "web", "three")
    assert acd.router.waiting("web") == [third.id] and chats.desk.offered_to("ana") == {}
    assert sorted(c["id"] for c in chats.agent_chats("ana")["active"]) == sorted([first.id, second.id])

    await chats.close_by_agent(first.id, "ana")
    assert chats.desk.offered_to("ana") == {third.id: pytest.approx(setup.clock.now + 20, abs=1)}
    await chats.accept(third.id, "ana")
    assert set(acd.router.agent("ana").active) == {second.id, third.id}


async def test_a_declined_chat_goes_to_the_next_agent_and_the_decliner_cannot_take_it(setup: Setup) -> None:
    chats, acd = setup.chats, setup.acd
    acd.login("ana")
    acd.login("bo")
    chat, _ = await chats.create("A", "web", "hi")
    assert chats.desk.offers[chat.id].keys() == {"ana"}  # linear: penalty 0 first
    await chats.decline(chat.id, "ana")
    assert chats.desk.offers[chat.id].keys() == {"bo"}
    with pytest.raises(ChatError) as refused:
        await chats.accept(chat.id, "ana")
    assert refused.value.kind == "conflict"
    with pytest.raises(ChatError):
        await chats.decline(chat.id, "ana")  # no longer offered to ana
    assert (await chats.accept(chat.id, "bo")).agent_id == "bo"


async def test_an_offer_nobody_accepts_rings_out_to_the_next_agent(setup: Setup) -> None:
    chats, acd = setup.chats, setup.acd
    acd.login("ana")
    acd.login("bo")
    chat, _ = await chats.create("A", "web", "hi")
    assert chats.agent_chats("ana")["offered"][0]["id"] == chat.id
    setup.clock.now += 21  # the queue's ring timeout is 20 s
    acd.tick()
    assert chats.agent_chats("ana")["offered"] == [] and chats.desk.offers[chat.id].keys() == {"bo"}
    assert acd.router.agent("ana").state == "paused"  # rna_pause
    with pytest.raises(ChatError):
        await chats.accept(chat.id, "ana")
    assert (await chats.accept(chat.id, "bo")).agent_id == "bo"


@pytest.mark.parametrize(("queue", "login", "reason"), [
    ("nowhere", True, "unknown_queue"), ("phones", True, "not_chat"), ("web", False, "no_agents"),
])
async def test_a_chat_its_queue_refuses_is_not_kept(setup: Setup, queue: str, login: bool, reason: str) -> None:
    if login:
        setup.acd.login("ana")
    with pytest.raises(ChatError) as refused:
        await setup.chats.create("A", queue, "hi")
    assert (refused.value.kind, refused.value.reason) == ("refused", reason)
    assert await setup.repo.find(("waiting", "active", "closed")) == [] and setup.chats.live == {}


async def test_a_customer_who_leaves_ends_the_chat_waiting_or_answered(setup: Setup) -> None:
    chats, acd = setup.chats, setup.acd
    acd.login("ana")
    waiting, _ = await chats.create("A", "web", "hi")
    assert chats.desk.offered(waiting.id, "ana")
    assert (await chats.leave(waiting.id)).outcome == "left"
    assert waiting.id not in acd.router.task_ids() and chats.desk.offered_to("ana") == {}
    assert acd.ends == [(waiting.id, "left")]
    talking, _ = await chats.create("B", "web", "hi")
    await chats.accept(talking.id, "ana")
    assert (await chats.leave(talking.id)).outcome == "handled"
    assert acd.ends[-1] == (talking.id, "conversation_ended") and acd.router.agent("ana").active == ()
    with pytest.raises(ChatError) as closed:
        await chats.post(talking.id, "customer", "still there?")
    assert closed.value.kind == "conflict"


async def test_a_chat_nobody_takes_in_max_wait_is_closed_as_timed_out(db: Database) -> None:
    made = Setup(db, make_router(max_wait=60))
    await made.chats.start()
    made.acd.login("ana")
    made.acd.router.pause("ana", "lunch", made.clock.now)
    chat, _ = await made.chats.create("A", "web", "anyone?")
    listener = made.chats.listen(chat.id)
    assert listener is not None
    made.clock.now += 61
    made.acd.tick()
    events = []
    while (event := await listener.next()) is not None:
        events.append(event)
    assert events[-1] == {"type": "status", "status": "closed", "outcome": "timeout", "agent": None}
    record, transcript = await made.chats.record(chat.id)
    assert (record.status, record.outcome) == ("closed", "timeout")
    assert transcript[-1].text == "No agent could take the chat in time."
    await made.chats.close()


async def test_the_last_agent_logging_out_sends_waiting_chats_away(setup: Setup) -> None:
    setup.acd.login("ana")
    chat, _ = await setup.chats.create("A", "web", "hi")
    setup.acd.logout("ana")
    await setup.chats.close()  # waits for the close being stored
    assert (await setup.chats.get(chat.id)).outcome == "no_agents"


async def test_only_the_agent_holding_a_chat_writes_in_it_and_closes_it(setup: Setup) -> None:
    chats, acd = setup.chats, setup.acd
    acd.login("ana")
    chat, _ = await chats.create("A", "web", "hi")
    for attempt in (chats.post(chat.id, "agent", "me first", "ana"), chats.close_by_agent(chat.id, "ana")):
        with pytest.raises(ChatError) as refused:
            await attempt  # offered, not accepted
        assert refused.value.kind == "conflict"
    await chats.accept(chat.id, "ana")
    with pytest.raises(ChatError):
        await chats.post(chat.id, "agent", "me too", "bo")
    with pytest.raises(ChatError) as unknown:
        await chats.post("chat-" + "0" * 32, "customer", "hello?")
    assert unknown.value.kind == "not_found"


async def test_limits_messages_per_chat_and_open_chats_per_queue(setup: Setup,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "MAX_MESSAGES", 3)
    monkeypatch.setattr(service, "MAX_OPEN_PER_QUEUE", 2)
    monkeypatch.setattr(service, "MAX_SOCKETS", 1)
    setup.acd.login("ana")
    chat, _ = await setup.chats.create("A", "web", "1")
    await setup.chats.post(chat.id, "customer", "2")
    await setup.chats.post(chat.id, "customer", "3")
    with pytest.raises(ChatError) as full:
        await setup.chats.post(chat.id, "customer", "4")
    assert full.value.kind == "full"
    await setup.chats.create("B", "web", "1")
    with pytest.raises(ChatError) as queue_full:
        await setup.chats.create("C", "web", "1")
    assert queue_full.value.kind == "full"
    assert setup.chats.listen(chat.id) is not None
    with pytest.raises(ChatError):
        setup.chats.listen(chat.id)
    assert schemas.MAX_MESSAGES == 1000  # the module's own limits are untouched


async def test_after_a_restart_open_chats_keep_their_agent_their_offer_and_their_place(setup: Setup) -> None:
    chats, acd = setup.chats, setup.acd
    acd.login("ana")  # capacity 2
    active, _ = await chats.create("A", "web", "one")
    await chats.accept(active.id, "ana")
    await chats.post(active.id, "agent", "hello A", "ana")
    ringing, ringing_token = await chats.create("B", "web", "two")
    waiting, _ = await chats.create("C", "web", "three")
    later, _ = await chats.create("D", "web", "four")
    assert acd.router.waiting("web") == [waiting.id, later.id]

    again = await setup.restarted()
    assert set(again.chats.live) == {active.id, ringing.id, waiting.id, later.id}
    assert again.chats.agent_chats("ana")["offered"][0]["id"] == ringing.id  # still offered, still shown
    assert [c["id"] for c in again.chats.agent_chats("ana")["active"]] == [active.id]
    assert again.acd.router.waiting("web") == [waiting.id, later.id]
    assert await again.chats.token_matches(ringing.id, ringing_token)
    # Messages still flow on the active one; the ringing one is accepted; the waiting one comes next.
    await again.chats.post(active.id, "customer", "still here")
    await again.chats.accept(ringing.id, "ana")
    await again.chats.close_by_agent(active.id, "ana")
    assert again.chats.desk.offered_to("ana") == {waiting.id: pytest.approx(again.clock.now + 20, abs=1)}
    _, transcript = await again.chats.record(active.id)
    assert [m.text for m in transcript][-3:] == ["hello A", "still here", "The agent closed the chat."]
    await again.chats.close()


async def test_a_restart_mends_what_the_routers_last_save_missed(setup: Setup) -> None:
    chats, acd = setup.chats, setup.acd
    acd.login("ana")  # capacity 2
    answered, _ = await chats.create("A", "web", "one")
    await chats.accept(answered.id, "ana")
    waiting, _ = await chats.create("W", "web", "two")  # offered to ana
    accepted_unwritten, _ = await chats.create("X", "web", "three")  # waits: ana is full
    gone, _ = await chats.create("C", "web", "four")
    await chats.leave(gone.id)
    await chats.close()

    # The router as a save left it: A and W not in it yet, X answered by bo (that answer's record
    # was never written), C still ringing ana (closed here since).
    router = make_router()
    router.login("bo", setup.clock())
    router.arrive(Task(accepted_unwritten.id, "web", "chat", arrived=accepted_unwritten.created_at.timestamp()),
                  setup.clock())
    router.answer(accepted_unwritten.id, "bo", setup.clock())
    router.login("ana", setup.clock())
    router.arrive(Task(gone.id, "web", "chat", arrived=gone.created_at.timestamp()), setup.clock())
    assert router.task(gone.id).offers[0][0] == "ana"
    again = Setup(setup.db, router)
    again.clock.now = setup.clock.now
    await again.chats.start()
    await again.chats.close()  # the mended records stored

    assert again.acd.ends == [(gone.id, "left")] and gone.id not in router.task_ids()
    record, transcript = await again.chats.record(answered.id)
    assert (record.status, record.agent_id) == ("waiting", None)
    assert transcript[-1].text == "The agent was disconnected; waiting for an agent again."
    assert router.task(answered.id).task.arrived == answered.created_at.timestamp()  # its place kept
    assert again.chats.desk.offers == {answered.id: {"ana": pytest.approx(again.clock.now + 20, abs=1)},
                                       waiting.id: {"bo": pytest.approx(again.clock.now + 20, abs=1)}}
    record, transcript = await again.chats.record(accepted_unwritten.id)
    assert (record.status, record.agent_id, transcript[-1].text) == ("active", "bo", "An agent joined the chat.")
    assert (await again.chats.get(waiting.id)).status == "waiting"


async def test_an_answered_chat_silent_for_the_queues_idle_timeout_is_closed_and_frees_its_agent(
    setup: Setup,
) -> None:
    chats, acd, clock = setup.chats, setup.acd, setup.clock
    acd.idle_timeouts["web"] = 600.0
    acd.login("ana")  # capacity 2
    silent, _ = await chats.create("A", "web", "hi")
    await chats.accept(silent.id, "ana")
    talking, _ = await chats.create("B", "web", "hello")
    await chats.accept(talking.id, "ana")
    waiting, _ = await chats.create("C", "web", "anyone?")  # ana is full: it waits, and is not answered
    listener = chats.listen(silent.id)
    assert listener is not None
    clock.now += 500
    await chats.post(talking.id, "customer", "are you there?")
    clock.now += 39
    await chats.close_idle()
    assert (await chats.record(silent.id))[1][-1].text == "An agent joined the chat."  # 539 s: nothing yet
    clock.now += 2
    await chats.close_idle()
    await chats.close_idle()  # warned once, not at every look
    warnings = [m.text for m in (await chats.record(silent.id))[1] if m.text.startswith("This chat will close")]
    assert warnings == ["This chat will close in 1 minute without a message."]
    clock.now += 58
    await chats.close_idle()
    assert {c.status for c in (await chats.get(silent.id), await chats.get(talking.id))} == {"active"}

    clock.now += 2  # 601 s after the silent chat's last line
    await chats.close_idle()
    record, transcript = await chats.record(silent.id)
    assert (record.status, record.outcome, record.agent_id) == ("closed", "inactive", "ana")
    assert transcript[-1].text == "The chat was closed after 10 minutes without a message."
    assert acd.ends == [(silent.id, "conversation_ended")] and silent.id not in acd.router.task_ids()
    events = []
    while (event := await listener.next()) is not None:
        events.append(event)
    assert events[-1] == {"type": "status", "status": "closed", "outcome": "inactive", "agent": "ana"}
    # The agent's place went to the chat that waited; the one with a recent line goes on.
    assert chats.desk.offered(waiting.id, "ana")
    assert (await chats.get(talking.id)).status == "active" and (await chats.get(waiting.id)).status == "waiting"

    # A line after the warning starts the count again, and a new warning may come.
    clock.now += 450  # the talking chat: 551 s since its last line
    await chats.close_idle()
    await chats.post(talking.id, "customer", "still here")
    clock.now += 545
    await chats.close_idle()
    _, lines_ = await chats.record(talking.id)
    assert [m.text for m in lines_ if m.sender == "system"][-2:] == [
        "This chat will close in 1 minute without a message.", "This chat will close in 1 minute without a message."]
    assert lines_[-2].text == "still here" and (await chats.get(talking.id)).status == "active"

    acd.idle_timeouts.pop("web")  # chat_idle_timeout 0: never
    clock.now += 10_000
    await chats.close_idle()
    assert (await chats.get(talking.id)).status == "active"


async def test_a_restart_counts_the_silence_from_the_last_line_not_from_the_restart(setup: Setup) -> None:
    chats, acd, clock = setup.chats, setup.acd, setup.clock
    acd.idle_timeouts["web"] = 600.0
    acd.login("ana")
    chat, _ = await chats.create("A", "web", "hi")
    await chats.accept(chat.id, "ana")
    clock.now += 300
    await chats.post(chat.id, "agent", "one moment", "ana")  # not the chat's creation: its last line
    clock.now += 400
    again = await setup.restarted()
    again.acd.idle_timeouts["web"] = 600.0
    again.clock.now += 150
    await again.chats.close_idle()
    assert (await again.chats.get(chat.id)).status == "active"
    again.clock.now += 51
    await again.chats.close_idle()
    assert (await again.chats.get(chat.id)).outcome == "inactive"
    await again.chats.close()
