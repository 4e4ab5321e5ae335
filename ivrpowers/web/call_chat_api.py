"""`POST /api/call/chat`: the /call page opens a chat with the SIP account it already holds.

A website's backend opens chats with the API token (`POST /api/chats`); the /call page has no such
token, only the browser account its fragment gives it (`endpoint create --webrtc`). That account's
password opens a chat here, in the queue the page names, and the answer is the same `customer_token`
a backend would hand its visitor: from then on the page follows and writes in that chat alone.

Only a browser account may: a phone's or a trunk's password opens no chat (they are not meant to be
typed into a web page). Wrong passwords are throttled per account as the agents' sign-in is
(`agent_auth.Throttle`), and an account holds `MAX_OPEN_PER_ACCOUNT` open chats at most, so one
leaked password cannot fill a queue.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ivrpowers.chats.schemas import CustomerName, Name, Text
from ivrpowers.chats.service import ChatService
from ivrpowers.endpoints.accounts import MAX_NAME
from ivrpowers.endpoints.accounts import NAME as ACCOUNT_NAME
from ivrpowers.resources import asterisk_templates
from ivrpowers.store.db import Database
from ivrpowers.store.endpoints import EndpointRepository
from ivrpowers.web.agent_api import PasswordCheck
from ivrpowers.web.agent_auth import Throttle
from ivrpowers.web.chats_api import CALL_CHAT_PATH, api_error, guarded, read_body
from ivrpowers.web.openapi import ERROR, Api

AccountKind = Callable[[str], Awaitable[str | None]]  # account name -> "webrtc", "phone", or None (none such)
BROWSER = "webrtc"
MAX_OPEN_PER_ACCOUNT = 3
# The first line of a chat opened without one: the customer asked for a chat, nothing more yet.
FIRST_LINE = "(opened a chat from the call page)"


class CallChat(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    user: Annotated[str, Field(max_length=MAX_NAME, pattern=ACCOUNT_NAME.pattern)]
    password: Annotated[str, Field(max_length=200)]
    queue: Name
    name: CustomerName | None = None  # what the agent sees; the account's name without it
    message: Text | None = None  # the customer's first line


_OPENED = {"type": "object", "required": ["chat_id", "customer_token", "status"], "properties": {
    "chat_id": {"type": "string"}, "status": {"type": "string"},
    "customer_token": {"type": "string", "description": "opens this chat only (`/api/chats/{chat_id}/...`)"}}}


@functools.cache
def static_browsers() -> frozenset[str]:
    """The browser accounts pjsip.conf itself defines (the demo's `webrtc1`): sections made from
    its `webrtc-user` template. They have no row in the endpoints table."""
    text = (asterisk_templates() / "pjsip.conf").read_text()
    return frozenset(re.findall(r"^\[([^\]]+)\]\(webrtc-user\)", text, re.M))


def stored_kinds(db: Database) -> AccountKind:
    """Each account's kind as `endpoint create` stored it (pjsip.conf's browser accounts: webrtc)."""
    endpoints = EndpointRepository(db)

    async def kind(name: str) -> str | None:
        record = await endpoints.get(name)
        if record is not None:
            return record.kind
        return BROWSER if name in static_browsers() else None

    return kind


def add_call_chat(api: Api, chats: ChatService, password_ok: PasswordCheck, kind_of: AccountKind,
                  throttle: Throttle | None = None) -> None:
    throttle = throttle or Throttle()
    opened: dict[str, list[str]] = {}  # account -> the chats it opened (those still open count)

    def still_open(user: str) -> list[str]:
        return [chat_id for chat_id in opened.get(user, []) if chat_id in chats.live]

    async def open_chat(request: web.Request) -> web.Response:
        body: CallChat = await read_body(request, CallChat)
        if wait := throttle.locked(body.user):
            raise web.HTTPTooManyRequests(
                text=json.dumps({"error": f"too many wrong passwords: try again in {wait:.0f} s"}),
                content_type="application/json", headers={"Retry-After": str(int(wait) + 1)})
        if not await password_ok(body.user, body.password):
            throttle.failed(body.user)
            raise api_error(401, "wrong account or password")  # the same whether the account exists or not
        throttle.succeeded(body.user)
        # After the password: who has none learns nothing of which accounts are browsers'.
        if await kind_of(body.user) != BROWSER:
            raise api_error(403, "only a browser account (endpoint create --webrtc) opens chats from the call page")
        if len(still_open(body.user)) >= MAX_OPEN_PER_ACCOUNT:
            raise api_error(429, f"this account has {MAX_OPEN_PER_ACCOUNT} open chats, its most: leave one first")
        chat, token = await chats.create(body.name or body.user, body.queue, body.message or FIRST_LINE)
        opened[body.user] = [*still_open(body.user), chat.id]
        return web.json_response({"chat_id": chat.id, "customer_token": token, "status": chat.status}, status=201)

    schema = CallChat.model_json_schema()
    api.add("POST", CALL_CHAT_PATH, guarded(open_chat), open=True, body=schema,
            summary="The /call page opens a chat in a queue with its browser account's password (open; wrong "
                    "passwords are throttled): a customer_token for that chat's own routes",
            returns={201: _OPENED, 400: ERROR, 401: ERROR, 403: ERROR, 409: ERROR, 413: ERROR, 422: ERROR,
                     429: ERROR, 503: ERROR})
