"""The HTTP half of the ARI client: one keep-alive pool and one `request` primitive.

`AriHttp` owns the aiohttp session (Basic auth, timeouts) and turns HTTP outcomes into `AriError`s;
`ivrpowers.ari.rest.AriRest` adds the typed ARI operations on top of it, and
`ivrpowers.ari.client.AriClient` the events websocket, on the same session.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeAlias
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import aiohttp
import orjson
from yarl import URL

from .errors import AriConnectionError, AriError, error_for_status

Scalar: TypeAlias = str | int | float | bool
Params: TypeAlias = Mapping[str, Scalar | Sequence[Scalar] | None]


def basic_auth_header(username: str, password: str) -> str:
    """The `Authorization` header value for ARI's HTTP basic auth."""
    encode = getattr(aiohttp, "encode_basic_auth", None)
    if encode is not None:
        return str(encode(username, password))
    # aiohttp < 3.14 has no helper (and 3.14 deprecates BasicAuth): same RFC 7617 rule by hand.
    if ":" in username:
        raise ValueError('A ":" is not allowed in the username (RFC 7617)')
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


_JSON = {"Content-Type": "application/json"}


def events_url(base_url: str, app: str) -> str:
    """The events websocket URL for `app`: http(s)://h/ari -> ws(s)://h/ari/events?app=...

    `subscribeAll=false`: we want our app's channels and bridges only, not every channel on a
    shared Asterisk.
    """
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"ARI base URL must be http(s)://..., got {base_url!r}")
    query = urlencode({"app": app, "subscribeAll": "false"}, quote_via=quote)
    return urlunsplit((scheme, parts.netloc, parts.path + "/events", query, ""))


def encode_params(params: Params | None) -> list[tuple[str, str]]:
    """Query parameters as (name, value) pairs, in the form Asterisk parses.

    None drops the parameter, booleans become "true"/"false" (aiohttp would refuse a bool), and a list
    becomes one pair per item. Beware: Asterisk keeps only the *last* of repeated parameters (its
    generated handlers overwrite, see res/res_ari_channels.c), so a multi-valued ARI parameter
    such as `media` or `channel` must go comma-joined or in the JSON body; the typed helpers
    (`rest.py`) use the body.
    """
    pairs: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        if value is None:
            continue
        values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        for item in values:
            pairs.append((name, _scalar(item)))
    return pairs


def _scalar(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_message(body: bytes | str, reason: str | None) -> str:
    """What an ARI error answer says: its JSON `message`, else its text, else the reason phrase."""
    text = (body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body).strip()
    try:
        decoded = orjson.loads(text)
    except ValueError:
        decoded = None
    message = decoded.get("message") if isinstance(decoded, Mapping) else None
    if isinstance(message, str):
        return message
    return text[:200] or (reason or "")


class AriHttp:
    """The HTTP transport to the ARI of one Asterisk.

    `base_url` is the ARI root, e.g. `http://127.0.0.1:8088/ari`. `app` is our Stasis application
    name. The aiohttp session is created on first use, inside the running event loop.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        request_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._auth_header = basic_auth_header(username, password)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the HTTP connection pool; later requests fail. Safe to call more than once."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": self._auth_header},
                timeout=self._timeout,
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
    ) -> Any:
        """Call ARI and return the decoded JSON body, or None for an empty (204) answer.

        `path` is relative to `base_url` and starts with "/"; quote ids in it yourself. List
        values in `params` are sent as repeated query arguments (see `encode_params` for why the
        typed helpers do not rely on that for multi-valued ARI parameters).
        Raises an `AriError` subclass for an HTTP error, `AriConnectionError` when Asterisk
        cannot be reached or does not answer within `request_timeout`.
        """
        status, body = await self._exchange(method, path, params, json)
        if status == 204 or not body.strip():
            return None
        try:
            return orjson.loads(body)
        except ValueError as exc:
            raise AriError(status, method, path, f"response is not JSON: {body[:200]!r}") from exc

    async def request_bytes(self, method: str, path: str, *, params: Params | None = None) -> bytes:
        """Like `request`, for a binary answer (a stored recording's file): the body as it came."""
        return (await self._exchange(method, path, params, None))[1]

    async def _exchange(self, method: str, path: str, params: Params | None, json: Any) -> tuple[int, bytes]:
        if self._closed:
            raise AriConnectionError(method, path, "client is closed")
        if not path.startswith("/"):
            path = "/" + path
        url = self.base_url + path
        if pairs := encode_params(params):
            url += "?" + urlencode(pairs, quote_via=quote)
        payload, headers = (None, None) if json is None else (orjson.dumps(json), _JSON)
        try:
            # Built and quoted here, once: yarl re-parsing and re-quoting each call's URL costs
            # more than the rest of the request's Python.
            async with self._http().request(
                method, URL(url, encoded=True), data=payload, headers=headers
            ) as response:
                status, reason = response.status, response.reason
                body = await response.read()
        except TimeoutError as exc:
            raise AriConnectionError(method, path, f"no answer within {self._timeout.total:g}s") from exc
        except aiohttp.ClientError as exc:
            raise AriConnectionError(method, path, str(exc) or type(exc).__name__) from exc
        if status >= 400:
            raise error_for_status(status, method, path, error_message(body, reason))
        return status, body
