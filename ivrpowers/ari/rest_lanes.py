"""Websockets that carry REST requests only, beside the events websocket.

Asterisk runs one websocket's REST requests one at a time, each waiting for its channel's thread
(`ws_rest.py`), so with the events socket alone every request sent while another was in flight went
over HTTP: 41 % of them at 200 concurrent calls, each costing the controller about five times a
websocket request (`make bench-calls --profile`). A lane is one more websocket, registered as a
Stasis app of its own (`<app>-rest-<token>-<n>`) that no channel ever enters: Asterisk's channel,
bridge and playback resources answer a request whichever app's socket it came on, and an app with no
channels is sent no events. The token keeps two controllers on one Asterisk from replacing each
other's lanes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
import orjson

from .ws_rest import WsRequests

log = logging.getLogger("ivrpowers.ari")

Connect = Callable[[str], AbstractAsyncContextManager[aiohttp.ClientWebSocketResponse]]
_DATA = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


class RestLanes:
    """`count` REST-only websockets, each kept connected (with backoff) until `close()`."""

    def __init__(self, connect: Connect, app: str, count: int, *, timeout: float,
                 reconnect_min: float, reconnect_max: float) -> None:
        token = secrets.token_hex(3)
        self.apps = [f"{app}-rest-{token}-{n}" for n in range(1, count + 1)]
        self._connect = connect
        self._lanes = [WsRequests(timeout) for _ in self.apps]
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> int:
        """Lanes connected and answering."""
        return sum(lane.ready for lane in self._lanes)

    @property
    def in_flight(self) -> int:
        """Requests sent on the lanes and not answered yet."""
        return sum(lane.in_flight for lane in self._lanes)

    def idle(self) -> WsRequests | None:
        """A connected lane with no request in flight, if any."""
        for lane in self._lanes:
            if lane.ready and not lane.in_flight:
                return lane
        return None

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._keep(app, lane), name=f"ari-rest-lane-{app}")
                           for app, lane in zip(self.apps, self._lanes, strict=True)]

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, app: str, lane: WsRequests) -> None:
        delay = self.reconnect_min
        while True:
            answered, why = await self._session(app, lane)
            if answered:
                delay = self.reconnect_min
            log.debug("ARI REST lane %s %s; reconnecting", app, why)
            await asyncio.sleep(delay * random.uniform(0.75, 1.25))
            delay = min(delay * 2, self.reconnect_max)

    async def _session(self, app: str, lane: WsRequests) -> tuple[bool, str]:
        """Connect, probe, read answers until the socket ends: (answered anything, why it ended)."""
        answered = False
        try:
            async with self._connect(app) as ws:
                lane.attach(ws)
                probe = asyncio.create_task(lane.probe(timeout=5.0))
                try:
                    async for message in ws:
                        if message.type not in _DATA:
                            break
                        with contextlib.suppress(ValueError):
                            data = orjson.loads(message.data)
                            if isinstance(data, dict) and data.get("type") == "RESTResponse":
                                answered = True
                                lane.on_response(data)
                finally:
                    probe.cancel()
                return answered, f"closed ({ws.close_code})"
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            return answered, f"failed: {exc or type(exc).__name__}"
        finally:
            lane.detach("ARI REST lane closed")
