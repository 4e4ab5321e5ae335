"""`GET /api/events`: a websocket pushing the ACD's events as they happen, for wallboards and CRMs.

On connect the client gets one `{"kind": "snapshot", "at", "queues", "agents"}` message (the figures
of `/api/stats`), then every `AcdEvent` as JSON (`AcdEvent.to_dict`), in order. Optional filters,
each repeated or comma-separated, all of which must hold: `queue=` (an `agent_state` passes when
its agent is a member of one of them), `agent=`, `kinds=`.

The token: an `Authorization: Bearer` header as for the rest of `/api`, or, since a browser cannot
set headers on a websocket, the subprotocols `ivrpowers.events` and `bearer.<token>` together:
`new WebSocket(url, ["ivrpowers.events", "bearer." + token])`. The server answers with
`ivrpowers.events` only. Not a query parameter: URLs end up in access logs, proxies and browser
history; a subprotocol does not (and aiohttp, which logs offered subprotocols it does not know, is
never handed a token without ours beside it).

A client that falls `QUEUE_SIZE` events behind is closed with code 4000 ("too slow"): the ACD never
waits for a client.

`mode=stats` (what a wallboard asks for, and all a wallboard's view token gets): no events, only
snapshots: the first, then a fresh one soon after any event the filters pass (at most every
`STATS_EVERY` seconds) and at least every `STATS_IDLE` seconds. Snapshots carry figures, never a
caller's number or what they typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Iterable
from typing import Any

from aiohttp import WSCloseCode, web

from ivrpowers.acd.events import EVENT_KINDS, AcdEvent
from ivrpowers.web.agent_auth import AGENT, VIEWER
from ivrpowers.web.json_body import json_error
from ivrpowers.web.openapi import ERROR, Api, Param
from ivrpowers.web.stats_api import NAME, LiveAcd, snapshot

__all__ = ["EVENTS_PATH", "PROTOCOL", "QUEUE_SIZE", "TOO_SLOW", "add_events_route", "subprotocol_token_matches"]

EVENTS_PATH = "/api/events"
PROTOCOL = "ivrpowers.events"
TOKEN_PREFIX = "bearer."
QUEUE_SIZE = 1000  # events a client may be behind before it is dropped
MAX_CLIENTS = 100
TOO_SLOW = 4000  # a close code of the application's range
HEARTBEAT = 30.0  # seconds between pings: a client that vanished is noticed
STATS_EVERY = 0.25
STATS_IDLE = 5.0
MODES = ("events", "stats")

log = logging.getLogger("ivrpowers.web")


def offered_subprotocols(request: web.BaseRequest) -> list[str]:
    return [p.strip() for value in request.headers.getall("Sec-WebSocket-Protocol", []) for p in value.split(",")]


def subprotocol_token_matches(request: web.BaseRequest, token: str) -> bool:
    """For the events websocket only: whether a `bearer.<token>` subprotocol carries the token."""
    if request.path != EVENTS_PATH:
        return False
    expected = f"{TOKEN_PREFIX}{token}".encode()
    matched = False
    for offered in offered_subprotocols(request):
        try:
            raw = offered.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from bytes that are not UTF-8: no token of ours
            continue
        matched |= hmac.compare_digest(raw, expected)
    return matched





def _names(request: web.Request, key: str) -> frozenset[str] | None:
    values = [v.strip() for value in request.query.getall(key, []) for v in value.split(",") if v.strip()]
    return frozenset(values) if values else None


class _Client:
    """One websocket's filters and its queue of events to send."""

    def __init__(self, live: LiveAcd, queues: frozenset[str] | None, agents: frozenset[str] | None,
                 kinds: frozenset[str] | None, stats_only: bool = False) -> None:
        self.live, self.queues, self.agents, self.kinds = live, queues, agents, kinds
        self.stats_only = stats_only
        self.events: asyncio.Queue[AcdEvent] = asyncio.Queue(QUEUE_SIZE)
        self.changed = asyncio.Event()
        self.too_slow = asyncio.Event()

    def wants(self, event: AcdEvent) -> bool:
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.agents is not None and event.agent not in self.agents:
            return False
        if self.queues is None or event.queue in self.queues:
            return True
        members = self.live.stats.members
        return (event.kind == "agent_state" and event.agent is not None
                and any(event.agent in members.get(q, ()) for q in self.queues))

    def offer(self, event: AcdEvent) -> None:
        """Called by the ACD for every event, on its own turn of the event loop: never blocks."""
        if self.too_slow.is_set() or not self.wants(event):
            return
        if self.stats_only:
            self.changed.set()
            return
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            self.too_slow.set()

    def snapshot_agents(self) -> frozenset[str] | None:
        if self.agents is not None or self.queues is None:
            return self.agents
        members = self.live.stats.members
        return frozenset(a for q in self.queues for a in members.get(q, ()))

    def snapshot(self) -> dict[str, Any]:
        return snapshot(self.live, self.queues, self.snapshot_agents())

    async def send(self, ws: web.WebSocketResponse, first: dict[str, Any]) -> None:
        await ws.send_json(first)
        if self.stats_only:
            await self._send_snapshots(ws)
        while True:
            await ws.send_json((await self.events.get()).to_dict())

    async def _send_snapshots(self, ws: web.WebSocketResponse) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), STATS_IDLE)
            self.changed.clear()
            await ws.send_json(self.snapshot())
            await asyncio.sleep(STATS_EVERY)  # events in a burst make one snapshot, not one each


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    async for _ in ws:  # the stream is one way: what a client sends is read and ignored
        pass


async def _finish(tasks: Iterable[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def add_events_route(api: Api, live: LiveAcd) -> None:
    clients: set[web.WebSocketResponse] = set()

    async def events(request: web.Request) -> web.StreamResponse:
        kinds = _names(request, "kinds")
        mode = request.query.get("mode", "events")
        if mode not in MODES:
            raise json_error(web.HTTPBadRequest, f"no such mode {mode[:40]!r} (modes: {', '.join(MODES)})")
        if kinds is not None and not kinds <= set(EVENT_KINDS):
            unknown = sorted(kinds - set(EVENT_KINDS))[0][:40]
            raise json_error(web.HTTPBadRequest, f"no such kind {unknown!r} (kinds: {', '.join(EVENT_KINDS)})")
        offered = offered_subprotocols(request)
        if any(p.startswith(TOKEN_PREFIX) for p in offered) and (
                PROTOCOL not in offered or len(request.headers.getall("Sec-WebSocket-Protocol")) > 1):
            raise json_error(web.HTTPBadRequest, f"offer the subprotocol {PROTOCOL} with the token's, in one "
                             "Sec-WebSocket-Protocol header")
        ws = web.WebSocketResponse(protocols=(PROTOCOL,), heartbeat=HEARTBEAT, max_msg_size=4096)
        if not ws.can_prepare(request).ok:
            raise json_error(web.HTTPUpgradeRequired, f"{EVENTS_PATH} is a websocket: connect with an Upgrade: "
                             "websocket request", headers={"Upgrade": "websocket"})
        if len(clients) >= MAX_CLIENTS:
            raise json_error(web.HTTPServiceUnavailable, f"already {MAX_CLIENTS} clients: try again later")
        await ws.prepare(request)
        # A signed-in agent (its own token, not the API's) follows its own events only.
        agents = frozenset([request[AGENT]]) if AGENT in request else _names(request, "agent")
        client = _Client(live, _names(request, "queue"), agents, kinds, mode == "stats" or VIEWER in request)
        # Subscribed and photographed in one step of the loop: no event falls between the two.
        unsubscribe = live.subscribe(client.offer)
        first = client.snapshot()
        clients.add(ws)
        tasks = [asyncio.create_task(client.send(ws, first)), asyncio.create_task(_read_until_closed(ws)),
                 asyncio.create_task(client.too_slow.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            unsubscribe()
            clients.discard(ws)
            await _finish(tasks)
        if client.too_slow.is_set():
            log.info("events websocket from %s closed: more than %d events behind", request.remote, QUEUE_SIZE)
            await ws.close(code=TOO_SLOW, message=b"too slow")
        else:
            await ws.close()
        return ws

    async def close_all(app: web.Application) -> None:
        for ws in list(clients):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    api.app.on_shutdown.append(close_all)
    names = {"type": "array", "items": NAME}
    api.add("GET", EVENTS_PATH, events, summary=(
        "Websocket: a snapshot of the statistics, then every ACD event as it happens (JSON). The token as "
        "a bearer header, or as the subprotocols `ivrpowers.events` and `bearer.<token>` together"),
        params=[Param("queue", "query", names, "only these queues' events (their agents' states too)"),
                Param("agent", "query", names, "only these agents' events"),
                Param("kinds", "query", {"type": "array", "items": {"type": "string", "enum": list(EVENT_KINDS)}},
                      "only these kinds of event"),
                Param("mode", "query", {"type": "string", "enum": list(MODES)},
                      "`stats`: snapshots only, a fresh one after changes (a wallboard); default `events`")],
        returns={101: None, 400: ERROR, 426: ERROR, 503: ERROR})
