"""A queued call's ACD record, read from its CDR timeline: the queue, when it joined, every agent
offered (with ring time and outcome), who answered, the wait, the talk, how it ended.

The timeline is the one source: the `queue` node and the ACD write these events as they happen
(`queue_joined`, `queue_offer_ended`, `queue_answered`, `queue_agent_done`, `queue_abandoned`,
`queue_timeout`, `queue_left`, `queue_no_agents`, `queue_callback_requested`...), so a call adopted
by another controller, or written late after a database outage, reads the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The timeline's event -> how the call's time in the queue ended.
_ENDINGS = {"queue_abandoned": "abandoned", "queue_timeout": "timeout", "queue_left": "left",
            "queue_no_agents": "no_agents", "queue_callback_requested": "callback", "queue_refused": "refused"}


def queue_record(events: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """`events` as `call_to_dict` gives them (type, at as ISO text, node, detail); None if the call
    never went to a queue. A call that queued twice (a second queue node) gives its last queue."""
    record: dict[str, Any] | None = None
    for event in events:
        kind, detail, at = event["type"], event.get("detail") or {}, event.get("at")
        if kind in ("queue_joined", "queue_refused") and (record is None or record.get("outcome") is not None):
            record = {"queue": detail.get("queue"), "joined_at": at, "priority": detail.get("priority"),
                      "offers": [], "agent": None, "answered_at": None, "wait": None, "talk": None,
                      "outcome": None, "ended_at": None}
        if record is None:
            continue
        if kind == "queue_offer_ended":
            record["offers"].append({"agent": detail.get("agent"), "ended_at": at, "ring": detail.get("ring"),
                                     "outcome": detail.get("outcome")})
        elif kind == "queue_answered":
            record.update(agent=detail.get("agent"), answered_at=at, wait=detail.get("wait"))
        elif kind == "queue_agent_done":
            record.update(talk=detail.get("talk"), outcome="handled", ended_at=at)
        elif kind in _ENDINGS:
            record.update(outcome=_ENDINGS[kind], ended_at=at)
            if kind == "queue_refused":
                record["reason"] = detail.get("reason")
            elif kind == "queue_callback_requested":
                record["callback_number"] = detail.get("number")
            if record["wait"] is None and "wait" in detail:
                record["wait"] = detail["wait"]
    if record is not None and record["outcome"] is None:
        record["outcome"] = "talking" if record["answered_at"] else "waiting"
    return record

