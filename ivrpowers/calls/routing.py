"""Dialed number -> the published version of the flow routed to it.

A number's answer is kept `ttl` seconds (1 s by default): a new call must not wait on the database
to learn what the previous call to the same number learnt a moment ago. So `route set` and
`flow publish` take effect within that time, on every controller sharing the database.
"""

from __future__ import annotations

import time

from ivrpowers.flows import Flow, FlowError, load_flow
from ivrpowers.store.flows import FlowNotFound, FlowRepository
from ivrpowers.store.routes import RouteRepository


class RoutingError(LookupError):
    """No flow can take this call: the reason goes into the CDR."""


class Router:
    def __init__(self, routes: RouteRepository, flows: FlowRepository, *, ttl: float = 1.0) -> None:
        self.routes = routes
        self.flows = flows
        self.ttl = ttl
        self._parsed: dict[tuple[str, int], Flow] = {}  # versions are immutable: parse each once
        self._numbers: dict[str, tuple[float, tuple[str, int | None] | None]] = {}

    async def _published_flow(self, dialed: str) -> tuple[str, int | None] | None:
        now = time.monotonic()
        cached = self._numbers.get(dialed)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        found = await self.routes.published_flow(dialed)
        if len(self._numbers) > 10_000:  # numbers dialed by a scanner must not grow it forever
            self._numbers = {k: v for k, v in self._numbers.items() if now - v[0] < self.ttl}
        self._numbers[dialed] = (now, found)
        return found

    async def resolve(self, dialed: str) -> tuple[Flow, int]:
        found = await self._published_flow(dialed)
        if found is None:
            raise RoutingError(f"no route for number {dialed!r}")
        name, version = found
        if version is None:
            raise RoutingError(f"flow {name!r} has no published version")
        return await self.flow_version(name, version)

    async def flow_version(self, name: str, version: int) -> tuple[Flow, int]:
        key = (name, version)
        if key not in self._parsed:
            try:
                stored = await self.flows.get(name, version)
            except FlowNotFound as exc:
                raise RoutingError(str(exc)) from exc
            try:
                self._parsed[key] = load_flow(stored.source, filename=f"{name}@v{version}")
            except FlowError as exc:
                raise RoutingError(f"flow {name!r} v{version} does not load: {exc}") from exc
        return self._parsed[key], version
