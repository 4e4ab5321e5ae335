"""The ACD run time's events, statistics, desks and callbacks without Asterisk: what each task and
agent did, told once, saved with the router's state, and replayed after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ivrpowers.acd import Task
from ivrpowers.acd.definitions import AgentDef, QueueDef
from ivrpowers.acd.events import AcdEvent
from ivrpowers.calls.acd_callbacks import Callback
from ivrpowers.calls.acd_service import AcdService
from ivrpowers.flows.services import QueueRefused, QueueRequest
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade

from .test_acd_service import Clock, FakeOffers, session


class Desk:
    def __init__(self) -> None:
        self.rung: list[str] = []
        self.cancelled: list[str] = []
        self.closed_as: list[str] = []

    def ring(self, task_id: str, agent_id: str, expires: float) -> None:
        self.rung.append(agent_id)

    def cancel(self, task_id: str, agent_id: str) -> None:
        self.cancelled.append(agent_id)

    def closed(self, task_id: str, outcome: str) -> None:
        self.closed_as.append(outcome)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'acd.db'}"
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    repo = AcdRepository(database)
    await repo.put_queue(QueueDef(name="sales", channels=["voice", "chat"], wrapup_seconds=5, ring_timeout=10,
                                  max_wait=600, callback_attempts=2, callback_retry=60))
    for agent_id in ("ana", "bo"):
        await repo.put_agent(AgentDef(id=agent_id, name=agent_id, endpoint=f"{agent_id}-phone", queues={"sales": 0}))
    yield database
    await database.close()


async def started(db: Database, clock: Clock) -> tuple[AcdService, FakeOffers, list[AcdEvent]]:
    acd = AcdService(AcdRepository(db), AcdStateRepository(db), "ctl-1", clock=clock)
    offers = FakeOffers()
    acd.offers = offers  # type: ignore[assignment]
    seen: list[AcdEvent] = []
    acd.subscribe(seen.append)
    await acd.start()
    return acd, offers, seen


def kinds(events: list[AcdEvent], task: str | None = None) -> list[tuple[str, Any]]:
    return [(e.kind, e.detail.get("outcome")) for e in events if task is None or e.task == task]


async def test_each_step_of_a_task_is_told_once_with_its_outcome_and_times(db: Database) -> None:
    clock = Clock()
    acd, offers, seen = await started(db, clock)
    acd.agent_event("ana", "login")
    acd.agent_event("bo", "login")
    await acd.join(session("c1"), QueueRequest("sales"))
    first = offers.rung[0][1]
    clock.now += 4
    acd.not_answered("c1", first, declined=False)  # rang out at the phone
    acd.not_answered("c1", first, declined=False)  # told twice: still one event
    second = offers.rung[-1][1]
    clock.now += 2
    assert acd.answered("c1", second)
    clock.now += 30
    acd.end("c1", "caller_hangup")  # answered first: handled, whoever hung up
    assert kinds(seen, "c1") == [("task_joined", None), ("task_offered", None), ("offer_ended", "no_answer"),
                                 ("task_offered", None), ("offer_ended", "answered"), ("task_answered", None),
                                 ("task_ended", "handled")]
    ended = [e for e in seen if e.task == "c1"][-1]
    assert ended.agent == second and ended.detail["wait"] == 6 and ended.detail["talk"] == 30
    rang = [e.detail["ring"] for e in seen if e.kind == "offer_ended"]
    assert rang == [4, 2]
    assert ("agent_state", first) in [(e.kind, e.agent) for e in seen]
    await acd.close()


async def test_abandoned_timed_out_and_turned_away_tasks_end_as_such(db: Database) -> None:
    clock = Clock()
    acd, _, seen = await started(db, clock)
    with pytest.raises(QueueRefused):
        await acd.join(session("c0"), QueueRequest("sales"))  # nobody logged in: never joined, no event
    acd.agent_event("ana", "login")
    acd.agent_event("ana", "pause", "lunch")
    await acd.join(session("c1"), QueueRequest("sales"))
    await acd.join(session("c2"), QueueRequest("sales"))
    clock.now += 12
    acd.end("c1", "caller_hangup")
    clock.now += 600
    acd.tick()  # c2 waited past the queue's max_wait
    assert [(e.task, e.detail["outcome"], e.detail["wait"]) for e in seen if e.kind == "task_ended"] == [
        ("c1", "abandoned", 12), ("c2", "timeout", 612)]
    assert not [e for e in seen if e.task == "c0"]
    await acd.close()


async def test_statistics_and_their_events_come_back_after_a_restart(db: Database) -> None:
    clock = Clock()
    acd, _, _ = await started(db, clock)
    acd.agent_event("ana", "login")
    await acd.join(session("c1"), QueueRequest("sales"))
    clock.now += 3
    acd.answered("c1", "ana")
    await acd.close()
    before = acd.stats.queue("sales", clock.now)

    again, _, _ = await started(db, clock)
    assert again.stats.queue("sales", clock.now) == before
    clock.now += 20
    again.end("c1", "conversation_ended")  # the facts it needs (answered when) came back from the stored events
    ended = again.happenings.unsaved[0]
    assert (ended.kind, ended.detail["outcome"], ended.detail["wait"], ended.detail["talk"]) == (
        "task_ended", "handled", 3, 20)
    await again.close()
    stored = await AcdStateRepository(db).events_since(0)
    assert [e.kind for e in stored if e.task == "c1"] == [
        "task_joined", "task_offered", "offer_ended", "task_answered", "task_ended"]


async def test_a_desk_carries_out_the_offers_of_a_submitted_task_and_one_attached_after_a_restart(
        db: Database) -> None:
    clock = Clock()
    acd, _, seen = await started(db, clock)
    desk = Desk()
    with pytest.raises(QueueRefused) as refused:
        acd.submit(Task("m1", "sales", "chat", arrived=clock.now), desk)
    assert refused.value.reason == "no_agents"
    acd.agent_event("ana", "login")
    acd.submit(Task("m1", "sales", "chat", arrived=clock.now), desk)
    assert desk.rung == ["ana"] and ("task_offered", "chat") in [(e.kind, e.channel) for e in seen]
    acd.not_answered("m1", "ana", declined=True)
    acd.agent_event("bo", "login")
    assert desk.rung == ["ana", "bo"]
    await acd.close()

    again, _, _ = await started(db, clock)  # the offer to bo is still ringing, with nobody to carry it
    again.tick()
    later = Desk()
    again.attach("m1", later)
    assert later.rung == ["bo"]
    again.agent_event("bo", "logout")
    again.agent_event("ana", "logout")
    assert later.closed_as == ["no_agents"]
    await again.close()


class _Never:
    """ARI that never answers: a callback's attempts wait, as a phone that rings."""

    def __getattr__(self, name: str) -> Any:
        async def never(*args: Any, **kwargs: Any) -> None:
            await asyncio.Event().wait()
        return never


def callback_ctx(trunk: str | None = "provider") -> Any:
    settings = SimpleNamespace(outbound_trunk=trunk, number_allowed=lambda n: n.startswith("555"),
                               asterisk_id="ast-test")
    writer = SimpleNamespace(start_call=lambda **kw: None, add_event=lambda *a: None, update_call=lambda *a, **k: None)
    events = SimpleNamespace(expect=lambda *a: None, unexpect=lambda *a: None)
    return SimpleNamespace(settings=settings, client=_Never(), writer=writer, events=events, controller_id="ctl-1")


def caller(call_id: str, number: str, ctx: Any, source: str = "trunk") -> Any:
    return SimpleNamespace(call_id=call_id, ctx=ctx, args=SimpleNamespace(source=source), call=AudioCall(number),
                           channel=SimpleNamespace(caller=SimpleNamespace(number=number, name="Eve")))


class AudioCall:
    def __init__(self, number: str) -> None:
        self.caller_number, self.caller_name = number, "Eve"

    async def video_codec(self) -> str | None:
        return None


async def test_a_callback_goes_only_to_the_callers_own_number_or_an_allowed_one(db: Database) -> None:
    clock = Clock()
    acd, _, _ = await started(db, clock)
    ctx = acd.callbacks.ctx = callback_ctx()
    acd.agent_event("ana", "login")
    acd.agent_event("ana", "pause", "brief")
    for call_id, number, typed, source in (("c1", "600100200", "600999999", "trunk"),
                                           ("c2", "601", "601", "phone")):
        ticket = await acd.join(caller(call_id, number, ctx, source), QueueRequest("sales"))
        with pytest.raises(QueueRefused) as refused:
            await ticket.park(typed)
        assert refused.value.reason == "callback_refused" and acd.router.task(call_id).status == "waiting"
    ticket = await acd.join(caller("c3", "600100200", callback_ctx(trunk=None)), QueueRequest("sales"))
    with pytest.raises(QueueRefused):
        await ticket.park("600100200")  # no outbound trunk at all
    ticket = await acd.join(caller("c3", "600100200", ctx), QueueRequest("sales"))  # as if adopted
    await ticket.park("600100200")  # the caller's own number, from the trunk
    await (await acd.join(caller("c4", "600", ctx), QueueRequest("sales"))).park("5551234")  # allowed
    assert isinstance(acd.desks["c3"], Callback) and isinstance(acd.desks["c4"], Callback)
    assert acd.router.waiting("sales") == ["c1", "c2", "c3", "c4"]  # each kept its place
    await acd.close()


async def test_a_callback_not_reached_is_tried_again_in_its_place_then_given_up(db: Database) -> None:
    clock = Clock()
    acd, _, seen = await started(db, clock)
    ctx = acd.callbacks.ctx = callback_ctx()
    acd.agent_event("ana", "login")
    acd.agent_event("ana", "pause", "brief")
    await (await acd.join(caller("c1", "600100200", ctx), QueueRequest("sales"))).park("600100200")
    desk = acd.desks["c1"]
    assert isinstance(desk, Callback)
    await acd.join(caller("c2", "600", ctx), QueueRequest("sales"))
    acd.agent_event("ana", "unpause")
    assert acd.agent_state("ana")["offers"] == ["c1"]  # the callback first: it kept its place
    assert acd.answered("c1", "ana")
    assert acd.callbacks.not_reached("c1")  # attempt 1 of 2: again in 60 s
    assert acd.router.task("c1").status == "parked" and acd.agent_state("ana")["state"] == "wrap_up"
    clock.now += 5
    acd.tick()  # wrap-up over: c2 rings ana; the callback waits for its retry
    assert acd.agent_state("ana")["offers"] == ["c2"]
    acd.end("c2", "caller_hangup")
    assert desk._tasks  # its attempt, still dialing (this client never answers)
    await acd.close()
    assert not desk._tasks  # stopped with the controller, not left pending

    again, _, seen = await started(db, clock)  # its retry time and number came back
    again.callbacks.ctx = ctx
    again.callbacks.restore()
    assert isinstance(again.desks["c1"], Callback) and again.callbacks.resumes["c1"] == 1_000_060.0
    clock.now += 60
    again.tick()
    assert again.agent_state("ana")["offers"] == ["c1"]
    assert again.answered("c1", "ana")
    assert not again.callbacks.not_reached("c1")  # its last attempt: it ends
    assert "c1" not in again.router.task_ids()
    ended = [e for e in seen if e.kind == "task_ended"]
    assert [(e.task, e.detail["outcome"]) for e in ended] == [("c1", "failed")]
    for desk in list(again.desks.values()):
        for task in getattr(desk, "_tasks", ()):
            task.cancel()
    await again.close()


async def test_an_agent_made_while_running_in_no_queue_has_its_state_in_the_figures(db: Database) -> None:
    """A supervisor in no queue, made after the start: its /agent page learns its state from the
    snapshot (it showed nothing, and Ready seemed to do nothing)."""
    clock = Clock()
    acd, _, _ = await started(db, clock)
    await AcdRepository(db).put_agent(AgentDef(id="boss", name="Boss", endpoint="boss-browser", supervisor=True))
    await acd.reload()
    assert acd.stats.agents(clock())["boss"]["state"] == "logged_out"
    acd.agent_event("boss", "login")
    assert acd.stats.agents(clock())["boss"]["state"] == "available"
    await acd.close()
