"""Real implementations of the flow services (`ivrpowers.flows.services`).

Only what exists for real: a system clock and an HTTP client. There is no recorder or ACD yet;
a run is given None for them, and a node that needs one fails with a flow error naming it.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from ivrpowers.flows.services import HttpError, HttpResponse

__all__ = ["MAX_BODY", "AiohttpHttp", "SystemClock"]

MAX_BODY = 1 << 20  # a web service's answer to a flow: a lookup, not a download


class SystemClock:
    """The system clock, in one time zone (an IANA name such as "Europe/Paris", or a tzinfo)."""

    def __init__(self, tz: str | tzinfo = "UTC") -> None:
        self._tz = ZoneInfo(tz) if isinstance(tz, str) else tz

    @property
    def tz(self) -> tzinfo:
        return self._tz

    def now(self) -> datetime:
        return datetime.now(self._tz)


class AiohttpHttp:
    """`flows.services.Http` over one aiohttp session (a keep-alive pool shared by every call).

    Created outside a running loop is fine: the session is made on first use. `close()` it.
    """

    def __init__(self, *, max_connections: int = 100, user_agent: str = "ivrpowers") -> None:
        self._max_connections = max_connections
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers={"User-Agent": self._user_agent},
                # Flows call the services their operator configured; an HTTP(S)_PROXY meant for
                # browsing must not capture them silently.
                trust_env=False,
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        timeout: float = 5.0,
    ) -> HttpResponse:
        try:
            async with self._http().request(
                method,
                url,
                headers=dict(headers or {}),
                json=json,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                raw = await response.content.read(MAX_BODY + 1)
                if len(raw) > MAX_BODY:
                    raise HttpError(f"{method} {url}: the answer is larger than {MAX_BODY // 1024} KiB")
                status, got_headers = response.status, dict(response.headers)
                content_type, charset = response.content_type, response.charset or "utf-8"
        except TimeoutError:
            raise HttpError(f"{method} {url}: no answer within {timeout:g}s") from None
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a malformed URL
            raise HttpError(f"{method} {url}: {exc or type(exc).__name__}") from None
        text = raw.decode(charset, errors="replace")
        body: Any = text
        if content_type == "application/json" or content_type.endswith("+json"):
            try:
                body = jsonlib.loads(text) if text.strip() else None
            except ValueError:
                pass  # says JSON, isn't: the node sees the text
        return HttpResponse(status=status, headers=got_headers, body=body)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
