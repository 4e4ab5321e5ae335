"""What applying an ACD file would change: queues and agents to create, update (which fields) or
delete, and what already matches. Pure, so `acd apply --dry-run` shows exactly what `acd apply`
then does, and applying the same file twice changes nothing the second time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .definitions import AcdFile, AgentDef, QueueDef

Action = Literal["create", "update", "delete", "unchanged"]


@dataclass(frozen=True)
class Change:
    action: Action
    kind: Literal["queue", "agent"]
    name: str
    fields: tuple[str, ...] = ()  # for an update: the fields that differ
    spec: QueueDef | AgentDef | None = field(default=None, compare=False)  # what to store (not for delete)

    def describe(self) -> str:
        what = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.action} {self.kind} {self.name}{what}"

    def to_dict(self) -> dict[str, object]:
        return {"action": self.action, "kind": self.kind, "name": self.name, "fields": list(self.fields)}


def plan(acd: AcdFile, queues: Mapping[str, QueueDef], agents: Mapping[str, AgentDef], *,
         prune: bool = False) -> list[Change]:
    """The changes taking the stored `queues` and `agents` to what `acd` defines: queues first (an
    agent may join a new queue), agents, then, with `prune`, deletions of what the file leaves
    out (agents before the queues they were in)."""
    changes = [_compare("queue", q.name, q, queues.get(q.name)) for q in acd.queues]
    changes += [_compare("agent", a.id, a, agents.get(a.id)) for a in acd.agents]
    if prune:
        kept_agents, kept_queues = {a.id for a in acd.agents}, {q.name for q in acd.queues}
        changes += [Change("delete", "agent", name) for name in sorted(agents) if name not in kept_agents]
        changes += [Change("delete", "queue", name) for name in sorted(queues) if name not in kept_queues]
    return changes


def _compare(kind: Literal["queue", "agent"], name: str, wanted: QueueDef | AgentDef,
             stored: QueueDef | AgentDef | None) -> Change:
    if stored is None:
        return Change("create", kind, name, spec=wanted)
    before, after = stored.model_dump(), wanted.model_dump()
    differ = tuple(key for key in after if before.get(key) != after[key])
    return Change("update", kind, name, differ, spec=wanted) if differ else Change("unchanged", kind, name)
