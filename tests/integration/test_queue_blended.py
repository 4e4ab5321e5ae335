"""Capacity across channels on the real Asterisk: an agent talking to a caller is offered a chat
when its capacity allows it (a `blended` agent, chat capacity 1), and a second chat waits until
the first one is closed: at capacity, no offer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .acd_helpers import Rig
from .conftest import AsteriskUnderTest, ControllerUnderTest
from .sipp import ExpectHangup

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("controller", ["sqlite"], indirect=True)]


@pytest.fixture
async def rig(asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with Rig.open(asterisk, controller, tmp_path) as opened:
        yield opened


async def test_a_chat_is_offered_to_an_agent_on_a_call_within_capacity_and_waits_at_capacity(rig: Rig) -> None:
    await rig.phone("qphone-a", talk=30.0)  # answers, and talks until the caller is done
    rig.login("blend")
    call = rig.call("7401", ExpectHangup(60), timeout=90)
    await rig.controller.wait_event("7401", "queue_answered")
    assert (await rig.wait_state("blend", "busy"))["tasks"]  # on the call

    first = open_chat(rig, "Lucía", "My order is late")
    offered = await chats_of(rig, lambda c: [x["id"] for x in c["offered"]] == [first])
    assert offered["active"] == [] and rig.state("blend")["state"] == "busy"  # the call goes on meanwhile
    rig.api("POST", f"/api/agents/blend/chats/{first}/accept")
    second = open_chat(rig, "Marc", "Hello?")
    now = await rig.wait_waiting("acd-blend", 1)  # the second chat waits: the agent holds its one chat
    assert now["tasks"] == [second]
    held = await chats_of(rig, lambda c: [x["id"] for x in c["active"]] == [first])
    assert held["offered"] == []
    assert len(rig.state("blend")["tasks"]) == 2  # the call and the first chat

    rig.api("POST", f"/api/agents/blend/chats/{first}/close")
    await chats_of(rig, lambda c: [x["id"] for x in c["offered"]] == [second])  # room again: offered
    await rig.wait_waiting("acd-blend", 0)
    rig.api("POST", f"/api/agents/blend/chats/{second}/accept")
    rig.api("POST", f"/api/agents/blend/chats/{second}/close")
    call.cancel()


def open_chat(rig: Rig, name: str, message: str) -> str:
    made = rig.api("POST", "/api/chats", {"customer_name": name, "queue": "acd-blend", "message": message})
    chat_id: str = made["id"]
    return chat_id


async def chats_of(rig: Rig, ready: Any, timeout: float = 15.0) -> dict[str, Any]:
    return await rig.wait_until(lambda: rig.api("GET", "/api/agents/blend/chats"), ready, "the agent's chats", timeout)
