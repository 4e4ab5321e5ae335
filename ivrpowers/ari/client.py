"""`AriClient`: the REST helpers plus the events websocket, kept connected for the app's lifetime.

Lifecycle, in the order an integrator uses it::

    client = AriClient("http://127.0.0.1:8088/ari", "user", "secret", "ivrpowers")
    client.on_resync(adopt_calls)                 # register before start: the first resync counts
    client.subscribe("StasisStart", on_new_call)
    client.start()                                # background task running run()
    await client.wait_connected(timeout=10)
    ...
    await client.close()                          # stops the loop and the HTTP pool promptly

The websocket is what registers the Stasis app in Asterisk: while it is down, `Stasis(app)` in
the dialplan fails and no events are delivered. The client therefore reconnects forever, with
exponential backoff, and after each connect reports the calls already in the app (`on_resync`),
because any StasisStart sent while we were away is lost for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import orjson

from .dispatch import Dispatcher, E, EventHandler, ResyncHandler, Subscription
from .eager import run_now
from .errors import AriError
from .events import ApplicationReplaced, parse_event
from .http import Params, events_url
from .rest import AriRest
from .rest_lanes import RestLanes
from .ws_rest import WsRequests

log = logging.getLogger("ivrpowers.ari")


HEARTBEAT = 20.0
_ENDED = frozenset({aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED})


def _close_reason(ws: aiohttp.ClientWebSocketResponse, message: aiohttp.WSMessage, closed_by_us: bool) -> str:
    if closed_by_us:
        return f"closed by us ({ws.close_code})"  # drop_events_connection()
    if message.type is aiohttp.WSMsgType.CLOSE:  # Asterisk's close frame: its code and reason
        why = f"{message.data} {message.extra or ''}".strip()
        return f"closed by Asterisk ({why})"
    if ws.close_code is not None and ws.close_code != 1006:
        return f"closed by Asterisk ({ws.close_code})"
    return "lost (no close frame)"


class AriClient(AriRest):
    """ARI REST helpers (see `AriRest`) plus the events connection of one Stasis app.

    Handlers (`subscribe`, `on_resync`) run inside the reader, one at a time, in order; they must
    be quick (see `ivrpowers.ari.dispatch`). REST calls from inside a handler are fine; waiting
    inside a handler for a later *event* deadlocks, since that event is read only after the
    handler returns.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        reconnect_min: float = 0.5,
        reconnect_max: float = 10.0,
        request_timeout: float = 10.0,
        heartbeat: float = HEARTBEAT,
        rest_lanes: int = 5,
    ) -> None:
        super().__init__(base_url, username, password, app, request_timeout=request_timeout)
        self.heartbeat = heartbeat
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        self.events_url = events_url(self.base_url, app)
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._dispatcher = Dispatcher()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._dropping = False
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._start_task: asyncio.Task[None] | None = None
        self._connects = 0
        self._replaced = False
        self._ws_rest = WsRequests(request_timeout)
        self._lanes = RestLanes(self._lane_socket, app, rest_lanes, timeout=request_timeout,
                                reconnect_min=reconnect_min, reconnect_max=reconnect_max)
        self._probe: asyncio.Task[bool] | None = None
        self._probe_logged = False
        # Why the events connection is not up (None while it is): for health reports.
        self.problem: str | None = "not connected yet"
        self.replacements = 0

    # --- registration ---------------------------------------------------------------------

    def subscribe(
        self,
        event_type: str | type[E],
        handler: EventHandler[E],
        *,
        channel_id: str | None = None,
    ) -> Subscription:
        """Call `handler(event)` for each event of `event_type` ("*" for all).

        `event_type` is an ARI type name, or an event class (`StasisStart`; `Event` means all),
        which lets a type checker match it with the handler's parameter.

        With `channel_id`, only events about that channel: its `channel.id`, or for playback and
        recording events a `target_uri` of "channel:<id>". `handler` may be sync or async.
        """
        return self._dispatcher.subscribe(event_type, handler, channel_id=channel_id)

    def on_resync(self, handler: ResyncHandler) -> Subscription:
        """Call `handler(channels, reconnected)` after every successful connect.

        `channels` are the channels currently in our Stasis app (from GET /channels);
        `reconnected` is False for this client's first connection, True afterwards. It runs
        before any event of the new connection is dispatched, so a StasisStart can still follow
        for a channel just listed: adoption must be idempotent.
        """
        return self._dispatcher.on_resync(handler)

    async def request(self, method: str, path: str, *, params: Params | None = None, json: Any = None) -> Any:
        """`AriHttp.request`, sent over an idle websocket when there is one (`_idle_websocket`), else
        over HTTP, where requests run side by side."""
        if ws := self._idle_websocket(awaited_here=True):
            return await ws.request(method, path, params=params, json=json)
        return await super().request(method, path, params=params, json=json)

    def request_now(self, method: str, path: str) -> asyncio.Future[Any]:
        """`request`, written to an idle websocket before this returns (its reply awaited in a task),
        not on a later turn of the loop behind the events and work queued before it: a new call's
        answer. With no websocket idle, over HTTP in a task (aiohttp's timeouts need a task of their own)."""
        if ws := self._idle_websocket(awaited_here=False):
            return run_now(ws.request(method, path))
        return asyncio.ensure_future(super().request(method, path))

    def _idle_websocket(self, *, awaited_here: bool) -> WsRequests | None:
        """The events websocket if it takes REST requests and has none in flight, else an idle REST
        lane (`rest_lanes.py`), else None.

        One at a time per socket: Asterisk runs a websocket's requests in order, each waiting for the
        channel's own thread, so a second one would queue behind the first. Not the events socket for
        a reply `awaited_here` inside its own reader (an event handler, the resync): the reply would
        queue behind it."""
        ws_rest = self._ws_rest
        if ws_rest.ready and not ws_rest.in_flight and not (awaited_here and asyncio.current_task() is self._loop_task):
            return ws_rest
        return self._lanes.idle()

    @property
    def rest_over_websocket(self) -> bool:
        """True while REST requests go over the events websocket rather than HTTP."""
        return self._ws_rest.ready

    @property
    def ws_requests_in_flight(self) -> int:
        """REST requests written to a websocket (the events socket, the lanes), not answered yet."""
        return self._ws_rest.in_flight + self._lanes.in_flight

    @property
    def rest_lanes_ready(self) -> int:
        """REST-only websockets connected and answering (`rest_lanes.py`)."""
        return self._lanes.ready

    # --- state ----------------------------------------------------------------------------

    @property
    def connects(self) -> int:
        """Successful connections so far: more than one means it reconnected."""
        return self._connects

    @property
    def is_connected(self) -> bool:
        """True while the websocket is up and its resync has been delivered."""
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until `is_connected`; raises TimeoutError after `timeout` seconds."""
        if self._stopping.is_set():
            raise RuntimeError("AriClient is closed")
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    # --- running --------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run `run()` in a background task and return it (it ends after `close()`)."""
        if self._start_task is None or self._start_task.done():
            self._start_task = asyncio.create_task(self.run(), name=f"ari-client-{self.app}")
        return self._start_task

    async def run(self) -> None:
        """Keep the events connection up until `close()`; returns once closed.

        The loop lives in its own task so that `close()` can stop it wherever it is (backoff,
        connect, resync, a slow handler) without cancelling the caller's task.
        """
        if self._stopping.is_set():
            raise RuntimeError("AriClient is closed")
        if self._loop_task is not None and not self._loop_task.done():
            raise RuntimeError("AriClient.run() is already running")
        self._loop_task = asyncio.create_task(self._loop(), name=f"ari-events-{self.app}")
        self._lanes.start()
        try:
            await self._loop_task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if self._stopping.is_set() and me is not None and me.cancelling() == 0:
                return  # close() cancelled the loop, nobody cancelled us
            raise

    async def drop_events_connection(self) -> bool:
        """Close the current events websocket; the client reconnects and resyncs as after a drop.

        An operator tool (force a fresh connection and resync without restarting the controller)
        and the way tests exercise the reconnect path. Returns False when not connected.
        """
        ws = self._ws
        if ws is None:
            return False
        log.warning("ARI events connection dropped on request")
        self._dropping = True
        await ws.close(message=b"dropped on request")
        return True

    async def close(self) -> None:
        """Stop the events loop, close the websocket and the HTTP pool. Idempotent.

        Safe to call from a handler: the loop then stops once the handler returns.
        """
        self._stopping.set()
        loop_task, start_task = self._loop_task, self._start_task
        inside_loop = loop_task is not None and loop_task is asyncio.current_task()
        if inside_loop:
            # We are the reader, so we cannot wait for it; closing the socket ends its loop.
            if self._ws is not None:
                await self._ws.close()
        else:
            if loop_task is not None and not loop_task.done():
                loop_task.cancel()
                # asyncio.wait, not await: the task's CancelledError must not look like ours.
                await asyncio.wait({loop_task})
            if start_task is not None and not start_task.done():
                await asyncio.wait({start_task})
        await self._lanes.close()
        await super().close()

    # --- internals ------------------------------------------------------------------------

    async def _loop(self) -> None:
        delay = self.reconnect_min
        while not self._stopping.is_set():
            was_up, reason = await self._session_once()
            if self._stopping.is_set():
                break
            if self._replaced:
                # Another connection took our app: taking it straight back would make the two fight.
                self._replaced = False
                delay = self.reconnect_max
            elif was_up:
                delay = self.reconnect_min
            self.problem = f"ARI events connection {reason}"
            # Jitter: controllers cut off together must not all come back in the same instant.
            wait = delay * random.uniform(0.75, 1.25)
            log.warning("ARI events connection %s; reconnecting in %.2fs", reason, wait)
            with contextlib.suppress(TimeoutError):  # the backoff sleep, cut short by close()
                await asyncio.wait_for(self._stopping.wait(), wait)
            delay = min(delay * 2, self.reconnect_max)

    async def _session_once(self) -> tuple[bool, str]:
        """Connect, resync, read until the connection ends. Returns (was up, why it ended)."""
        up = False
        self._dropping = False
        try:
            # aiohttp, like the REST calls: the same pool and auth, and its C frame reader costs a
            # fraction of a pure-Python one per event. No proxy: aiohttp ignores HTTP(S)_PROXY unless
            # told to trust the environment, and the link to Asterisk must not go through one.
            async with self._http().ws_connect(
                self.events_url,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0),
                autoping=True,
                # A ping every `heartbeat` s, given up when its pong is half that late: a vanished
                # Asterisk host sends no FIN, and a silent socket would look healthy.
                heartbeat=self.heartbeat,
                compress=0,
                max_msg_size=0,  # a resync after a long outage can bring large events
                headers={"User-Agent": "ivrpowers"},
            ) as ws:
                self._ws = ws
                # The socket reads nothing until resync is done, so events queue behind it.
                channels = [c for c in await self.list_channels() if c.in_stasis_app(self.app)]
                reconnected = self._connects > 0
                self._connects += 1
                up = True
                log.info(
                    "ARI events %s to %s (%d channel(s) in app %s)",
                    "reconnected" if reconnected else "connected",
                    self.events_url,
                    len(channels),
                    self.app,
                )
                await self._dispatcher.resync(channels, reconnected)
                self._ws_rest.attach(ws)
                self._probe = asyncio.create_task(self._probe_ws_rest(), name="ari-ws-rest-probe")
                self._connected.set()
                self.problem = None
                while True:
                    message = await ws.receive()
                    kind = message.type
                    if kind is aiohttp.WSMsgType.TEXT or kind is aiohttp.WSMsgType.BINARY:
                        await self._on_message(message.data)
                    elif kind is aiohttp.WSMsgType.ERROR:
                        return up, f"failed: {ws.exception() or 'websocket error'}"
                    elif kind in _ENDED:
                        return up, _close_reason(ws, message, self._dropping)
                    if self._stopping.is_set():
                        return up, "closed by the client"
                    if self._replaced:
                        return up, "replaced: another connection registered the same app"
        except aiohttp.WSServerHandshakeError as exc:
            hint = " (check the ARI user and password)" if exc.status in (401, 403) else ""
            return up, f"refused: HTTP {exc.status}{hint}"
        except AriError as exc:
            return up, f"resync failed: {exc}"
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            return up, f"failed: {exc or type(exc).__name__}"
        finally:
            self._ws = None
            self._connected.clear()
            self._ws_rest.detach("ARI events connection lost")
            if self._probe is not None:
                self._probe.cancel()
                self._probe = None

    def _lane_socket(self, app: str) -> AbstractAsyncContextManager[aiohttp.ClientWebSocketResponse]:
        return self._http().ws_connect(
            events_url(self.base_url, app), timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0),
            autoping=True, heartbeat=self.heartbeat, compress=0, headers={"User-Agent": "ivrpowers"},
        )

    async def _probe_ws_rest(self) -> bool:
        if await self._ws_rest.probe(timeout=5.0):
            if not self._probe_logged:
                self._probe_logged = True
                log.info("ARI REST requests go over the events websocket")
            return True
        if not self._probe_logged and self._ws is not None:
            self._probe_logged = True
            log.warning("Asterisk does not answer REST requests on the events websocket (it needs 22.4 or "
                        "later): using HTTP")
        return False

    async def _on_message(self, message: str | bytes) -> None:
        try:
            data: Any = orjson.loads(message)
        except ValueError:
            log.warning("ARI sent a non-JSON message, ignored: %.200r", message)
            return
        if not isinstance(data, Mapping):
            log.warning("ARI sent a non-object message, ignored: %.200r", message)
            return
        if data.get("type") == "RESTResponse":
            self._ws_rest.on_response(data)
            return
        if data.get("type") != "ApplicationReplaced" and not self._dispatcher.wants(data.get("type")):
            return  # a dozen events a call nobody handles (ChannelVarset...): validating them costs CPU
        event = parse_event(data)
        if isinstance(event, ApplicationReplaced):
            # Asterisk sends nothing more on this socket: sitting on it would look healthy and be deaf.
            log.error("ARI app %s was taken over by another websocket: backing off", self.app)
            self._replaced = True
            self.replacements += 1
            self._connected.clear()
        await self._dispatcher.dispatch(event)
