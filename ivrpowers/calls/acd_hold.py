"""What an agent does with the caller of a queue conversation: hold, take back, transfer.

On hold the caller leaves the conversation's bridge and gets the queue's hold (its video hold for a
video caller) while the agent stays in the bridge alone; taken back, the hold stops and the caller
rejoins. The call's timeline says when (`held`, `unheld`). A transfer sends the caller to another
queue: the agent's leg ends (the agent's task is done) and the caller's queue node waits again there.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivrpowers.acd.model import AcdError
from ivrpowers.ari import AriError

if TYPE_CHECKING:
    from ivrpowers.calls.acd_voice import Ticket
    from ivrpowers.calls.session import CallContext


@dataclass
class Conversation:
    ticket: Ticket
    bridge_id: str
    leg_id: str
    held: bool = False
    transferred_to: str | None = None


async def set_hold(ctx: CallContext, conversation: Conversation, agent_id: str, on: bool) -> None:
    if conversation.held == on:
        return
    session = conversation.ticket.session
    call, journal = session.call, session.journal
    try:
        if on:
            await ctx.client.remove_from_bridge(conversation.bridge_id, session.channel_id)
            call.left_agent()
            await call.hold(conversation.ticket.hold)
        else:
            await call.join_agent()
            await ctx.client.add_to_bridge(conversation.bridge_id, session.channel_id)
    except AriError as exc:
        raise AcdError(f"cannot {'hold' if on else 'take back'} the caller: {exc}") from exc
    conversation.held = on
    journal.write("held" if on else "unheld", journal.last_node, {"agent": agent_id})


async def end_hold(conversation: Conversation) -> None:
    """The conversation is over while the caller was on hold: the hold stops (their flow goes on)."""
    if conversation.held:
        call = conversation.ticket.session.call
        with contextlib.suppress(AriError):
            await call.hold(None)


async def transfer(ctx: CallContext, conversation: Conversation, agent_id: str, queue: str) -> None:
    """Send the caller to `queue` (checked by the caller): out of the bridge, the agent's leg hung up;
    the conversation's end tells the caller's queue node where to wait (`transferred_to`)."""
    session = conversation.ticket.session
    conversation.transferred_to = queue
    with contextlib.suppress(AriError):  # held: not in the bridge
        await ctx.client.remove_from_bridge(conversation.bridge_id, session.channel_id)
    session.call.left_agent()
    session.journal.write("transferred", session.journal.last_node, {"agent": agent_id, "to": queue})
    with contextlib.suppress(AriError):  # gone already: the conversation ends all the same
        await ctx.client.hangup(conversation.leg_id)
