"""REST requests over the events websocket (Asterisk 20.14, 21.9, 22.4 and later).

Asterisk takes `{"type": "RESTRequest", ...}` messages on the app's events websocket and answers
each with a `RESTResponse` event on the same socket, the same status and body an HTTP request would
get, authenticated by the websocket's own upgrade. A request that way costs the controller a small
JSON frame each way instead of an HTTP exchange through aiohttp's client, which was the largest
part of its CPU per call (`make bench-calls`).

Asterisk reads and runs them one at a time per websocket, in order, and most wait for the channel's
own thread: the client sends one at a time this way and the others over HTTP (`AriClient.request`).
Asterisk releases before those never answer: the client probes once per connection and keeps HTTP
until a probe is answered.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from .errors import AriConnectionError, AriError, error_for_status
from .http import Params, encode_params, error_message


class TextSocket(Protocol):
    async def send_str(self, data: str) -> None: ...


class WsRequests:
    """Requests in flight over one websocket at a time, matched to their answers by request id."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._ws: TextSocket | None = None
        # request id -> (future, method, path, deadline on the loop's clock)
        self._pending: dict[str, tuple[asyncio.Future[Any], str, str, float]] = {}
        self._ids = itertools.count(1)
        # One sweep timer for all requests, not one timeout each: a timer per request cost more
        # than the rest of the request's Python. A late answer is noticed within `_sweep_every`.
        self._sweep_every = min(0.5, timeout / 4)
        self._sweeper: asyncio.TimerHandle | None = None
        self.ready = False  # the current socket answered a probe: requests may go over it

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    def attach(self, ws: TextSocket) -> None:
        self._ws = ws
        self.ready = False

    def detach(self, why: str) -> None:
        """The socket is gone: every request still waiting fails as an unreachable Asterisk would."""
        self._ws = None
        self.ready = False
        pending, self._pending = self._pending, {}
        for future, method, path, _ in pending.values():
            if not future.done():
                future.set_exception(AriConnectionError(method, path, why))

    async def probe(self, timeout: float) -> bool:
        """Whether this Asterisk answers REST requests on the websocket; sets `ready` if so."""
        try:
            await self._send("GET", "/asterisk/ping", None, None, timeout)
        except AriError:
            return False
        self.ready = self._ws is not None
        return self.ready

    async def request(self, method: str, path: str, *, params: Params | None = None, json: Any = None) -> Any:
        """Like `AriHttp.request`: the decoded body or None, `AriError`s for failures."""
        return await self._send(method, path, params, json, self.timeout)

    def on_response(self, message: Mapping[str, Any]) -> None:
        """A `RESTResponse` event: complete the request it answers (an unknown id was given up on)."""
        entry = self._pending.pop(str(message.get("request_id", "")), None)
        if entry is None:
            return
        future, method, path, _ = entry
        if future.done():
            return
        status = message.get("status_code")
        status = status if isinstance(status, int) else 500
        body = message.get("message_body")
        body = body if isinstance(body, str) else ""
        # The same rules as an HTTP answer (`AriHttp.request`).
        if status >= 400:
            reason = message.get("reason_phrase")
            future.set_exception(error_for_status(status, method, path, error_message(body, str(reason or ""))))
            return
        try:
            future.set_result(orjson.loads(body) if body.strip() else None)
        except ValueError:
            future.set_exception(AriError(status, method, path, f"response is not JSON: {body[:200]!r}"))

    async def _send(self, method: str, path: str, params: Params | None, json: Any, timeout: float) -> Any:
        ws = self._ws
        if ws is None:
            raise AriConnectionError(method, path, "ARI events connection is down")
        request_id = str(next(self._ids))
        message: dict[str, Any] = {"type": "RESTRequest", "request_id": request_id, "method": method,
                                   "uri": path.lstrip("/")}
        if pairs := encode_params(params):
            message["query_strings"] = [{"name": name, "value": value} for name, value in pairs]
        if json is not None:
            message["content_type"] = "application/json"
            message["message_body"] = orjson.dumps(json).decode()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[request_id] = (future, method, path, loop.time() + timeout)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep)
        try:
            await ws.send_str(orjson.dumps(message).decode())
            return await future
        except (ConnectionError, RuntimeError) as exc:  # aiohttp: the socket closed under the send
            raise AriConnectionError(method, path, str(exc) or type(exc).__name__) from exc
        finally:
            self._pending.pop(request_id, None)

    def _sweep(self) -> None:
        """Fail the requests past their deadline; come back while any are waiting."""
        self._sweeper = None
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for request_id, (future, method, path, deadline) in list(self._pending.items()):
            if deadline <= now:
                del self._pending[request_id]
                if not future.done():
                    future.set_exception(AriConnectionError(method, path, "no answer in time"))
        if self._pending:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep)
