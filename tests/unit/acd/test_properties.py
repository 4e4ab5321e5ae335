"""Random event sequences against the router, checked against a model of what it must hold.

The model (`Model*` below) follows the events and the decisions on its own: who holds what, who is
logged in, paused, wrapping up or unreachable, which tasks wait. After every event it checks, by
brute force over every task and agent: capacities and exclusive channels; one offer at a time
outside ringall; no offer to an agent who may not take it; no task left waiting while an agent
able to take it is free; each offer going to the best waiting task the agent could take (priority,
then arrival); state changes reported once each and adding up to what the agent is doing; the
router's view, and its next deadline, matching the model's. Beside it, a second router gets the
same events and is never restored, while the first is snapshotted (through JSON) and restored at
random: every decision, and every snapshot, must be the same.

A late tick runs its deadlines a due time at a time, each followed by offers, all stamped with the
tick's time. The model cannot see every due time the router went through (a relaxation step says
nothing), only those a decision shows (a ring-out, a wrap-up's end, a max_wait): it keeps to the
last one shown (`reached`), where what it holds is what the router held then or less. What must
not happen is judged there (no one left out of a ringall or a new round who was able to take the
task); what may happen, at the tick's time (an offer to an agent able to take the task by then).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ivrpowers.acd import (
    CHANNELS,
    STRATEGIES,
    AgentConfig,
    AgentStateChanged,
    CancelOffer,
    Channel,
    Decision,
    NoAgents,
    Offer,
    QueueConfig,
    Router,
    Snapshot,
    Task,
    TaskTimedOut,
)

SKILLS = ("billing", "spanish")
EXCLUSIVE: tuple[Channel, ...] = ("voice", "video")
QUEUES = ("q0", "q1", "q2")
AGENTS = ("a0", "a1", "a2", "a3", "a4")
# Which event may lead to which cancellation.
CANCELS = {"answered_elsewhere": "answer", "task_ended": "end_task", "task_parked": "park", "max_wait": "tick",
           "ring_no_answer": "tick", "agent_logged_out": "logout", "agent_unreachable": "set_reachable"}


@st.composite
def queue_configs(draw: st.DrawFn, name: str) -> QueueConfig:
    return QueueConfig(
        name, strategy=draw(st.sampled_from(STRATEGIES)),
        channels=frozenset(draw(st.sets(st.sampled_from(CHANNELS), min_size=1))),
        ring_timeout=draw(st.sampled_from([5.0, 10.0])), wrapup_seconds=draw(st.sampled_from([0.0, 3.0, 10.0])),
        max_wait=draw(st.sampled_from([None, 20.0, 60.0])),
        relaxation=draw(st.sampled_from([(), ((5.0, 2),), ((4.0, 1), (12.0, 3))])),
        rna_pause=draw(st.booleans()), join_empty=draw(st.booleans()))


@st.composite
def agent_configs(draw: st.DrawFn, agent_id: str) -> AgentConfig:
    queues = draw(st.dictionaries(st.sampled_from(QUEUES), st.integers(0, 2), min_size=1))
    return AgentConfig(
        agent_id, skills=draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 8))), queues=queues,
        capacity={"voice": draw(st.sampled_from([1, 1, 1, 0])), "video": draw(st.sampled_from([1, 1, 0])),
                  "chat": draw(st.sampled_from([3, 2, 1, 0]))},
        blended=draw(st.sampled_from([False, False, True])))


@dataclass
class ModelAgent:
    config: AgentConfig
    logged_in: bool = False
    paused: str | None = None
    reachable: bool = True
    wrap_until: float | None = None
    offers: set[str] = field(default_factory=set)
    active: set[str] = field(default_factory=set)
    state: str = "logged_out"  # as reported
    reason: str | None = None
    idle_since: float = 0.0
    answered: int = 0

    def display(self) -> tuple[str, str | None]:
        if not self.logged_in:
            return "logged_out", None
        if self.active:
            return "busy", None
        if self.offers:
            return "reserved", None
        if self.wrap_until is not None:
            return "wrap_up", None
        if self.paused:
            return "paused", self.paused
        return ("unreachable", None) if not self.reachable and not self.config.capacity["chat"] else ("available", None)


@dataclass
class ModelTask:
    task: Task
    seq: int
    wait_start: float
    relaxed_until: float  # relaxation steps due by then apply
    status: str = "waiting"
    offers: dict[str, float] = field(default_factory=dict)
    agent: str | None = None
    declined: set[str] = field(default_factory=set)
    passed: set[str] = field(default_factory=set)  # rang out without a pause: the others first

    @property
    def key(self) -> tuple[int, float, int]:
        return -self.task.priority, self.task.arrived, self.seq


def meets(skills: Mapping[str, int], required: Mapping[str, int]) -> bool:
    return all(skills.get(name, 0) >= level for name, level in required.items())


class RouterMachine(RuleBasedStateMachine):
    @initialize(data=st.data())
    def setup(self, data: st.DataObject) -> None:
        queues = [data.draw(queue_configs(name)) for name in QUEUES]
        configs = [data.draw(agent_configs(agent_id)) for agent_id in AGENTS]
        seed = data.draw(st.integers(0, 2**32))
        logins = [agent_id for agent_id in AGENTS if data.draw(st.integers(0, 4))]  # tasks find agents at once
        self.start(queues, configs, seed, logins)

    def start(self, queues: Iterable[QueueConfig], configs: list[AgentConfig], seed: int, logins: list[str]) -> None:
        """Routers and model from these queues (all of `QUEUES`) and agents (some of `AGENTS`)."""
        self.queues = {queue.name: queue for queue in queues}
        self.router = Router(self.queues.values(), configs, rng=random.Random(seed))
        self.reference = Router(self.queues.values(), configs, rng=random.Random(seed))
        self.agents = {c.id: ModelAgent(c) for c in configs}
        self.tasks: dict[str, ModelTask] = {}
        self.round_robin: dict[str, int] = {}  # queue -> rank of the agent it served last
        self.now = 0.0
        self.reached = 0.0  # the router has run every deadline due by then
        self.count = 0
        for agent_id in logins:
            self.agent_event_now(agent_id, "login", "")

    # The model.

    def requirement(self, task: ModelTask, by: float | None = None) -> dict[str, int]:
        """What the task requires now, or once the relaxation steps due `by` then apply."""
        until = task.relaxed_until if by is None else max(task.relaxed_until, by)
        steps = self.queues[task.task.queue].relaxation
        drop = sum(delta for after, delta in steps if task.task.arrived + after <= until)
        return {name: level - drop for name, level in task.task.skills.items() if level > drop}

    def held(self, agent: ModelAgent) -> list[str]:
        return [self.tasks[t].task.channel for t in agent.offers | agent.active]

    def has_room(self, agent: ModelAgent, channel: Channel) -> bool:
        held = self.held(agent)
        chats = held.count("chat")
        blended = agent.config.blended
        if len(held) > chats and (channel in EXCLUSIVE or not blended):
            return False
        if channel in EXCLUSIVE:
            return (not chats or blended) and agent.config.capacity[channel] >= 1 and agent.reachable
        return chats < agent.config.capacity["chat"]

    def may_take(self, agent: ModelAgent, task: ModelTask, by: float | None = None) -> bool:
        """Whether the agent may be offered the task now, or once the deadlines due `by` then have run."""
        wrapping = agent.wrap_until is not None and (by is None or agent.wrap_until > by)
        return (agent.logged_in and agent.paused is None and not wrapping
                and task.task.queue in agent.config.queues and agent.config.id not in task.declined
                and meets(agent.config.skills, self.requirement(task, by))
                and self.has_room(agent, task.task.channel))

    def staffed(self, queue: str, channel: str) -> bool:
        """A member who takes `channel` (a capacity above 0) is logged in."""
        return any(a.logged_in and queue in a.config.queues and a.config.capacity[channel]  # type: ignore[index]
                   for a in self.agents.values())

    def max_wait_due(self, task: ModelTask) -> float:
        max_wait = self.queues[task.task.queue].max_wait
        assert max_wait is not None
        return task.wait_start + max_wait

    def advance(self, at: float) -> None:
        """The router has run the deadlines due by `at` (a tick's decision showed it): wrap-ups end
        (idle since the tick's time, as the router stamps it), relaxation steps apply."""
        if at <= self.reached:
            return
        self.reached = at
        for agent in self.agents.values():
            if agent.wrap_until is not None and agent.wrap_until <= at:
                agent.wrap_until, agent.idle_since = None, self.now
        for task in self.tasks.values():
            task.relaxed_until = max(task.relaxed_until, at)

    def requeue(self, task: ModelTask) -> None:
        if not task.offers and task.status == "ringing":
            task.status = "waiting"

    def ring_out(self, task: ModelTask, agent_id: str) -> None:
        agent = self.agents[agent_id]
        queue = self.queues[task.task.queue]
        if queue.rna_pause and agent.logged_in and agent.paused is None:
            agent.paused = "ring_no_answer"
        elif queue.strategy != "ringall":
            task.passed.add(agent_id)
        del task.offers[agent_id]
        agent.offers.discard(task.task.id)
        self.requeue(task)

    def run(self, event: str, call: Callable[[Router], list[Decision]], before: Callable[[], None] | None = None,
            after: Callable[[], None] | None = None) -> list[Decision]:
        """`call` both routers, apply `before` (the event's own effects), the decisions, then `after`."""
        waiting = {t.task.id: self.requirement(t) for t in self.tasks.values() if t.status == "waiting"}
        decisions = call(self.router)
        assert decisions == call(self.reference)
        if before:
            before()
        offered: set[str] = set()
        burst: str | None = None  # the ringall task being offered
        for decision in decisions:
            if burst and not isinstance(decision, AgentStateChanged) and getattr(decision, "task", None) != burst:
                self.check_rang_all(event, burst)
                burst = None
            if isinstance(decision, Offer):
                self.check_choice(event, decision)
                if self.queues[self.tasks[decision.task].task.queue].strategy == "ringall":
                    burst = decision.task
            self.apply(event, decision, offered)
        if burst:
            self.check_rang_all(event, burst)
        if after:
            after()
        self.check_order(decisions, waiting)
        return decisions

    def apply(self, event: str, decision: Decision, offered: set[str]) -> None:
        if isinstance(decision, Offer):
            task, agent = self.tasks[decision.task], self.agents[decision.agent]
            queue = self.queues[task.task.queue]
            assert task.status == "waiting" or (queue.strategy == "ringall" and task.task.id in offered)
            assert self.may_take(agent, task, self.now if event == "tick" else None), (decision, agent, task)
            assert decision.expires == self.now + queue.ring_timeout
            if queue.strategy == "round-robin":
                self.round_robin[queue.name] = AGENTS.index(agent.config.id)
            if agent.config.id in task.passed:  # nobody else could take it: the router began a new round
                # (At a tick, judged at the last due time shown: one able then was able when it offered.)
                fresh = [a for a in self.agents.values() if self.may_take(a, task) and a.config.id not in task.passed]
                assert not fresh, (decision, fresh)
                task.passed.clear()
            task.status = "ringing"
            task.offers[agent.config.id] = decision.expires
            agent.offers.add(task.task.id)
            offered.add(task.task.id)
        elif isinstance(decision, CancelOffer):
            task = self.tasks[decision.task]
            assert decision.agent in task.offers and CANCELS[decision.reason] == event, (event, decision)
            if decision.reason == "ring_no_answer":
                self.advance(task.offers[decision.agent])
                assert task.offers[decision.agent] <= self.now
                self.ring_out(task, decision.agent)
                return
            del task.offers[decision.agent]
            self.agents[decision.agent].offers.discard(task.task.id)
            if decision.reason == "max_wait":
                self.advance(self.max_wait_due(task))
            if decision.reason in ("agent_logged_out", "agent_unreachable"):
                self.requeue(task)
        elif isinstance(decision, TaskTimedOut):
            task = self.tasks.pop(decision.task)
            assert event == "tick" and task.status in ("waiting", "ringing") and not task.offers
            assert self.max_wait_due(task) <= self.now
            self.advance(self.max_wait_due(task))
        elif isinstance(decision, NoAgents):
            if event != "arrive":  # the last member logged out: the waiting tasks leave
                task = self.tasks.pop(decision.task)
                queue = self.queues[task.task.queue]
                assert event == "logout" and task.status == "waiting" and not queue.join_empty
                assert not self.staffed(queue.name, task.task.channel)
        else:
            assert isinstance(decision, AgentStateChanged)
            agent = self.agents[decision.agent]
            if event == "tick" and decision.old == "wrap_up" and agent.wrap_until is not None:
                self.advance(agent.wrap_until)  # nothing else changes an agent in wrap-up at a tick
            assert decision.at == self.now and decision.old == agent.state
            assert (decision.new, decision.reason) != (agent.state, agent.reason)
            agent.state, agent.reason = decision.new, decision.reason

    def check_rang_all(self, event: str, task_id: str) -> None:
        """Ringall rang every free agent able to take the task (at a tick: able at the last due time
        shown, hence when it rang)."""
        task = self.tasks.get(task_id)
        if task is not None:
            missed = [a for a_id, a in self.agents.items() if a_id not in task.offers and self.may_take(a, task)]
            assert not missed, (task, missed)

    def check_choice(self, event: str, offer: Offer) -> None:
        """The agent is the one the queue's strategy picks among all those able to take the task."""
        task = self.tasks[offer.task]
        queue = self.queues[task.task.queue]
        candidates = [a for a in self.agents.values() if self.may_take(a, task)]
        candidates = [a for a in candidates if a.config.id not in task.passed] or candidates
        if queue.strategy in ("ringall", "random") or not candidates:
            return
        requirement = self.requirement(task)
        if event == "tick":
            # Judged only if nothing the router may have run since the last due time shown changes
            # who may take it or what it requires (then the candidates stand as they did then).
            later = [a for a in self.agents.values() if self.may_take(a, task, self.now)]
            later = [a for a in later if a.config.id not in task.passed] or later
            if [a.config.id for a in later] != [a.config.id for a in candidates] or \
                    self.requirement(task, self.now) != requirement:
                return

        def rank(a: ModelAgent) -> int:
            return AGENTS.index(a.config.id)

        def penalty(a: ModelAgent) -> int:
            return a.config.queues[queue.name]

        keys: dict[str, Callable[[ModelAgent], Any]] = {
            "linear": lambda a: (penalty(a), rank(a)),
            "longest-idle": lambda a: (len(a.offers | a.active), a.idle_since, rank(a)),
            "fewest-calls": lambda a: (a.answered, a.idle_since, rank(a)),
            "skills": lambda a: (sum(a.config.skills.get(k, 0) - v for k, v in requirement.items()), penalty(a),
                                 a.idle_since, rank(a)),
        }
        if queue.strategy == "round-robin":
            last = self.round_robin.get(queue.name, -1)
            expected = min([a for a in candidates if rank(a) > last] or candidates, key=rank)
        else:
            expected = min(candidates, key=keys[queue.strategy])
        assert offer.agent == expected.config.id, (queue.strategy, offer, candidates)

    def check_order(self, decisions: list[Decision], waiting: dict[str, dict[str, int]]) -> None:
        """No offer went to an agent who could have taken a better task that waited all along."""
        offered = {d.task for d in decisions if isinstance(d, Offer)}
        for decision in decisions:
            if not isinstance(decision, Offer) or decision.task not in self.tasks:
                continue
            task, agent = self.tasks[decision.task], self.agents[decision.agent]
            for other_id, requirement in waiting.items():
                other = self.tasks.get(other_id)
                if other is None or other.status != "waiting" or other_id in offered:
                    continue
                if other.task.channel != task.task.channel or other.task.queue not in agent.config.queues:
                    continue
                if agent.config.id in other.declined or not meets(agent.config.skills, requirement):
                    continue
                if other.task.queue != task.task.queue and other.key[:2] == task.key[:2]:
                    continue  # a tie across queues: the agent's penalties decide
                assert not other.key < task.key, (decision, other.task, task.task)

    # Events.

    def pick(self, data: st.DataObject, ids: Any) -> str:
        return str(data.draw(st.sampled_from(sorted(ids))))

    @rule(data=st.data(), count=st.integers(1, 3))
    def arrive(self, data: st.DataObject, count: int) -> None:
        for _ in range(count):
            self.arrive_one(data)

    def arrive_one(self, data: st.DataObject) -> None:
        queue = self.queues[data.draw(st.sampled_from(QUEUES))]
        task = Task(f"t{self.count}", queue.name, data.draw(st.sampled_from(sorted(queue.channels))),
                    arrived=self.now - data.draw(st.sampled_from([0.0, 0.0, 0.0, 7.0])),
                    priority=data.draw(st.integers(0, 2)),
                    skills=data.draw(st.just({}) | st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 6))))
        self.arrive_task(task)

    def arrive_task(self, task: Task) -> None:
        queue = self.queues[task.queue]
        self.count += 1
        logged_in = self.staffed(queue.name, task.channel)

        def joins() -> None:
            self.tasks[task.id] = ModelTask(task, self.count, wait_start=self.now, relaxed_until=self.now)

        decisions = self.run("arrive", lambda r: r.arrive(task, self.now),
                             before=joins if logged_in or queue.join_empty else None)
        assert (NoAgents(task.id) in decisions) == (not logged_in and not queue.join_empty)

    @rule(data=st.data())
    def end_task(self, data: st.DataObject) -> None:
        if not self.tasks:
            return
        task = self.tasks[self.pick(data, self.tasks)]

        def finish() -> None:
            if task.status == "active" and task.agent is not None:
                agent = self.agents[task.agent]
                agent.active.discard(task.task.id)
                wrapup = self.queues[task.task.queue].wrapup_seconds
                if agent.logged_in and wrapup:
                    agent.wrap_until = max(agent.wrap_until or 0.0, self.now + wrapup)
                elif agent.logged_in and agent.wrap_until is None:
                    agent.idle_since = self.now
            task.status = "ending"

        def forget() -> None:
            del self.tasks[task.task.id]

        self.run("end_task", lambda r: r.end_task(task.task.id, self.now), before=finish, after=forget)

    @rule(data=st.data())
    def park(self, data: st.DataObject) -> None:
        parkable = [t for t, m in self.tasks.items() if m.status in ("waiting", "ringing")]
        if not parkable:
            return
        task = self.tasks[self.pick(data, parkable)]
        self.run("park", lambda r: r.park(task.task.id, self.now), before=lambda: setattr(task, "status", "parked"))
        assert not task.offers

    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        parked = [t for t, m in self.tasks.items() if m.status == "parked"]
        if not parked:
            return
        task = self.tasks[self.pick(data, parked)]

        def resumes() -> None:
            task.status, task.wait_start = "waiting", self.now

        self.run("resume", lambda r: r.resume(task.task.id, self.now), before=resumes)

    def ringing(self) -> list[tuple[str, str]]:
        return sorted((t, a) for t, m in self.tasks.items() for a in m.offers)

    @rule(data=st.data(), how=st.sampled_from(["answer", "answer", "answer", "decline", "offer_timed_out"]))
    def offer_ends(self, data: st.DataObject, how: str) -> None:
        if not self.ringing():
            return
        task_id, agent_id = data.draw(st.sampled_from(self.ringing()))
        task, agent = self.tasks[task_id], self.agents[agent_id]

        def ends() -> None:
            if how == "offer_timed_out":
                self.ring_out(task, agent_id)
                return
            del task.offers[agent_id]
            agent.offers.discard(task_id)
            if how == "answer":
                task.status, task.agent = "active", agent_id
                agent.active.add(task_id)
                agent.answered += 1
            else:
                task.declined.add(agent_id)
                self.requeue(task)

        self.run(how, lambda r: getattr(r, how)(task_id, agent_id, self.now), before=ends)
        if how == "answer":
            assert not task.offers

    @rule(data=st.data(), how=st.sampled_from(["login", "login", "logout", "pause", "unpause", "unpause",
                                               "end_wrap_up", "unreachable", "reachable", "reachable"]))
    def agent_event(self, data: st.DataObject, how: str) -> None:
        self.agent_event_now(data.draw(st.sampled_from(AGENTS)), how, data.draw(st.sampled_from(["lunch", "coffee"])))

    def agent_event_now(self, agent_id: str, how: str, reason: str) -> None:
        agent = self.agents[agent_id]
        if how == "pause" and not agent.logged_in:
            return
        calls: dict[str, Callable[[Router], list[Decision]]] = {
            "login": lambda r: r.login(agent_id, self.now), "logout": lambda r: r.logout(agent_id, self.now),
            "pause": lambda r: r.pause(agent_id, reason, self.now), "unpause": lambda r: r.unpause(agent_id, self.now),
            "end_wrap_up": lambda r: r.end_wrap_up(agent_id, self.now),
            "unreachable": lambda r: r.set_reachable(agent_id, False, self.now),
            "reachable": lambda r: r.set_reachable(agent_id, True, self.now),
        }

        def effect() -> None:
            if how == "login":
                if not agent.logged_in:
                    agent.logged_in, agent.paused, agent.wrap_until = True, None, None
                    agent.idle_since, agent.answered = self.now, 0
            elif how == "logout":
                agent.logged_in, agent.paused, agent.wrap_until = False, None, None
            elif how == "pause":
                agent.paused = reason
            elif how == "unpause":
                agent.paused = None
            elif how == "end_wrap_up":
                if agent.wrap_until is not None:
                    agent.wrap_until, agent.idle_since = None, self.now
            else:
                agent.reachable = how == "reachable"

        self.run("set_reachable" if how.endswith("reachable") else how, calls[how], before=effect)
        if how == "logout":
            for name in agent.config.queues:
                if not self.queues[name].join_empty:
                    assert not [t for t in self.tasks.values() if t.task.queue == name and t.status == "waiting"
                                and not self.staffed(name, t.task.channel)]

    @rule(dt=st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0, 12.0, 30.0]), tick=st.booleans())
    def time_passes(self, dt: float, tick: bool) -> None:
        """Time goes on; the runtime ticks, or sends events first (late ticks must be harmless)."""
        self.now += dt
        if not tick:
            return

        self.run("tick", lambda r: r.tick(self.now), after=lambda: self.advance(self.now))
        pending = self.router.next_deadline()
        assert pending is None or pending > self.now

    @rule()
    def restore(self) -> None:
        data = json.loads(json.dumps(self.router.snapshot().to_dict()))
        self.router = Router.restore(Snapshot.from_dict(data))

    # What must hold after every event.

    @invariant()
    def capacities_hold(self) -> None:
        for agent in self.agents.values():
            held = self.held(agent)
            exclusive, chats = len(held) - held.count("chat"), held.count("chat")
            assert exclusive <= 1 and (agent.config.blended or not (exclusive and chats)), (agent, held)
            assert chats <= agent.config.capacity["chat"]
            for channel in EXCLUSIVE:
                assert held.count(channel) <= agent.config.capacity[channel]

    @invariant()
    def one_offer_at_a_time_outside_ringall(self) -> None:
        for task in self.tasks.values():
            if self.queues[task.task.queue].strategy != "ringall":
                assert len(task.offers) <= 1

    @invariant()
    def no_task_waits_for_a_free_agent(self) -> None:
        for task in self.tasks.values():
            if task.status == "waiting":
                for agent in self.agents.values():
                    assert not self.may_take(agent, task), (task, agent)

    @invariant()
    def states_add_up(self) -> None:
        for agent in self.agents.values():
            assert (agent.state, agent.reason) == agent.display(), agent

    @invariant()
    def router_agrees_with_the_model(self) -> None:
        if not hasattr(self, "router"):
            return
        assert sorted(self.router.task_ids()) == sorted(self.tasks)
        for task_id, task in self.tasks.items():
            seen = self.router.task(task_id)
            assert (seen.status, dict(seen.offers), seen.agent, set(seen.declined)) == \
                (task.status, task.offers, task.agent, task.declined)
        for agent_id, agent in self.agents.items():
            a = self.router.agent(agent_id)
            assert (a.logged_in, a.paused, a.reachable, a.wrap_until, set(a.offers), set(a.active), a.state,
                    a.reason, a.idle_since, a.answered) == \
                (agent.logged_in, agent.paused, agent.reachable, agent.wrap_until, agent.offers, agent.active,
                 agent.state, agent.reason, agent.idle_since, agent.answered)
        for name in QUEUES:
            expected = sorted((t for t in self.tasks.values() if t.status == "waiting" and t.task.queue == name),
                              key=lambda t: t.key)
            assert self.router.waiting(name) == [t.task.id for t in expected]

    @invariant()
    def next_deadline_is_the_models(self) -> None:
        if not hasattr(self, "router"):
            return
        due: list[float] = [e for t in self.tasks.values() for e in t.offers.values()]
        due += [a.wrap_until for a in self.agents.values() if a.wrap_until is not None]
        for task in self.tasks.values():
            queue = self.queues[task.task.queue]
            if queue.max_wait is not None and task.status in ("waiting", "ringing"):
                due.append(task.wait_start + queue.max_wait)
            steps = [task.task.arrived + after for after, _ in queue.relaxation]
            if task.task.skills:
                due += [at for at in steps if at > task.relaxed_until][:1]
        assert self.router.next_deadline() == (min(due) if due else None)

    @invariant()
    def restored_router_is_the_same(self) -> None:
        if hasattr(self, "router"):
            assert self.router.snapshot().to_dict() == self.reference.snapshot().to_dict()


def test_the_model_follows_a_late_tick_as_far_as_its_decisions_show() -> None:
    """What Hypothesis found, cut down: a tick at 10 runs a0's ring-out at 5 (only a0 meets billing 1:
    a new round rings a0 again), then the relaxation at 8 (a1 could take it from then). The model
    must judge the new round at 5, not at 10."""
    machine = RouterMachine()
    chats = QueueConfig("q0", strategy="fewest-calls", channels=frozenset({"chat"}), ring_timeout=5.0,
                        rna_pause=False, relaxation=((8.0, 1),))
    machine.start([chats, QueueConfig("q1"), QueueConfig("q2")],
                  [AgentConfig("a0", skills={"billing": 1}, queues={"q0": 0}), AgentConfig("a1", queues={"q0": 0})],
                  seed=0, logins=["a0", "a1"])
    machine.arrive_task(Task("t0", "q0", "chat", arrived=0.0, skills={"billing": 1}))
    assert machine.tasks["t0"].offers == {"a0": 5.0}
    machine.time_passes(dt=10.0, tick=True)
    assert machine.tasks["t0"].offers == {"a0": 15.0} and machine.requirement(machine.tasks["t0"]) == {}
    machine.time_passes(dt=5.0, tick=True)
    assert machine.tasks["t0"].offers == {"a1": 20.0}
    for check in (machine.capacities_hold, machine.one_offer_at_a_time_outside_ringall,
                  machine.no_task_waits_for_a_free_agent, machine.states_add_up, machine.router_agrees_with_the_model,
                  machine.next_deadline_is_the_models, machine.restored_router_is_the_same):
        check()


RouterMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
test_router_properties = RouterMachine.TestCase
