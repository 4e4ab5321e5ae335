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
        route = await self.routes.get(dialed)
        if route is None:
            raise RoutingError(f"no route for number {dialed!r}")
        published = await self.flows.published(route.flow_name)
        if published is None:
            raise RoutingError(f"flow {route.flow_name!r} has no published version")
        return self._parse(published.name, published.version, published.source), published.version

    async def flow_version(self, name: str, version: int) -> tuple[Flow, int]:
        try:
            stored = await self.flows.get(name, version)
        except FlowNotFound as exc:
            raise RoutingError(str(exc)) from exc
        return self._parse(name, version, stored.source), version

    def _parse(self, name: str, version: int, source: str) -> Flow:
        key = (name, version)
        if key not in self._parsed:
            try:
                self._parsed[key] = load_flow(source, filename=f"{name}@v{version}")
            except FlowError as exc:
                raise RoutingError(f"flow {name!r} v{version} does not load: {exc}") from exc
        return self._parsed[key]
