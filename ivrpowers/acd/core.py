"""The router's machinery: its indexes, offers, deadlines and the matching of tasks to agents.

`Router` (router.py) is the public face: each of its events validates, changes state through the
helpers here, then `_dispatch`es, which offers what can be offered. Two indexes per queue keep
that cheap: a `WaitingLine` of its offerable tasks and `FreeAgents`, its free agents in its
strategy's order. An event marks "dirty" the agents that gained a channel and the tasks it made
offerable; `_dispatch` settles only those, best task first, so after every event no offerable
task waits while an agent able to take it is free.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Iterable

from .decisions import AgentStateChanged, CancelOffer, CancelReason, Decision, NoAgents, Offer, TaskTimedOut
from .free import FreeAgents
from .model import Channel, InvalidEvent, NotFound, QueueConfig
from .records import AgentRecord, TaskRecord
from .timers import MAX_WAIT, RELAX, RING, WRAP, Deadline, Timers
from .waiting import Key, WaitingLine

__all__ = ["RING_NO_ANSWER", "Core"]

RING_NO_ANSWER = "ring_no_answer"  # the pause reason of an agent who let an offer ring out


class Core:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._queues: dict[str, QueueConfig] = {}
        self._lines: dict[str, WaitingLine] = {}
        self._free: dict[str, FreeAgents] = {}  # queue -> its free agents
        # queue -> how many members are logged in, per channel they take (a capacity above 0): a
        # chat in a queue whose logged-in members take no chats has nobody, as in an empty queue.
        self._logged_in: dict[str, Counter[Channel]] = {}
        self._agents: dict[str, AgentRecord] = {}
        self._tasks: dict[str, TaskRecord] = {}
        self._round_robin: dict[str, int] = {}  # queue -> rank of the agent served last
        self._timers = Timers()
        self._next_seq = 0
        self._next_rank = 0
        self._dirty_agents: dict[str, None] = {}
        self._dirty_tasks: dict[str, None] = {}
        self._out: list[Decision] = []
        self._now = 0.0

    # One event: `_begin`, change state, `_finish` (which dispatches and hands the decisions over).

    def _begin(self, now: float) -> None:
        self._now = now
        self._out = []

    def _finish(self) -> list[Decision]:
        self._dispatch()
        out, self._out = self._out, []
        return out

    # Lookups.

    def _queue(self, name: str) -> QueueConfig:
        try:
            return self._queues[name]
        except KeyError:
            raise NotFound(f"no queue {name}") from None

    def _agent(self, agent_id: str) -> AgentRecord:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise NotFound(f"no agent {agent_id}") from None

    def _task(self, task_id: str) -> TaskRecord:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise NotFound(f"no task {task_id}") from None

    def _ringing(self, task_id: str, agent_id: str) -> tuple[TaskRecord, AgentRecord]:
        task, agent = self._task(task_id), self._agent(agent_id)
        if agent_id not in task.offers:
            raise InvalidEvent(f"task {task_id} is not ringing agent {agent_id}")
        return task, agent

    def _count_logged_in(self, agent: AgentRecord, delta: int) -> None:
        channels = [channel for channel, capacity in agent.config.capacity.items() if capacity]
        for queue in agent.config.queues:
            for channel in channels:
                self._logged_in[queue][channel] += delta

    def _send_away(self, queues: Iterable[str]) -> None:
        """Queues whose last logged-in member taking a channel just left (or stopped taking it),
        unless `join_empty`: their waiting tasks of that channel leave with `NoAgents`, as arriving
        ones would (parked callbacks stay)."""
        for name in queues:
            staffed = self._logged_in[name]
            if self._queues[name].join_empty or all(staffed[channel] for channel in self._queues[name].channels):
                continue  # every channel it takes is staffed (and the common case stays O(1))
            for key in list(self._lines[name].ordered()):
                if not staffed[self._tasks[key[3]].task.channel]:
                    self._forget(self._tasks[key[3]])
                    self._out.append(NoAgents(key[3]))

    def _add_queue(self, queue: QueueConfig) -> None:
        self._queues[queue.name] = queue
        self._lines[queue.name] = WaitingLine()
        self._free[queue.name] = FreeAgents(queue.name, queue.strategy, queue.channels)
        self._logged_in[queue.name] = Counter()

    # Agents.

    def _refresh(self, agent: AgentRecord) -> None:
        """After any change to `agent`: reindex where it is free, mark it dirty if it gained a
        channel, and report a change of its state.

        More room on a channel it was already free on (a chat ends, an offer is declined) needs no
        look: no task it could take was waiting, or it would have been offered. The tasks that
        event put back in line are dirty themselves."""
        free = agent.free_channels()
        old = agent.free
        standing = agent.standing
        if free != old or (free and standing != agent.indexed):
            for queue in agent.config.queues:
                self._free[queue].move(agent, free, standing)
            if any(channel not in old for channel in free):
                self._dirty_agents[agent.id] = None
            agent.free, agent.indexed = free, standing
        state, reason = agent.display()
        if state != agent.state or reason != agent.reason:
            self._out.append(AgentStateChanged(agent.id, agent.state, state, reason, self._now))
            agent.state, agent.reason = state, reason

    def _unindex(self, agent: AgentRecord) -> None:
        for queue in agent.config.queues:
            self._free[queue].move(agent, (), agent.indexed)
        agent.free = ()

    def _reindex_queue(self, queue: QueueConfig) -> None:
        """Index the queue's free agents again: for a new strategy, or new channels (the tasks it
        holds on a channel it no longer takes stay offerable)."""
        held = {t.task.channel for t in self._tasks.values() if t.task.queue == queue.name}
        self._free[queue.name] = free = FreeAgents(queue.name, queue.strategy, queue.channels | held)
        for agent in self._agents.values():
            if agent.free and queue.name in agent.config.queues:
                # As if it had just become free: its entry in the old index is dropped.
                channels, agent.free = agent.free, ()
                agent.entries.pop(queue.name, None)
                free.move(agent, channels, agent.indexed)
                agent.free = channels

    def _start_wrap_up(self, agent: AgentRecord, queue: QueueConfig) -> None:
        if queue.wrapup_seconds > 0:
            until = self._now + queue.wrapup_seconds
            if agent.wrap_until is None or until > agent.wrap_until:
                agent.wrap_until = until
                self._timers.push(Deadline(until, WRAP, agent.rank, 0, agent.id, ""))
        elif agent.wrap_until is None:
            agent.idle_since = self._now

    # Tasks.

    def _enter_line(self, task: TaskRecord) -> None:
        task.status = "waiting"
        self._lines[task.task.queue].add(task.task.channel, task.requirement, task.key)
        self._dirty_tasks[task.id] = None

    def _leave_line(self, task: TaskRecord) -> None:
        self._lines[task.task.queue].remove(task.task.channel, task.requirement, task.key)

    def _forget(self, task: TaskRecord) -> None:
        if task.status == "waiting":
            self._leave_line(task)
        for agent_id in task.declined:
            if agent := self._agents.get(agent_id):
                agent.declined.discard(task.id)
        del self._tasks[task.id]

    def _offer(self, task: TaskRecord, agent: AgentRecord, queue: QueueConfig) -> None:
        if task.status == "waiting":
            self._leave_line(task)
        task.status = "ringing"
        expires = self._now + queue.ring_timeout
        task.offers[agent.id] = expires
        agent.offers[task.id] = None
        agent.hold(task.task.channel)
        self._timers.push(Deadline(expires, RING, task.seq, agent.rank, task.id, agent.id))
        self._out.append(Offer(task.id, agent.id, expires))
        self._refresh(agent)

    def _withdraw(self, task: TaskRecord, agent: AgentRecord, cancel: CancelReason | None, requeue: bool) -> None:
        """End one offer. `cancel`: tell the runtime (it did not report it); `requeue`: a ringing
        task left with no offer goes back to its place in line."""
        if cancel is not None:
            self._out.append(CancelOffer(task.id, agent.id, cancel))
        del task.offers[agent.id]
        del agent.offers[task.id]
        agent.release(task.task.channel)
        if requeue and not task.offers and task.status == "ringing":
            self._enter_line(task)
        self._refresh(agent)

    def _ring_out(self, task: TaskRecord, agent: AgentRecord, cancel: bool) -> None:
        queue = self._queues[task.task.queue]
        if queue.rna_pause and agent.logged_in and agent.paused is None:
            agent.paused = RING_NO_ANSWER  # before the withdrawal: one state change, reserved -> paused
        elif queue.strategy != "ringall":
            task.passed.add(agent.id)
        self._withdraw(task, agent, "ring_no_answer" if cancel else None, requeue=True)

    def _set_stage(self, task: TaskRecord, stage: int) -> None:
        task.stage = stage
        requirement = self._queues[task.task.queue].requirements(task.task.skills, stage)
        if requirement != task.requirement:
            waiting = task.status == "waiting"
            if waiting:
                self._leave_line(task)
            task.requirement = requirement
            if waiting:
                self._enter_line(task)

    # Deadlines.

    def _schedule(self, task: TaskRecord) -> None:
        """Push the task's max_wait and next relaxation deadlines."""
        queue = self._queues[task.task.queue]
        if queue.max_wait is not None and task.status in ("waiting", "ringing"):
            self._timers.push(Deadline(task.wait_start + queue.max_wait, MAX_WAIT, task.seq, 0, task.id, ""))
        self._schedule_relaxation(task)

    def _schedule_relaxation(self, task: TaskRecord) -> None:
        queue = self._queues[task.task.queue]
        if task.task.skills and task.stage < len(queue.relaxation):
            at = task.task.arrived + queue.relaxation[task.stage][0]
            self._timers.push(Deadline(at, RELAX, task.seq, task.stage, task.id, ""))

    def _live(self, deadline: Deadline) -> bool:
        if deadline.kind == WRAP:
            agent = self._agents.get(deadline.first)
            return agent is not None and agent.wrap_until == deadline.at
        task = self._tasks.get(deadline.first)
        if task is None:
            return False
        if deadline.kind == RING:
            return task.offers.get(deadline.second) == deadline.at
        queue = self._queues[task.task.queue]
        if deadline.kind == MAX_WAIT:
            return (task.status in ("waiting", "ringing") and queue.max_wait is not None
                    and task.wait_start + queue.max_wait == deadline.at)
        return (task.stage == deadline.detail < len(queue.relaxation)
                and task.task.arrived + queue.relaxation[task.stage][0] == deadline.at)

    def _fire(self, deadline: Deadline) -> None:
        if deadline.kind == WRAP:
            agent = self._agents[deadline.first]
            agent.wrap_until = None
            agent.idle_since = self._now
            self._refresh(agent)
            return
        task = self._tasks[deadline.first]
        if deadline.kind == RING:
            self._ring_out(task, self._agents[deadline.second], cancel=True)
        elif deadline.kind == MAX_WAIT:
            for agent_id in list(task.offers):
                self._withdraw(task, self._agents[agent_id], "max_wait", requeue=False)
            self._forget(task)
            self._out.append(TaskTimedOut(task.id))
        else:
            self._set_stage(task, task.stage + 1)
            self._schedule_relaxation(task)

    def _run_due(self, now: float) -> None:
        """Fire every deadline up to `now`, a due time at a time, dispatching after each: as if
        the runtime had ticked at each of them (the decisions are stamped `now`, though)."""
        while (at := self._timers.next_time(self._live)) is not None and at <= now:
            for deadline in self._timers.pop_due_at(at):
                if self._live(deadline):
                    self._fire(deadline)
            self._dispatch()

    # Matching.

    def _dispatch(self) -> None:
        """Offer what can be offered, best task first (by priority, then arrival): the dirty tasks
        to the free agents able to take them, and to each dirty agent, its best task. The task
        goes to whom its queue's strategy picks among all the free agents able to take it, which
        need not be the dirty agent that found it (the agent then looks again)."""
        while self._dirty_agents or self._dirty_tasks:
            heap: list[tuple[Key, int, str]] = []  # (task key, agent rank or -1 for a task, agent)
            for task_id in self._dirty_tasks:
                task = self._tasks.get(task_id)
                if task is not None and task.status == "waiting":
                    heap.append((task.key, -1, ""))
            for agent_id in self._dirty_agents:
                if agent := self._agents.get(agent_id):
                    self._push_best(heap, agent)
            self._dirty_agents.clear()
            self._dirty_tasks.clear()
            heapq.heapify(heap)
            while heap:
                key, _, agent_id = heapq.heappop(heap)
                task = self._tasks.get(key[3])
                if task is not None and task.status == "waiting":
                    self._match(task)
                if agent_id:
                    self._push_best(heap, self._agents[agent_id])

    def _push_best(self, heap: list[tuple[Key, int, str]], agent: AgentRecord) -> None:
        if not agent.free:
            return
        best: tuple[int, float, int, int] | None = None
        best_key: Key | None = None
        skills = agent.config.skills
        for queue, penalty in agent.config.queues.items():
            line = self._lines[queue]
            if not len(line):
                continue
            for channel in agent.free:
                key = line.first_for(channel, skills, agent.declined)
                # Across queues: priority, then longest wait, then the agent's penalty there.
                if key is not None and (best is None or (key[0], key[1], penalty, key[2]) < best):
                    best, best_key = (key[0], key[1], penalty, key[2]), key
        if best_key is not None:
            heapq.heappush(heap, (best_key, agent.rank, agent.id))

    def _match(self, task: TaskRecord) -> None:
        """Offer `task` to the agents its queue's strategy picks among the free ones able to take it."""
        queue = self._queues[task.task.queue]
        free, last = self._free[queue.name], self._round_robin.get(queue.name)
        skip = task.declined | task.passed if task.passed else task.declined
        chosen = free.select(task.task.channel, task.requirement, skip, last, self._rng, self._agents)
        if not chosen and task.passed:  # every agent able to take it has rung: a new round
            task.passed.clear()
            chosen = free.select(task.task.channel, task.requirement, task.declined, last, self._rng, self._agents)
        for agent_id in chosen:
            self._offer(task, self._agents[agent_id], queue)
        if chosen and queue.strategy == "round-robin":
            self._round_robin[queue.name] = self._agents[chosen[0]].rank
