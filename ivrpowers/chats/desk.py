"""The ACD's desk for chats: where the router's decisions about a chat land.

A voice offer rings a phone; a chat offer is remembered here for the agent to see (the ACD's event
stream says `task_offered` with channel `chat`; `GET /api/agents/{id}/chats` lists them) until the
agent accepts or declines it over the API, or the router withdraws it.
"""

from __future__ import annotations

from collections.abc import Callable


class ChatDesk:
    """`sent_away(chat_id, outcome)` is told when the router sends a chat away (`timeout`,
    `no_agents`); `stray(chat_id, agent_id)` when it offers a chat this desk does not hold."""

    def __init__(self, holds: Callable[[str], bool], sent_away: Callable[[str, str], None],
                 stray: Callable[[str, str], None]) -> None:
        self._holds, self._sent_away, self._stray = holds, sent_away, stray
        self.offers: dict[str, dict[str, float]] = {}  # chat -> agent -> when the offer rings out
        self.rung = 0  # offers made: tests wait on it

    # -- the ACD's Desk ---------------------------------------------------------------------------
    def ring(self, task_id: str, agent_id: str, expires: float) -> None:
        if not self._holds(task_id):
            self._stray(task_id, agent_id)
            return
        self.offers.setdefault(task_id, {})[agent_id] = expires
        self.rung += 1

    def cancel(self, task_id: str, agent_id: str) -> None:
        self.taken(task_id, agent_id)

    def closed(self, task_id: str, outcome: str) -> None:
        self.offers.pop(task_id, None)
        self._sent_away(task_id, outcome)

    # -- for the chat service -----------------------------------------------------------------
    def taken(self, task_id: str, agent_id: str) -> None:
        """The offer is over without the router saying so: the agent accepted or declined it."""
        offers = self.offers.get(task_id)
        if offers is not None:
            offers.pop(agent_id, None)
            if not offers:
                del self.offers[task_id]

    def offered(self, task_id: str, agent_id: str) -> bool:
        return agent_id in self.offers.get(task_id, {})

    def offered_to(self, agent_id: str) -> dict[str, float]:
        """The chats ringing `agent_id` now, with when each offer rings out."""
        return {task: agents[agent_id] for task, agents in self.offers.items() if agent_id in agents}

    def forget(self, task_id: str) -> None:
        self.offers.pop(task_id, None)
