"""Dialed number -> the published version of the flow routed to it."""

from __future__ import annotations

from ivrpowers.flows import Flow, FlowError, load_flow
from ivrpowers.store.flows import FlowNotFound, FlowRepository
from ivrpowers.store.routes import RouteRepository


class RoutingError(LookupError):
    """No flow can take this call: the reason goes into the CDR."""


class Router:
    def __init__(self, routes: RouteRepository, flows: FlowRepository) -> None:
        self.routes = routes
        self.flows = flows
        self._parsed: dict[tuple[str, int], Flow] = {}  # versions are immutable: parse each once

    async def resolve(self, dialed: str) -> tuple[Flow, int]:
        found = await self.routes.published_flow(dialed)
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
