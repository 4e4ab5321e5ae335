"""Dialed number -> the published version of the flow routed to it.

A number's answer is fresh for `ttl` seconds (1 s by default). Until `max_stale` (3 s) the next call
to it still takes the known answer at once while a refresh runs beside it: a busy number never waits
on the database (a lookup queued behind a CDR batch was the slowest part of call setup). An answer
older than that is looked up before the call goes on, so a quiet number's first call after a
`route set` or `flow publish` sees it; during a database outage calls keep the routes they had. So
changes take effect within about `max_stale` on every controller sharing the database; with
`ttl=0` every call looks up.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ivrpowers.flows import Flow, FlowError, load_flow
from ivrpowers.store.flows import FlowNotFound, FlowRepository
from ivrpowers.store.routes import RouteRepository

log = logging.getLogger("ivrpowers.calls")


class RoutingError(LookupError):
    """No flow can take this call: the reason goes into the CDR."""


class Router:
    def __init__(self, routes: RouteRepository, flows: FlowRepository, *, ttl: float = 1.0,
                 max_stale: float = 3.0) -> None:
        self.routes = routes
        self.flows = flows
        self.ttl = ttl
        self.max_stale = max_stale
        self._parsed: dict[tuple[str, int], Flow] = {}  # versions are immutable: parse each once
        self._numbers: dict[str, tuple[float, tuple[str, int | None] | None]] = {}
        self._refreshing: dict[str, asyncio.Task[tuple[str, int | None] | None]] = {}

    async def settle(self) -> None:
        """Wait for the refreshes under way (tests, shutdown)."""
        while self._refreshing:
            await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def _published_flow(self, dialed: str) -> tuple[str, int | None] | None:
        cached = self._numbers.get(dialed)
        if cached is None or self.ttl <= 0:
            return await self._lookup(dialed)
        if self._too_old(cached[0]) and dialed not in self._refreshing:
            return await self._refresh(dialed, cached[1])
        if time.monotonic() - cached[0] >= self.ttl and dialed not in self._refreshing:
            task = asyncio.create_task(self._refresh(dialed, cached[1]), name=f"route-refresh-{dialed}")
            self._refreshing[dialed] = task
            task.add_done_callback(lambda _: self._refreshing.pop(dialed, None))
        return cached[1]

    def _too_old(self, cached_at: float) -> bool:
        """A route this old is looked up again before a call may use it."""
        return time.monotonic() - cached_at >= max(self.max_stale, self.ttl)

    async def _lookup(self, dialed: str) -> tuple[str, int | None] | None:
        found = await self.routes.published_flow(dialed)
        now = time.monotonic()
        if len(self._numbers) > 10_000:  # numbers dialed by a scanner must not grow it forever
            self._numbers = {k: v for k, v in self._numbers.items() if now - v[0] < self.ttl}
        self._numbers[dialed] = (now, found)
        return found

    async def _refresh(self, dialed: str, known: tuple[str, int | None] | None) -> tuple[str, int | None] | None:
        """The number's route looked up again, or `known` when the database is away (calls keep it)."""
        try:
            return await self._lookup(dialed)
        except Exception as exc:
            log.warning("cannot look up the route of %s, keeping the last known (%s: %s)",
                        dialed, type(exc).__name__, exc)
            return known

    def answers_first(self, dialed: str) -> bool:
        """Whether a call to `dialed` will run a flow that starts by answering, known without a lookup:
        `resolve` would give the same flow now (its route fresh enough, the version parsed)."""
        cached = self._numbers.get(dialed)
        if cached is None or cached[1] is None or self.ttl <= 0:
            return False
        if self._too_old(cached[0]):
            return False  # `resolve` will look it up again
        name, version = cached[1]
        flow = self._parsed.get((name, version)) if version is not None else None
        return flow is not None and flow.nodes[flow.start].type == "answer"

    async def resolve(self, dialed: str) -> tuple[Flow, int]:
        found = await self._published_flow(dialed)
        if found is None:
            raise RoutingError(f"no route for number {dialed!r}")
        name, version = found
        if version is None:
            raise RoutingError(f"flow {name!r} has no published version")
        return await self.flow_version(name, version)

    async def published(self, name: str) -> tuple[Flow, int]:
        """`flows.services.FlowSource`: the live version of a flow (for subflow nodes)."""
        stored = await self.flows.published(name)
        if stored is None:
            raise RoutingError(f"flow {name!r} has no published version")
        return await self.flow_version(name, stored.version)

    async def version(self, name: str, version: int) -> Flow:
        """`flows.services.FlowSource`: a given version, parsed once."""
        return (await self.flow_version(name, version))[0]

    async def flow_version(self, name: str, version: int) -> tuple[Flow, int]:
        key = (name, version)
        if key not in self._parsed:
            try:
                stored = await self.flows.get(name, version)
            except FlowNotFound as exc:
                raise RoutingError(str(exc)) from exc
            try:
                # In a thread: a large flow takes a while to parse, and calls must not wait on it.
                self._parsed[key] = await asyncio.to_thread(load_flow, stored.source, f"{name}@v{version}")
            except FlowError as exc:
                raise RoutingError(f"flow {name!r} v{version} does not load: {exc}") from exc
        return self._parsed[key], version
