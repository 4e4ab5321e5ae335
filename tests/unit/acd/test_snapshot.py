"""Snapshots: plain data through JSON, and a restored router deciding exactly as the original would."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from ivrpowers.acd import STRATEGIES, AgentConfig, Decision, QueueConfig, Router, Snapshot, Task

from .helpers import agent, offers, router, task

ROOT = Path(__file__).resolve().parents[3]


def through_json(r: Router, rng: random.Random | None = None) -> Router:
    return Router.restore(Snapshot.from_dict(json.loads(json.dumps(r.snapshot().to_dict()))), rng=rng)


def busy_router() -> Router:
    """Every kind of state at once: waiting, parked, ringing (ringall), answered, declined, wrap-up, pause."""
    queues = [QueueConfig("ring", strategy="ringall", channels=frozenset({"voice", "chat"}), max_wait=300),
              QueueConfig("rr", strategy="round-robin", wrapup_seconds=30, relaxation=((10, 1), (20, 2))),
              QueueConfig("rand", strategy="random", channels=frozenset({"chat"}))]
    agents = [agent("ana", "ring", "rr", skills={"billing": 3}), agent("bob", "ring", "rand"),
              agent("cy", "rr", "rand", capacity={"chat": 2}), agent("dee", "rr")]
    r = router(queues, agents, rng=random.Random(3))
    r.arrive(task("c1", "ring"), 1)
    r.answer("c1", "bob", 2)
    r.arrive(task("c2", "rr", skills={"billing": 5}), 3)
    r.arrive(task("c3", "rr"), 4)
    r.decline("c3", "ana", 5)  # round-robin: ana first, then cy
    r.arrive(task("m1", "rand", channel="chat"), 6)
    r.arrive(task("m2", "ring", channel="chat"), 7)
    r.park("m2", 8)
    r.arrive(task("m3", "rand", channel="chat"), 9)
    r.pause("dee", "lunch", 10)
    return r


def test_a_snapshot_goes_through_json_unchanged() -> None:
    r = busy_router()
    snapshot = r.snapshot()
    data = json.loads(json.dumps(snapshot.to_dict()))
    assert Snapshot.from_dict(data) == snapshot
    assert {t["status"] for t in data["tasks"]} == {"ringing", "active", "parked", "waiting"}
    assert {a["state"] for a in data["agents"]} >= {"reserved", "busy", "paused"}


def test_a_restored_router_decides_as_the_original_would() -> None:
    original = busy_router()
    restored = through_json(original)
    assert restored.snapshot() == original.snapshot()

    def story(r: Router) -> list[Decision]:
        out = r.tick(12) + r.arrive(task("c4", "rr", skills={"billing": 2}), 13) + r.resume("m2", 14)
        for task_id, agent_id in [(t, a) for t in r.task_ids() for a, _ in r.task(t).offers]:
            out += r.answer(task_id, agent_id, 15) if task_id != "m2" else []
        out += r.end_task("c1", 16) + r.arrive(task("m4", "rand", channel="chat"), 17)
        out += r.arrive(task("m5", "rand", channel="chat"), 17) + r.tick(400)
        return out

    assert story(restored) == story(original)


def test_round_robin_remembers_where_it_stopped() -> None:
    r = router([QueueConfig("q", strategy="round-robin")], [agent(a, "q") for a in ("ana", "bob", "cy")])
    assert offers(r.arrive(task("c1"), 0)) == [("c1", "ana")]
    r.end_task("c1", 1)
    r = through_json(r)
    assert offers(r.arrive(task("c2"), 2)) == [("c2", "bob")]


def test_random_goes_on_with_the_same_draws() -> None:
    def picks(r: Router) -> list[str]:
        out = []
        for i in range(8):
            (_, who), = offers(r.arrive(task(f"c{i}"), i))
            out.append(who)
            r.end_task(f"c{i}", i + 0.5)
        return out

    a = router([QueueConfig("q", strategy="random")], [agent(f"a{i}", "q") for i in range(6)], rng=random.Random(9))
    b = through_json(a, rng=random.Random(12345))  # the generator given is set to the snapshot's state
    assert picks(a) == picks(b)


def test_agents_keep_their_order_and_everything_they_were_doing() -> None:
    r = busy_router()
    restored = through_json(r)
    assert restored.agent_ids() == r.agent_ids()
    for agent_id in r.agent_ids():
        assert restored.agent(agent_id) == r.agent(agent_id)
    for task_id in r.task_ids():
        assert restored.task(task_id) == r.task(task_id)
    assert restored.next_deadline() == r.next_deadline()
    assert [restored.waiting(q.name) for q in r.queues] == [r.waiting(q.name) for q in r.queues]


SCRIPT = """
import hashlib
import random
from ivrpowers.acd import AgentConfig, QueueConfig, Router, Task, STRATEGIES
rng = random.Random(5)
queues = [QueueConfig(f"q{i}", strategy=s, channels=frozenset({"voice", "chat"}), wrapup_seconds=2, max_wait=40,
                      relaxation=((5, 1),), rna_pause=i % 2 == 0) for i, s in enumerate(STRATEGIES)]
agents = [AgentConfig(f"a{i}", skills={"s": rng.randint(1, 9)}, queues={q.name: rng.randint(0, 2)
          for q in rng.sample(queues, 3)}) for i in range(30)]
r = Router(queues, agents, rng=random.Random(1))
now, out = 0.0, []
for a in agents:
    out += r.login(a.id, now)
for step in range(3000):
    now += rng.choice([0.0, 0.5, 1.0])
    ringing = sorted((t, a) for t in r.task_ids() for a, _ in r.task(t).offers)
    active = sorted(t for t in r.task_ids() if r.task(t).status == "active")
    roll = rng.random()
    if roll < 0.4:
        q = rng.choice(queues)
        out += r.arrive(Task(f"t{step}", q.name, rng.choice(["voice", "chat"]), arrived=now,
                             priority=rng.randint(0, 1), skills={"s": rng.randint(1, 9)}), now)
    elif roll < 0.6 and ringing:
        out += r.answer(*rng.choice(ringing), now)
    elif roll < 0.8 and active:
        out += r.end_task(rng.choice(active), now)
    else:
        out += r.tick(now)
print(len(out), hashlib.sha256(repr(out).encode()).hexdigest())
"""


def test_decisions_do_not_depend_on_string_hashing() -> None:
    """Sets of agents are iterated: every order must come from the data, not from PYTHONHASHSEED."""
    runs = [subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, cwd=ROOT,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")]
    assert int(runs[0].split()[0]) > 3000
    assert runs[0] == runs[1] == runs[2]


def test_a_new_router_and_a_restored_empty_one_agree() -> None:
    r = Router([QueueConfig("q", strategy=s) for s in STRATEGIES][:1], [AgentConfig("ana", queues={"q": 0})])
    restored = through_json(r)
    assert restored.login("ana", 0) == r.login("ana", 0)
    assert restored.arrive(Task("c1", "q", "voice", arrived=0), 0) == r.arrive(Task("c1", "q", "voice", arrived=0), 0)
