"""The router: events in, decisions out. Pure: no clock, no I/O, no randomness of its own.

    router = Router(queues=[QueueConfig("sales", strategy="round-robin")],
                    agents=[AgentConfig("ana", queues={"sales": 0})])
    router.login("ana", now=0.0)
    router.arrive(Task("call-1", "sales", "voice", arrived=1.0), now=1.0)  # [Offer("call-1", "ana", 21.0), ...]
    router.answer("call-1", "ana", now=3.0)
    router.end_task("call-1", now=60.0)  # ana wraps up, or is available again
    router.tick(now=90.0)  # at `next_deadline()`: ring timeouts, wrap-up ends, relaxation, max_wait

Every event takes the time it happened (`now`, in seconds, from the runtime's clock) and returns
the decisions it led to, in order. Events never run due deadlines themselves: the runtime calls
`tick(now)` when `next_deadline()` says. An event that does not apply raises an `AcdError` before
changing anything; events that are already true (logging in a logged-in agent, resuming a task
that is not parked) return no decisions.

Tasks: `arrive`; `end_task` whatever its state (waiting or ringing: it leaves the queue; answered:
the agent's conversation is over and it wraps up); `park` keeps a task's place without offering
it (a callback requested) and `resume` makes it offerable again, ahead of everyone who arrived
after it. Offers: `answer`, `decline` (the task goes to the next agent and is never offered to this
one again), `offer_timed_out` (the runtime's own ring timer; the router's withdraws at `tick`).
A ring-out keeps the task's place; with the queue's `rna_pause` the agent is paused
("ring_no_answer"), otherwise it may be rung again at once, as Asterisk does without autopause.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from .core import Core
from .decisions import Decision, NoAgents
from .model import EXCLUSIVE_CHANNELS, AgentConfig, Channel, InvalidEvent, QueueConfig, Task
from .records import AgentRecord, TaskRecord
from .snapshot import AgentSnapshot, Snapshot, TaskSnapshot
from .timers import RING, WRAP, Deadline

__all__ = ["Router"]


class Router(Core):
    def __init__(self, queues: Iterable[QueueConfig] = (), agents: Iterable[AgentConfig] = (), *,
                 rng: random.Random | None = None) -> None:
        """`rng` serves the `random` strategy; without one, a generator seeded with 0."""
        super().__init__(rng if rng is not None else random.Random(0))
        for queue in queues:
            if queue.name in self._queues:
                raise InvalidEvent(f"queue {queue.name} is configured twice")
            self._add_queue(queue)
        for agent in agents:
            if agent.id in self._agents:
                raise InvalidEvent(f"agent {agent.id} is configured twice")
            self.set_agent(agent, now=0.0)

    # Configuration.

    def set_queue(self, queue: QueueConfig, now: float) -> list[Decision]:
        """Add a queue, or change one: its tasks keep their places; relaxation is recomputed
        from their waits, max_wait from when they joined."""
        self._begin(now)
        if queue.name not in self._queues:
            self._add_queue(queue)
            return self._finish()
        old, self._queues[queue.name] = self._queues[queue.name], queue
        if queue.strategy != old.strategy or not queue.channels <= self._free[queue.name].channels:
            self._reindex_queue(queue)
        for task in [t for t in self._tasks.values() if t.task.queue == queue.name]:
            self._set_stage(task, queue.stage_at(task.task.arrived, now) if task.task.skills else 0)
            self._schedule(task)
            if task.status == "waiting":
                self._dirty_tasks[task.id] = None
        self._send_away([queue.name])  # no longer join_empty?
        return self._finish()

    def remove_queue(self, name: str) -> None:
        self._queue(name)
        if any(t.task.queue == name for t in self._tasks.values()) or \
                any(name in a.config.queues for a in self._agents.values()):
            raise InvalidEvent(f"queue {name} still has tasks or members")
        for index in (self._queues, self._lines, self._free, self._logged_in, self._round_robin):
            index.pop(name, None)

    def set_agent(self, agent: AgentConfig, now: float) -> list[Decision]:
        """Add an agent (logged out), or change one's skills, queues or capacity, even logged in:
        what it holds stays with it."""
        for queue in agent.queues:
            self._queue(queue)
        self._begin(now)
        record = self._agents.get(agent.id)
        if record is None:
            self._agents[agent.id] = AgentRecord(agent, rank=self._next_rank)
            self._next_rank += 1
            return self._finish()
        self._unindex(record)
        old = record.config
        if record.logged_in:
            self._count_logged_in(record, -1)
        record.config = agent
        if record.logged_in:
            self._count_logged_in(record, +1)
        self._refresh(record)
        if record.logged_in:  # the queues it left, or whose channel it no longer takes
            self._send_away(old.queues)
        return self._finish()

    def remove_agent(self, agent_id: str) -> None:
        agent = self._agent(agent_id)
        if agent.logged_in or agent.offers or agent.active:
            raise InvalidEvent(f"agent {agent_id} is logged in or holds tasks")
        for task_id in agent.declined:
            self._tasks[task_id].declined.discard(agent_id)
        del self._agents[agent_id]

    # Tasks.

    def arrive(self, task: Task, now: float) -> list[Decision]:
        """A task joins its queue (or `NoAgents`: no logged-in member takes its channel, not `join_empty`)."""
        queue = self._queue(task.queue)
        if task.channel not in queue.channels:
            raise InvalidEvent(f"queue {queue.name} does not take {task.channel}")
        if task.id in self._tasks:
            raise InvalidEvent(f"task {task.id} is already in queue {self._tasks[task.id].task.queue}")
        self._begin(now)
        if not queue.join_empty and not self._logged_in[queue.name][task.channel]:
            self._out.append(NoAgents(task.id))
            return self._finish()
        seq = self._next_seq
        self._next_seq += 1
        stage = queue.stage_at(task.arrived, now) if task.skills else 0
        record = TaskRecord(task, seq, key=(-task.priority, task.arrived, seq, task.id),
                            requirement=queue.requirements(task.skills, stage), wait_start=now, stage=stage)
        self._tasks[task.id] = record
        self._enter_line(record)
        self._schedule(record)
        return self._finish()

    def end_task(self, task_id: str, now: float) -> list[Decision]:
        """The task is over: hung up, abandoned, withdrawn, or its conversation finished (the agent
        who answered wraps up for the queue's `wrapup_seconds`). The router forgets it."""
        task = self._task(task_id)
        self._begin(now)
        if task.status == "ringing":
            for agent_id in list(task.offers):
                self._withdraw(task, self._agents[agent_id], "task_ended", requeue=False)
        elif task.status == "active" and task.agent is not None:
            self._let_go(task, self._agents[task.agent])
        self._forget(task)
        return self._finish()

    def park(self, task_id: str, now: float) -> list[Decision]:
        """Keep the task's place in line but offer it to no one (e.g. the caller asked for a
        callback). Its max_wait stops; ringing offers are withdrawn."""
        task = self._task(task_id)
        if task.status == "active":
            raise InvalidEvent(f"task {task_id} was answered: it cannot be parked")
        self._begin(now)
        if task.status == "waiting":
            self._leave_line(task)
        for agent_id in list(task.offers):
            self._withdraw(task, self._agents[agent_id], "task_parked", requeue=False)
        task.status = "parked"
        return self._finish()

    def release(self, task_id: str, now: float) -> list[Decision]:
        """An answered task goes back, parked, to its original place: the agent who had it wraps
        up. (A callback whose customer did not answer, to be tried again: `resume` then.)"""
        task = self._task(task_id)
        if task.status != "active" or task.agent is None:
            raise InvalidEvent(f"task {task_id} is not answered: there is nothing to release")
        self._begin(now)
        self._let_go(task, self._agents[task.agent])
        task.agent, task.status = None, "parked"
        return self._finish()

    def _let_go(self, task: TaskRecord, agent: AgentRecord) -> None:
        """The agent is done with its answered task: it wraps up for the task's queue."""
        del agent.active[task.id]
        agent.release(task.task.channel)
        if agent.logged_in:
            self._start_wrap_up(agent, self._queues[task.task.queue])
        self._refresh(agent)

    def resume(self, task_id: str, now: float) -> list[Decision]:
        """Make a parked task offerable again, at its original place; max_wait counts from now.
        It waits even in a queue nobody is logged in to: its callback was promised."""
        task = self._task(task_id)
        if task.status == "active":
            raise InvalidEvent(f"task {task_id} was answered: it is not parked")
        self._begin(now)
        if task.status == "parked":
            task.wait_start = now
            self._enter_line(task)
            self._schedule(task)
        return self._finish()

    # Offers.

    def answer(self, task_id: str, agent_id: str, now: float) -> list[Decision]:
        task, agent = self._ringing(task_id, agent_id)
        self._begin(now)
        del task.offers[agent_id]
        del agent.offers[task_id]
        task.status = "active"
        task.agent = agent_id
        agent.active[task_id] = None
        agent.answered += 1
        self._refresh(agent)
        for other in list(task.offers):
            self._withdraw(task, self._agents[other], "answered_elsewhere", requeue=False)
        return self._finish()

    def decline(self, task_id: str, agent_id: str, now: float) -> list[Decision]:
        task, agent = self._ringing(task_id, agent_id)
        self._begin(now)
        task.declined.add(agent_id)
        agent.declined.add(task_id)
        self._withdraw(task, agent, None, requeue=True)
        return self._finish()

    def offer_timed_out(self, task_id: str, agent_id: str, now: float) -> list[Decision]:
        """The runtime's ring timer ran out first: as a ring-out at `tick`, without the `CancelOffer`."""
        task, agent = self._ringing(task_id, agent_id)
        self._begin(now)
        self._ring_out(task, agent, cancel=False)
        return self._finish()

    # Agents.

    def login(self, agent_id: str, now: float) -> list[Decision]:
        """The agent starts available, idle since now, with no task answered yet."""
        agent = self._agent(agent_id)
        self._begin(now)
        if not agent.logged_in:
            agent.logged_in = True
            agent.paused = agent.wrap_until = None
            agent.idle_since = now
            agent.answered = 0
            self._count_logged_in(agent, +1)
            self._refresh(agent)
        return self._finish()

    def logout(self, agent_id: str, now: float) -> list[Decision]:
        """Ringing offers are withdrawn (the tasks keep their places); answered tasks stay with the
        agent until they end, without wrap-up. The last member of a queue logging out sends its
        waiting tasks away (`NoAgents`) unless the queue is `join_empty`."""
        agent = self._agent(agent_id)
        self._begin(now)
        if agent.logged_in:
            agent.logged_in = False
            agent.paused = agent.wrap_until = None
            self._count_logged_in(agent, -1)
            for task_id in list(agent.offers):
                self._withdraw(self._tasks[task_id], agent, "agent_logged_out", requeue=True)
            self._refresh(agent)
            self._send_away(agent.config.queues)
        return self._finish()

    def pause(self, agent_id: str, reason: str, now: float) -> list[Decision]:
        """No new offers; what rings or is answered carries on. Pausing again changes the reason."""
        agent = self._agent(agent_id)
        if not agent.logged_in:
            raise InvalidEvent(f"agent {agent_id} is logged out")
        if not reason:
            raise InvalidEvent("a pause needs a reason")
        self._begin(now)
        agent.paused = reason
        self._refresh(agent)
        return self._finish()

    def unpause(self, agent_id: str, now: float) -> list[Decision]:
        agent = self._agent(agent_id)
        self._begin(now)
        if agent.paused is not None:
            agent.paused = None
            self._refresh(agent)
        return self._finish()

    def set_reachable(self, agent_id: str, reachable: bool, now: float) -> list[Decision]:
        """Whether the agent's phone can ring (registered): if not, no voice or video (ringing
        offers are withdrawn, answered calls carry on); chat goes on."""
        agent = self._agent(agent_id)
        self._begin(now)
        if agent.reachable != reachable:
            agent.reachable = reachable
            if not reachable:
                for task_id in list(agent.offers):
                    task = self._tasks[task_id]
                    if task.task.channel in EXCLUSIVE_CHANNELS:
                        self._withdraw(task, agent, "agent_unreachable", requeue=True)
            self._refresh(agent)
        return self._finish()

    def end_wrap_up(self, agent_id: str, now: float) -> list[Decision]:
        """The agent ends its wrap-up early."""
        agent = self._agent(agent_id)
        self._begin(now)
        if agent.wrap_until is not None:
            agent.wrap_until = None
            agent.idle_since = now
            self._refresh(agent)
        return self._finish()

    # Time.

    def tick(self, now: float) -> list[Decision]:
        """Run every deadline due at or before `now`: ring-outs, wrap-up ends, relaxation steps, max_wait."""
        self._begin(now)
        self._run_due(now)
        return self._finish()

    def next_deadline(self) -> float | None:
        """When `tick` must next be called (None: nothing is pending)."""
        return self._timers.next_time(self._live)

    # What the router knows.

    @property
    def queues(self) -> tuple[QueueConfig, ...]:
        return tuple(self._queues.values())

    def agent_ids(self) -> list[str]:
        return list(self._agents)

    def task_ids(self) -> list[str]:
        return list(self._tasks)

    def agent(self, agent_id: str) -> AgentSnapshot:
        a = self._agent(agent_id)
        return AgentSnapshot(a.config, a.rank, a.logged_in, a.paused, a.reachable, a.wrap_until, a.idle_since,
                             a.answered, tuple(a.offers), tuple(a.active), a.state, a.reason)

    def task(self, task_id: str) -> TaskSnapshot:
        t = self._task(task_id)
        return TaskSnapshot(t.task, t.seq, t.status, t.wait_start, t.stage, tuple(t.offers.items()), t.agent,
                            tuple(sorted(t.declined)), tuple(sorted(t.passed)))

    def waiting(self, queue: str, channel: Channel | None = None) -> list[str]:
        """The ids of the queue's offerable tasks, next served first (parked and ringing ones aside)."""
        self._queue(queue)
        return [key[3] for key in self._lines[queue].ordered(channel)]

    # Persistence.

    def snapshot(self) -> Snapshot:
        state = self._rng.getstate()
        return Snapshot(
            queues=self.queues,
            agents=tuple(self.agent(a) for a in sorted(self._agents, key=lambda a: self._agents[a].rank)),
            tasks=tuple(self.task(t) for t in sorted(self._tasks, key=lambda t: self._tasks[t].seq)),
            round_robin=dict(self._round_robin), next_seq=self._next_seq, next_rank=self._next_rank,
            random_state=state)

    @classmethod
    def restore(cls, snapshot: Snapshot, *, rng: random.Random | None = None) -> Router:
        """The router `snapshot` was taken from. `rng` (a new one if None) is set to the snapshot's state."""
        rng = rng if rng is not None else random.Random(0)
        if snapshot.random_state is not None:
            rng.setstate(snapshot.random_state)
        router = cls(snapshot.queues, rng=rng)
        for a in snapshot.agents:
            agent = AgentRecord(a.config, a.rank, a.logged_in, a.paused, a.reachable, a.wrap_until, a.idle_since,
                                a.answered, dict.fromkeys(a.offers), dict.fromkeys(a.active), state=a.state,
                                reason=a.reason)
            router._agents[a.config.id] = agent
            if agent.logged_in:
                router._count_logged_in(agent, +1)
            if agent.wrap_until is not None:
                router._timers.push(Deadline(agent.wrap_until, WRAP, agent.rank, 0, agent.config.id, ""))
        for t in snapshot.tasks:
            queue = router._queue(t.task.queue)
            task = TaskRecord(t.task, t.seq, (-t.task.priority, t.task.arrived, t.seq, t.task.id),
                              queue.requirements(t.task.skills, t.stage), t.wait_start, t.stage, t.status,
                              dict(t.offers), t.agent, set(t.declined), set(t.passed))
            router._tasks[task.id] = task
            for agent_id in task.declined:
                router._agents[agent_id].declined.add(task.id)
            for agent_id, expires in task.offers.items():
                router._agents[agent_id].hold(task.task.channel)
                router._timers.push(Deadline(expires, RING, task.seq, router._agents[agent_id].rank, task.id, agent_id))
            if task.agent is not None:
                router._agents[task.agent].hold(task.task.channel)
            if task.status == "waiting":
                router._lines[queue.name].add(task.task.channel, task.requirement, task.key)
            router._schedule(task)
        for queue in router._queues.values():
            if any(t.task.queue == queue.name and t.task.channel not in queue.channels for t in snapshot.tasks):
                router._reindex_queue(queue)  # as `set_queue` left it: those tasks stay offerable
        for agent in router._agents.values():
            router._refresh(agent)
        # The snapshot was taken between events, with nothing left to settle.
        router._dirty_agents.clear()
        router._dirty_tasks.clear()
        router._out = []
        router._round_robin = dict(snapshot.round_robin)
        router._next_seq, router._next_rank = snapshot.next_seq, snapshot.next_rank
        return router
