"""A call's timeline, written through the CDR writer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ivrpowers.store.writer import CdrWriter


class CallJournal:
    """Implements `ivrpowers.flows.call.Journal` for one call; remembers the last node entered."""

    def __init__(self, writer: CdrWriter, call_id: str) -> None:
        self.writer = writer
        self.call_id = call_id
        self.last_node: str | None = None

    async def record(self, type: str, node: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        self.write(type, node, detail)

    def write(self, type: str, node: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        if type == "node_entered":
            self.last_node = node
        self.writer.add_event(self.call_id, type, datetime.now(UTC), node, dict(detail or {}))
