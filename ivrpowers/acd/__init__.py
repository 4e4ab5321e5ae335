"""The ACD router, pure: tasks (calls, video calls, web chats) in queues, offered to agents.

    router = Router(queues=[QueueConfig("support", strategy="skills", channels=frozenset({"voice", "chat"}))],
                    agents=[AgentConfig("ana", skills={"billing": 7}, queues={"support": 0})])
    decisions = router.login("ana", now=0.0)
    decisions += router.arrive(Task("t1", "support", "voice", arrived=5.0, skills={"billing": 5}), now=5.0)
    # [AgentStateChanged("ana", "logged_out", "available", ...), Offer("t1", "ana", expires=25.0),
    #  AgentStateChanged("ana", "available", "reserved", ...)]
    snapshot = router.snapshot().to_dict()  # JSON-ready; Router.restore(Snapshot.from_dict(...)) goes on

The runtime feeds it events with the time they happened, carries out the decisions it returns,
and calls `tick` at `next_deadline()`. Nothing here does I/O, reads a clock or draws a random
number from anything but the `random.Random` it is given: the same events give the same decisions.
"""

from .decisions import AgentStateChanged, CancelOffer, CancelReason, Decision, NoAgents, Offer, TaskTimedOut
from .model import (
    AGENT_STATES,
    CHANNELS,
    DEFAULT_CAPACITY,
    EXCLUSIVE_CHANNELS,
    MAX_SKILL_LEVEL,
    STRATEGIES,
    AcdError,
    AgentConfig,
    AgentState,
    Channel,
    ConfigError,
    InvalidEvent,
    NotFound,
    QueueConfig,
    Strategy,
    Task,
)
from .records import TASK_STATUSES, TaskStatus
from .router import Router
from .snapshot import AgentSnapshot, Snapshot, TaskSnapshot
from .strategies import Candidate, choose

__all__ = [
    # errors
    "AcdError",
    "ConfigError",
    "InvalidEvent",
    "NotFound",
    # configuration and tasks
    "AGENT_STATES",
    "CHANNELS",
    "DEFAULT_CAPACITY",
    "EXCLUSIVE_CHANNELS",
    "MAX_SKILL_LEVEL",
    "STRATEGIES",
    "TASK_STATUSES",
    "AgentConfig",
    "AgentState",
    "Channel",
    "QueueConfig",
    "Strategy",
    "Task",
    "TaskStatus",
    # the router and its state
    "AgentSnapshot",
    "Router",
    "Snapshot",
    "TaskSnapshot",
    # decisions
    "AgentStateChanged",
    "CancelOffer",
    "CancelReason",
    "Decision",
    "NoAgents",
    "Offer",
    "TaskTimedOut",
    # strategies
    "Candidate",
    "choose",
]
