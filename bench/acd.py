"""The ACD router under a contact center's load: `python -m bench.acd [OUT.json]`, prints JSON (and
adds it to OUT.json under "acd": `make bench` gives bench-results/bench.json).

A simulated center (5,000 agents in 2 to 5 of 200 queues each, 50 skills, a mix of every strategy;
calls, video calls and chats arriving at about the rate the agents can take) runs for a simulated
hour, driven as the runtime drives the router: each agent answers most offers after a few seconds,
declines some and lets some ring out; callers hang up when they run out of patience; agents wrap
up and take breaks; `tick` runs at each `next_deadline()`. Every router call is timed
(`perf_counter_ns`): `decisions_per_second` is the decisions made over the time spent in the router,
`latency_us` the time of each call that made decisions. Targets: 20,000 decisions/s, p99 under
200 µs, on one core. Deterministic (seeded), so runs on the same machine compare; never across.
Beside it, what a snapshot of the busy router costs (`Router.snapshot`, to JSON and back).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivrpowers.acd import (
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
    Strategy,
    Task,
    TaskTimedOut,
)

AGENTS, QUEUES, SKILLS = 5000, 200, 50
SIMULATED_SECONDS = 3600.0
SEED = 2024
TARGET_DECISIONS_PER_SECOND, TARGET_P99_US = 20_000, 200
# Logins, every queue filling up for the first time, each skill first asked for in each queue (which
# indexes it): measured apart, as "warm_up".
WARM_UP_SECONDS = 300.0
PERCENTILES = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)]
# How the queues' strategies are spread: most centers are longest-idle and skills, with a few of the rest.
STRATEGY_MIX: list[tuple[Strategy, int]] = [("longest-idle", 35), ("skills", 25), ("round-robin", 12),
                                            ("fewest-calls", 10), ("linear", 8), ("random", 5)]
RINGALL_QUEUES = 10
CHANNEL_MIX: list[tuple[frozenset[Channel], int]] = [(frozenset({"voice"}), 60), (frozenset({"voice", "chat"}), 20),
                                                     (frozenset({"chat"}), 12), (frozenset({"voice", "video"}), 8)]
TALK_SECONDS = {"voice": 180.0, "video": 240.0, "chat": 420.0}  # means, exponential
ARRIVALS_PER_SECOND = 24.0  # about what the agents can take: short queues, some waits


def build(rng: random.Random) -> tuple[list[QueueConfig], list[AgentConfig], list[float], list[tuple[str, ...]]]:
    """The center: queues (with their share of the traffic and the skills their tasks ask for) and agents."""
    strategies = [s for s, n in STRATEGY_MIX for _ in range(n)]
    channels = [c for c, n in CHANNEL_MIX for _ in range(n)]
    queues, topics = [], []
    for i in range(QUEUES):
        # Ringall is for small teams: the last queues, the least busy (see the weights below).
        strategy = "ringall" if i >= QUEUES - RINGALL_QUEUES else rng.choice(strategies)
        queues.append(QueueConfig(
            f"q{i:03}", strategy=strategy, channels=rng.choice(channels), ring_timeout=15.0,
            wrapup_seconds=rng.choice([0.0, 5.0, 10.0, 30.0]), max_wait=rng.choice([None, 300.0, 600.0]),
            relaxation=((30.0, 2), (90.0, 3)) if strategy == "skills" else (), rna_pause=strategy != "ringall"))
        topics.append(tuple(rng.sample([f"s{k:02}" for k in range(SKILLS)], 3)))
    weights = [1 / (i + 1) ** 0.6 for i in range(QUEUES)]  # traffic: a few busy queues, a long tail
    staffing = [w / 5 if q.strategy == "ringall" else w for w, q in zip(weights, queues, strict=True)]
    agents = []
    for i in range(AGENTS):
        mine: set[int] = set()
        count = rng.randint(2, 5)
        while len(mine) < count:
            mine.add(rng.choices(range(QUEUES), staffing)[0])
        skills = {s: rng.randint(3, 10) for q in mine for s in rng.sample(topics[q], 2)}
        skills.update({f"s{rng.randrange(SKILLS):02}": rng.randint(1, 10) for _ in range(2)})
        agents.append(AgentConfig(f"a{i:04}", skills=skills, queues={queues[q].name: rng.choice([0, 0, 1, 2])
                                                                    for q in sorted(mine)},
                                  capacity={"chat": rng.choice([2, 3, 3])}))
    return queues, agents, weights, topics


class Center:
    """The runtime's side: callers, agents and their phones, as pending events on a clock."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.queues, agents, self.weights, self.topics = build(self.rng)
        self.router = Router(self.queues, agents, rng=random.Random(seed))
        self.agent_ids = [a.id for a in agents]
        self.now = 0.0
        self.events: list[tuple[float, int, str, tuple[str, ...]]] = []
        self.seq = itertools.count()
        self.offers: set[tuple[str, str]] = set()  # ringing, as far as the runtime knows
        self.talking: set[str] = set()
        # Every router call: (simulated time, ns spent, decisions made).
        self.timings: list[tuple[float, int, int]] = []
        self.outcomes = {"arrived": 0, "answered": 0, "abandoned": 0, "timed_out": 0, "turned_away": 0}
        self.waits: list[float] = []
        self.arrivals: dict[str, float] = {}

    def at(self, when: float, kind: str, *args: str) -> None:
        heapq.heappush(self.events, (when, next(self.seq), kind, args))

    def call(self, method: Callable[..., list[Decision]], *args: Any) -> None:
        start = time.perf_counter_ns()
        decisions = method(*args, self.now)
        self.timings.append((self.now, time.perf_counter_ns() - start, len(decisions)))
        for decision in decisions:
            self.carry_out(decision)

    def carry_out(self, decision: Decision) -> None:
        rng = self.rng
        if isinstance(decision, Offer):
            self.offers.add((decision.task, decision.agent))
            roll = rng.random()
            if roll < 0.92:
                self.at(self.now + rng.uniform(1.0, 8.0), "answer", decision.task, decision.agent)
            elif roll < 0.95:
                self.at(self.now + rng.uniform(1.0, 5.0), "decline", decision.task, decision.agent)
            # else: nobody picks up; the router's ring timeout withdraws it
        elif isinstance(decision, CancelOffer):
            self.offers.discard((decision.task, decision.agent))
        elif isinstance(decision, AgentStateChanged) and decision.reason == "ring_no_answer":
            self.at(self.now + rng.uniform(20.0, 90.0), "back", decision.agent)  # back at the desk
        elif isinstance(decision, TaskTimedOut):
            self.outcomes["timed_out"] += 1
            del self.arrivals[decision.task]
        elif isinstance(decision, NoAgents):
            self.outcomes["turned_away"] += 1
            del self.arrivals[decision.task]

    def arrive(self, n: int) -> None:
        rng = self.rng
        q = rng.choices(range(QUEUES), self.weights)[0]
        queue = self.queues[q]
        channel = rng.choice(sorted(queue.channels))
        skills = {s: rng.choice([3, 5, 7]) for s in rng.sample(self.topics[q], rng.choice([0, 1, 1, 2]))}
        task = Task(f"t{n}", queue.name, channel, arrived=self.now, priority=1 if rng.random() < 0.1 else 0,
                    skills=skills)
        self.outcomes["arrived"] += 1
        self.arrivals[task.id] = self.now
        self.call(self.router.arrive, task)
        if task.id in self.arrivals:  # not turned away: how long before the caller gives up
            self.at(self.now + rng.expovariate(1 / (600.0 if channel == "chat" else 150.0)), "abandon", task.id)

    def step(self, kind: str, args: tuple[str, ...]) -> None:
        rng, router = self.rng, self.router
        if kind == "arrival":
            self.arrive(int(args[0]))
            self.at(self.now + rng.expovariate(ARRIVALS_PER_SECOND), "arrival", str(int(args[0]) + 1))
        elif kind in ("answer", "decline"):
            task_id, agent_id = args
            if (task_id, agent_id) not in self.offers:
                return  # withdrawn meanwhile (answered elsewhere, rang out, the caller left)
            self.offers.discard((task_id, agent_id))
            if kind == "decline":
                self.call(router.decline, task_id, agent_id)
                return
            self.call(router.answer, task_id, agent_id)
            self.talking.add(task_id)
            self.outcomes["answered"] += 1
            self.waits.append(self.now - self.arrivals.pop(task_id))
            channel = router.task(task_id).task.channel
            self.at(self.now + rng.expovariate(1 / TALK_SECONDS[channel]), "hangup", task_id)
        elif kind == "hangup":
            self.talking.discard(args[0])
            self.call(router.end_task, args[0])
        elif kind == "abandon":
            if args[0] in self.arrivals:  # still waiting or ringing (the router cancels its offers)
                del self.arrivals[args[0]]
                self.outcomes["abandoned"] += 1
                self.call(router.end_task, args[0])
        elif kind == "break":  # some agent takes a break; another comes back from one
            agent_id = rng.choice(self.agent_ids)
            if router.agent(agent_id).logged_in:
                self.call(router.pause, agent_id, rng.choice(["break", "lunch", "training"]))
                self.at(self.now + rng.expovariate(1 / 600.0), "back", agent_id)
            self.at(self.now + rng.expovariate(1 / 2.0), "break")
        elif kind == "back":
            self.call(router.unpause, args[0])

    def run(self, seconds: float) -> None:
        for agent_id in self.agent_ids:
            self.call(self.router.login, agent_id)
        self.at(0.0, "arrival", "0")
        self.at(1.0, "break")
        events, router = self.events, self.router
        while True:
            deadline = router.next_deadline()
            if deadline is not None and deadline <= events[0][0]:
                self.now = deadline
                self.call(router.tick)
                continue
            when, _, kind, args = heapq.heappop(events)
            if when > seconds:
                return
            self.now = when
            self.step(kind, args)


def percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def figures(timings: Sequence[tuple[float, int, int]]) -> dict[str, Any]:
    """Throughput over the time spent in the router; latencies of the calls that made decisions."""
    busy = sum(ns for _, ns, _ in timings) / 1e9
    decisions = sum(n for _, _, n in timings)
    calls = sorted(ns / 1000 for _, ns, n in timings if n)
    each = sorted(ns / 1000 / n for _, ns, n in timings if n)
    return {
        "router_calls": len(timings), "calls_with_decisions": len(calls), "decisions": decisions,
        "decisions_per_second": round(decisions / busy), "calls_per_second": round(len(timings) / busy),
        "latency_us": {name: round(percentile(calls, q), 1) for name, q in PERCENTILES} | {"max": round(calls[-1], 1)},
        "per_decision_us": {name: round(percentile(each, q), 1) for name, q in PERCENTILES},
    }


def machine_noise() -> dict[str, float]:
    """The same ~25 µs of pure Python, timed 100,000 times: what this machine does to a fixed amount of
    work right now (other processes, frequency scaling). Read the router's p99 against this one's."""
    def work() -> int:
        return sum(i * i for i in range(400))

    times = []
    for _ in range(100_000):
        start = time.perf_counter_ns()
        work()
        times.append((time.perf_counter_ns() - start) / 1000)
    times.sort()
    return {name: round(percentile(times, q), 1) for name, q in PERCENTILES}


def snapshot_costs(router: Router) -> dict[str, float]:
    start = time.perf_counter()
    text = json.dumps(router.snapshot().to_dict())
    taken = time.perf_counter() - start
    start = time.perf_counter()
    restored = Router.restore(Snapshot.from_dict(json.loads(text)))
    restore = time.perf_counter() - start
    assert restored.snapshot() == router.snapshot()
    return {"snapshot_to_json_ms": round(taken * 1000, 1), "restore_from_json_ms": round(restore * 1000, 1),
            "json_kib": round(len(text) / 1024, 1)}


def main(out: Path | None, seconds: float = SIMULATED_SECONDS) -> dict[str, object]:
    center = Center()
    wall = time.perf_counter()
    center.run(seconds)
    wall = time.perf_counter() - wall
    steady = figures([t for t in center.timings if t[0] >= WARM_UP_SECONDS])
    rate, p99 = steady["decisions_per_second"], steady["latency_us"]["p99"]
    strategies: dict[str, int] = {}
    for queue in center.queues:
        strategies[queue.strategy] = strategies.get(queue.strategy, 0) + 1
    results: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(), "python": sys.version.split()[0], "machine": platform.machine(),
        "agents": AGENTS, "queues": QUEUES, "skills": SKILLS, "strategies": strategies,
        "simulated_seconds": seconds, "wall_seconds": round(wall, 1), **center.outcomes,
        "mean_wait_seconds": round(statistics.fmean(center.waits), 1) if center.waits else None,
        "warm_up_seconds": WARM_UP_SECONDS, **steady,
        "targets": {"decisions_per_second": TARGET_DECISIONS_PER_SECOND, "p99_us": TARGET_P99_US,
                    "met": rate >= TARGET_DECISIONS_PER_SECOND and p99 < TARGET_P99_US},
        "warm_up": figures([t for t in center.timings if t[0] < WARM_UP_SECONDS]),
        "machine_noise_us": machine_noise(),
        "busy_router": snapshot_costs(center.router),
    }
    if out is not None:
        # Into the file `make bench` writes (`ivrpowers.bench`), under its own key.
        out.parent.mkdir(parents=True, exist_ok=True)
        merged = json.loads(out.read_text()) if out.exists() else {}
        merged["acd"] = results
        out.write_text(json.dumps(merged, indent=2) + "\n")
    return results


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2))
