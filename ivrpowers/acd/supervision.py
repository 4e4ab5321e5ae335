"""Supervision's rules, apart from ARI (`calls/supervision.py` carries them out): the modes, where
the supervisor's channel sits in each and who hears it, and who may supervise."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MODES", "Plan", "SupervisionError", "may_supervise", "plan"]

MODES = ("listen", "whisper", "barge", "watch")


class SupervisionError(Exception):
    """Refused: `status` is the HTTP status that says why (400, 403, 404, 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Plan:
    in_conversation: bool  # in the conversation's bridge (else its own, with a snoop)
    whisper: str  # the snoop's whisper direction: "out" is what the agent hears
    muted: bool  # nobody hears the supervisor


def plan(mode: str, video: bool) -> Plan:
    if mode not in MODES:
        raise SupervisionError(400, f"mode {mode[:20]!r}: one of {', '.join(MODES)}")
    if mode == "watch" and not video:
        raise SupervisionError(409, "watch is for video calls: this one has no picture (listen instead)")
    return {"listen": Plan(False, "none", True), "whisper": Plan(False, "out", False),
            "barge": Plan(True, "none", False), "watch": Plan(True, "none", True)}[mode]


def may_supervise(agent_id: str | None, agents: Mapping[str, Any]) -> bool:
    """The API token (`agent_id` None) may; an agent only if it is defined a supervisor."""
    if agent_id is None:
        return True
    agent = agents.get(agent_id)
    return bool(agent is not None and getattr(agent, "supervisor", False))
