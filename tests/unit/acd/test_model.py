"""Configuration checks, relaxation arithmetic and the waiting line's index."""

from __future__ import annotations

from typing import Any

import pytest

from ivrpowers.acd import AgentConfig, ConfigError, QueueConfig, Task
from ivrpowers.acd.waiting import WaitingLine


@pytest.mark.parametrize("kw", [
    {"name": ""},
    {"strategy": "fastest"},
    {"channels": frozenset()},
    {"channels": frozenset({"fax"})},
    {"ring_timeout": 0},
    {"wrapup_seconds": -1},
    {"max_wait": 0},
    {"relaxation": ((0, 1),)},
    {"relaxation": ((10, 0),)},
    {"relaxation": ((20, 1), (10, 1))},
])
def test_bad_queues_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        QueueConfig(**{"name": "q", **kw})


@pytest.mark.parametrize("kw", [
    {"id": ""},
    {"skills": {"billing": 0}},
    {"skills": {"billing": 11}},
    {"skills": {"billing": "7"}},
    {"queues": {"q": -1}},
    {"capacity": {"voice": 2}},  # exclusive: 0 or 1
    {"capacity": {"chat": -1}},
    {"capacity": {"fax": 1}},
])
def test_bad_agents_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        AgentConfig(**{"id": "ana", **kw})


def test_bad_tasks_are_refused() -> None:
    with pytest.raises(ConfigError):
        Task("t", "q", "fax", arrived=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Task("t", "q", "voice", arrived=0, skills={"billing": 12})
    with pytest.raises(ConfigError):
        Task("t", "q", "voice", arrived=0, priority=1.5)  # type: ignore[arg-type]


def test_configs_copy_what_they_are_given() -> None:
    skills = {"billing": 5}
    a = AgentConfig("ana", skills=skills, capacity={"chat": 5})
    skills["billing"] = 9
    assert a.skills == {"billing": 5}
    assert a.capacity == {"voice": 1, "video": 1, "chat": 5}  # the defaults for what it does not say
    assert QueueConfig("q", channels=["chat", "voice"]).channels == frozenset({"chat", "voice"})  # type: ignore[arg-type]


def test_relaxation_lowers_levels_step_by_step_and_drops_what_reaches_zero() -> None:
    q = QueueConfig("q", relaxation=((30, 2), (60, 3)))
    need = {"billing": 7, "spanish": 2}
    assert q.requirements(need, 0) == (("billing", 7), ("spanish", 2))
    assert q.requirements(need, 1) == (("billing", 5),)
    assert q.requirements(need, 2) == (("billing", 2),)
    assert [q.stage_at(100.0, now) for now in (100, 129.9, 130, 159, 160, 1000)] == [0, 0, 1, 1, 2, 2]


def test_the_waiting_line_gives_each_agent_the_best_task_it_may_take() -> None:
    line = WaitingLine()
    line.add("voice", (), (0, 5.0, 3, "plain-late"))
    line.add("voice", (("billing", 5),), (0, 1.0, 1, "billing-early"))
    line.add("voice", (("billing", 5),), (-1, 9.0, 4, "billing-urgent"))
    line.add("chat", (), (0, 0.0, 0, "chat"))
    line.add("voice", (), (0, 2.0, 2, "plain-early"))
    assert line.first_for("voice", {}, set()) == (0, 2.0, 2, "plain-early")
    assert line.first_for("voice", {"billing": 5}, set()) == (-1, 9.0, 4, "billing-urgent")
    assert line.first_for("voice", {"billing": 5}, {"billing-urgent", "billing-early"}) == (0, 2.0, 2, "plain-early")
    assert line.first_for("video", {}, set()) is None
    assert [k[3] for k in line.ordered()] == ["billing-urgent", "chat", "billing-early", "plain-early", "plain-late"]
    line.remove("voice", (("billing", 5),), (-1, 9.0, 4, "billing-urgent"))
    line.remove("voice", (("billing", 5),), (0, 1.0, 1, "billing-early"))
    assert len(line) == 3 and [k[3] for k in line.ordered("voice")] == ["plain-early", "plain-late"]
    with pytest.raises(KeyError):
        line.remove("voice", (), (0, 1.0, 1, "billing-early"))
