"""Random ACD event streams against the statistics: a model makes well-formed streams (calls join,
are answered, parked, abandoned, time out...; agents wrap up; days change) and notes, for each
event, what it must add to which queue's figures. After every step, for every queue, the day's and
the window's figures must be the model's notes summed over the day and over the last `window`
seconds of it, the live figures the model's, and the figures consistent among themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ivrpowers.acd.events import TASK_OUTCOMES, AcdEvent
from ivrpowers.acd.stats import Stats

QUEUES = {"q0": 10.0, "q1": 30.0}
MEMBERS = {"q0": ["a0", "a1"], "q1": ["a1", "a2"]}
AGENTS = ("a0", "a1", "a2")
WINDOW = 300.0
DAY = 86400.0
WAIT_FIELDS = {"abandoned": "abandoned", "timeout": "timeouts", "left": "left", "no_agents": "no_agents",
               "failed": "failed"}
COUNTS = ("offered", "waits_ended", "answered", "answered_in_sla", "abandoned", "timeouts", "left", "no_agents",
          "failed", "callbacks", "handled")


@dataclass
class Call:
    queue: str
    joined: float
    status: str = "waiting"  # waiting, talking, parked, parked_talking
    agent: str | None = None
    seen: float = 0.0


@dataclass
class Model:
    stats: Stats
    now: float = 10 * DAY
    day: float = 10 * DAY
    calls: dict[str, Call] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=lambda: dict.fromkeys(AGENTS, "available"))
    since: dict[str, float] = field(default_factory=dict)
    last_queue: dict[str, str] = field(default_factory=dict)
    notes: list[tuple[float, str, str, int]] = field(default_factory=list)  # at, queue, field, value
    made: int = 0

    def emit(self, kind: Any, queue: str | None = None, task: str | None = None, agent: str | None = None,
             **detail: Any) -> None:
        self.stats.feed(AcdEvent(kind, self.now, queue=queue, task=task, agent=agent, detail=detail))
        if task in self.calls:
            self.calls[task].seen = self.now

    def note(self, queue: str, *entries: tuple[str, float]) -> None:
        for name, value in entries:
            self.notes.append((self.now, queue, name, round(value * 1000) if name in ("answer_wait", "abandon_wait",
                                                                                       "talk", "wrap_up") else
                               int(value)))

    def set_state(self, agent: str, new: str) -> None:
        old = self.states[agent]
        if old == "wrap_up" and new != "wrap_up" and agent in self.last_queue:
            self.note(self.last_queue[agent], ("wrap_up", self.now - self.since[agent]))
        self.emit("agent_state", agent=agent, old=old, new=new, reason=None)
        if new != old:
            self.since[agent] = self.now
        self.states[agent] = new

    # -- steps --------------------------------------------------------------------------------
    def join(self, queue: str) -> None:
        self.made += 1
        task = f"t{self.made}"
        self.calls[task] = Call(queue, self.now, seen=self.now)
        self.emit("task_joined", queue, task, priority=0)
        self.note(queue, ("offered", 1))

    def answer(self, task: str, agent: str) -> None:
        call = self.calls[task]
        self.emit("task_offered", call.queue, task, agent, expires=self.now + 20)
        self.emit("offer_ended", call.queue, task, agent, outcome="answered", ring=0)
        wait = self.now - call.joined
        self.emit("task_answered", call.queue, task, agent, wait=wait)
        if call.status == "waiting":
            self.note(call.queue, ("answered", 1), ("waits_ended", 1), ("answer_wait", wait),
                      ("answered_in_sla", wait <= QUEUES[call.queue]))
        call.status, call.agent = ("talking" if call.status == "waiting" else "parked_talking"), agent
        self.last_queue[agent] = call.queue
        self.set_state(agent, "busy")

    def decline(self, task: str, agent: str) -> None:
        call = self.calls[task]
        self.emit("task_offered", call.queue, task, agent, expires=self.now + 20)
        self.emit("offer_ended", call.queue, task, agent, outcome="declined", ring=1)

    def park(self, task: str) -> None:
        call = self.calls[task]
        self.emit("task_parked", call.queue, task, wait=self.now - call.joined)
        self.note(call.queue, ("callbacks", 1), ("waits_ended", 1))
        call.status = "parked"

    def end(self, task: str, outcome: str) -> None:
        call = self.calls.pop(task)
        if call.status in ("talking", "parked_talking"):
            assert call.agent is not None
            talk = self.now - self.since[call.agent]
            self.emit("task_ended", call.queue, task, call.agent, outcome="handled", talk=talk)
            self.note(call.queue, ("handled", 1), ("talk", talk))
            self.set_state(call.agent, "wrap_up")
            return
        wait = self.now - call.joined
        self.emit("task_ended", call.queue, task, outcome=outcome, wait=wait)
        if call.status == "waiting":
            extra = (("abandon_wait", wait),) if outcome == "abandoned" else ()
            self.note(call.queue, (WAIT_FIELDS[outcome], 1), ("waits_ended", 1), *extra)

    def new_day(self) -> None:
        self.day = self.now = self.day + DAY
        self.stats.new_day(self.day)
        # A task without news for a day is taken as lost (an event that never came): forgotten.
        self.calls = {t: c for t, c in self.calls.items() if c.seen >= self.day - DAY}
        for call in self.calls.values():
            self.note(call.queue, ("offered", 1))

    # -- checks -------------------------------------------------------------------------------
    def check(self) -> None:
        for queue in QUEUES:
            got = self.stats.queue(queue, self.now)
            for period, start in (("day", self.day), ("window", max(self.day, self.now - WINDOW))):
                notes = [(name, value) for at, q, name, value in self.notes if q == queue and at >= start]
                figures = got[period]
                sums = {name: sum(v for n, v in notes if n == name) for name in {*COUNTS, "talk", "wrap_up"}}
                assert {k: figures[k] for k in COUNTS} == {k: sums[k] for k in COUNTS}, period
                assert (figures["talk_time"], figures["wrap_up_time"]) == (sums["talk"] / 1000,
                                                                          sums["wrap_up"] / 1000), period
                abandons = [v for n, v in notes if n == "abandon_wait"]
                assert figures["abandoned_wait_max"] == (max(abandons) / 1000 if sums["abandoned"] else None)
                wait_ends = sum(figures[k] for k in ("answered", "abandoned", "timeouts", "left", "no_agents",
                                                     "failed", "callbacks"))
                assert figures["waits_ended"] == wait_ends and figures["answered_in_sla"] <= figures["answered"]
                for ratio in ("service_level", "abandon_rate"):
                    assert figures[ratio] is None or 0 <= figures[ratio] <= 1
            day, window = got["day"], got["window"]
            assert day["waits_ended"] <= day["offered"] and day["handled"] <= day["offered"]
            assert all(window[k] <= day[k] for k in COUNTS)
            calls = [c for c in self.calls.values() if c.queue == queue]
            waiting = [c.joined for c in calls if c.status == "waiting"]
            assert (got["waiting"], got["callbacks_waiting"], got["talking"]) == (
                len(waiting), sum(c.status == "parked" for c in calls),
                sum(c.status in ("talking", "parked_talking") for c in calls))
            assert got["longest_wait"] == (self.now - min(waiting) if waiting else 0.0)
            states = [self.states[a] for a in MEMBERS[queue]]
            assert {s: n for s, n in got["agents"].items() if n} == {s: states.count(s) for s in set(states)}


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_figures_are_the_sum_of_what_happened_in_their_period(data: st.DataObject) -> None:
    stats = Stats(window=WINDOW)
    stats.configure(sla=QUEUES, members=MEMBERS)
    model = Model(stats)
    stats.new_day(model.day)
    for agent in AGENTS:
        model.set_state(agent, "available")
    for _ in range(data.draw(st.integers(1, 80))):
        model.now += data.draw(st.sampled_from([0.0, 0.5, 3.0, 17.0, 120.0, 299.5, 300.0, 1000.0]))
        waiting = sorted(t for t, c in model.calls.items() if c.status in ("waiting", "parked"))
        free = [a for a in AGENTS if model.states[a] in ("available", "wrap_up")]
        steps = ["join", "join", "new_day"]
        steps += ["answer", "decline"] * bool(waiting and free) + ["park", "end"] * bool(waiting)
        steps += ["end"] * bool(model.calls) + ["wrap_end"] * any(s == "wrap_up" for s in model.states.values())
        step = data.draw(st.sampled_from(steps))
        if step == "join":
            model.join(data.draw(st.sampled_from(sorted(QUEUES))))
        elif step == "new_day":
            model.new_day()
        elif step in ("answer", "decline"):
            getattr(model, step)(data.draw(st.sampled_from(waiting)), data.draw(st.sampled_from(free)))
        elif step == "park":
            chosen = data.draw(st.sampled_from(waiting))
            if model.calls[chosen].status == "waiting":
                model.park(chosen)
        elif step == "end":
            model.end(data.draw(st.sampled_from(sorted(model.calls))),
                      data.draw(st.sampled_from([o for o in TASK_OUTCOMES if o != "handled"])))
        else:
            model.set_state(data.draw(st.sampled_from([a for a in AGENTS if model.states[a] == "wrap_up"])),
                            "available")
        model.check()
