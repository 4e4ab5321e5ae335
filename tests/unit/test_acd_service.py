"""The ACD at run time without Asterisk: the router fed by joins, answers and agent actions, its
decisions turned into ticket updates and offers, its state saved and restored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ivrpowers.acd.definitions import AgentDef, QueueDef
from ivrpowers.calls.acd_service import AcdService, Ticket
from ivrpowers.flows.services import QueueRefused, QueueRequest
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeOffers:
    def __init__(self) -> None:
        self.rung: list[tuple[str, str]] = []
        self.cancelled: list[tuple[str, str]] = []

    def ring(self, ticket: Ticket, agent_id: str, expires: float) -> None:
        self.rung.append((ticket.task_id, agent_id))

    def cancel(self, task_id: str, agent_id: str) -> None:
        self.cancelled.append((task_id, agent_id))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'acd.db'}"
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    repo = AcdRepository(database)
    await repo.put_queue(QueueDef(name="sales", wrapup_seconds=5, ring_timeout=10))
    for agent_id in ("ana", "bo"):
        await repo.put_agent(AgentDef(id=agent_id, name=agent_id, endpoint=f"{agent_id}-phone", queues={"sales": 0}))
    yield database
    await database.close()


async def service(db: Database, clock: Clock) -> tuple[AcdService, FakeOffers]:
    acd = AcdService(AcdRepository(db), AcdStateRepository(db), "ctl-1", clock=clock)
    offers = FakeOffers()
    acd.offers = offers  # type: ignore[assignment]
    await acd.start()
    return acd, offers


class AudioCall:
    """What the service asks of a call: an audio-only caller."""

    caller_number, caller_name = "5551234", "Eve"

    async def video_codec(self) -> str | None:
        return None


def session(call_id: str) -> Any:
    return SimpleNamespace(call_id=call_id, call=AudioCall())


async def test_a_call_is_refused_with_nobody_logged_in_then_offered_answered_and_wrapped_up(db: Database) -> None:
    clock = Clock()
    acd, offers = await service(db, clock)
    with pytest.raises(QueueRefused) as refused:
        await acd.join(session("c1"), QueueRequest("sales"))
    assert refused.value.reason == "no_agents"
    with pytest.raises(QueueRefused) as unknown:
        await acd.join(session("c1"), QueueRequest("nowhere"))
    assert unknown.value.reason == "unknown_queue"

    acd.agent_event("ana", "login")
    assert acd.agent_state("ana")["state"] == "available"
    ticket = await acd.join(session("c1"), QueueRequest("sales"))
    assert offers.rung == [("c1", "ana")] and (await ticket.update()).kind == "ringing"
    assert acd.agent_state("ana")["state"] == "reserved"
    assert acd.answered("c1", "ana") and acd.agent_state("ana")["state"] == "busy"
    acd.end("c1", "conversation_ended")
    assert acd.agent_state("ana")["state"] == "wrap_up"
    # A second caller waits through the wrap-up: first in line, then offered once it ends.
    second = await acd.join(session("c2"), QueueRequest("sales"))
    assert (await second.status()).position == 1 and offers.rung == [("c1", "ana")]
    clock.now += 5
    acd.tick()  # what the service's timer does at the wrap-up's end
    assert offers.rung == [("c1", "ana"), ("c2", "ana")]
    await acd.close()


async def test_a_ring_out_moves_the_call_to_the_next_agent_and_pauses_the_first(db: Database) -> None:
    clock = Clock()
    acd, offers = await service(db, clock)
    acd.agent_event("ana", "login")
    acd.agent_event("bo", "login")
    await acd.join(session("c1"), QueueRequest("sales"))
    first = offers.rung[0][1]
    acd.not_answered("c1", first, declined=False)  # the phone stopped ringing by itself
    other = "bo" if first == "ana" else "ana"
    assert offers.rung[-1] == ("c1", other)
    state = acd.agent_state(first)
    assert (state["state"], state["reason"]) == ("paused", "ring_no_answer")
    await acd.close()


async def test_the_state_is_saved_and_a_new_controller_goes_on_from_it(db: Database) -> None:
    clock = Clock()
    acd, _ = await service(db, clock)
    acd.agent_event("ana", "login")
    acd.agent_event("ana", "pause", "lunch")
    await acd.close()  # saves what is pending
    events = await AcdStateRepository(db).agent_events("ana")
    assert [(e.old, e.new, e.reason) for e in reversed(events)] == [
        ("logged_out", "available", None), ("available", "paused", "lunch")]
    again, offers = await service(db, clock)
    state = again.agent_state("ana")
    assert (state["state"], state["reason"]) == ("paused", "lunch")
    again.agent_event("bo", "login")
    await again.join(session("c9"), QueueRequest("sales"))
    assert offers.rung == [("c9", "bo")]  # ana is still paused
    await again.close()


async def test_an_auto_login_agent_is_logged_in_whenever_the_controller_runs(db: Database) -> None:
    repo = AcdRepository(db)
    await repo.put_agent(AgentDef(id="desk", name="Desk", endpoint="desk-phone", queues={"sales": 0},
                                  auto_login=True))
    acd, _ = await service(db, Clock())
    assert acd.agent_state("desk")["state"] == "available" and acd.agent_state("ana")["state"] == "logged_out"
    await acd.close()


async def test_waiting_callers_hear_no_agents_when_the_last_agent_logs_out(db: Database) -> None:
    acd, offers = await service(db, Clock())
    acd.agent_event("ana", "login")
    acd.agent_event("ana", "pause", "meeting")
    ticket = await acd.join(session("c1"), QueueRequest("sales"))
    acd.agent_event("ana", "logout")
    assert (await ticket.update()).kind == "no_agents" and offers.rung == []
    await acd.close()


async def test_an_offer_made_before_its_call_is_adopted_rings_when_the_call_is_back(db: Database) -> None:
    from ivrpowers.acd import Task

    clock = Clock()
    acd, offers = await service(db, clock)
    acd.agent_event("ana", "login")
    # As after a restart: the router knows the task, its call has not joined again yet.
    acd.apply(acd.router.arrive(Task("c7", "sales", "voice", arrived=clock.now), clock.now))
    assert offers.rung == [] and acd.agent_state("ana")["state"] == "reserved"
    ticket = await acd.join(session("c7"), QueueRequest("sales"))
    assert offers.rung == [("c7", "ana")] and ticket.task_id == "c7"
    await acd.close()
