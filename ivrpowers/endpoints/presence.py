"""Can an endpoint ring now? Asterisk's answer, and its changes as they happen.

Asterisk says a PJSIP endpoint is `online` while one of its contacts is reachable: a phone registered
and, as the AORs here qualify every 30 s, answering Asterisk's OPTIONS; `offline` otherwise
(unregistered, expired, or silent). For the ACD, `online` is what "its phone can ring" means.

    presence = Presence(client)        # the controller's AriClient
    presence.install()                 # before client.start(): the first connect counts
    presence.watch(lambda name, reachable: ...)
    presence.reachable("ana")          # now, from the events; `await reachable_now(ari, "ana")` asks Asterisk

After each (re)connect it subscribes the app to every endpoint (event source `endpoint:`, which
brings PeerStatusChange and ContactStatusChange, never channel events) and reads every state again
(GET /endpoints/PJSIP), reporting what changed while it was away. The subscription is made in the
resync, before the events of the new connection are read, so no change falls between the two.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ivrpowers.ari import (
    AriClient,
    AriNotFound,
    AriRest,
    Channel,
    ContactStatusChange,
    Endpoint,
    EndpointStateChange,
    PeerStatusChange,
)
from ivrpowers.ari.dispatch import call_handler
from ivrpowers.endpoints.push import TECHNOLOGY

log = logging.getLogger("ivrpowers.endpoints")

Watcher = Callable[[str, bool], Any]  # (endpoint name, reachable now); may be async


async def reachable_now(ari: AriRest, name: str) -> bool:
    """Ask Asterisk whether the PJSIP endpoint `name` can ring now (False if it has no such endpoint)."""
    try:
        return (await ari.get_endpoint(TECHNOLOGY, name)).state == "online"
    except AriNotFound:
        return False


class Presence:
    """The state of every PJSIP endpoint, as Asterisk last reported it."""

    def __init__(self, client: AriClient) -> None:
        self.client = client
        self.states: dict[str, str] = {}  # endpoint name -> online, offline, unknown
        self._watchers: list[Watcher] = []

    def install(self) -> None:
        self.client.on_resync(self._on_resync)
        self.client.subscribe(PeerStatusChange, self._on_event)  # what an `endpoint:` subscription brings
        self.client.subscribe(ContactStatusChange, self._on_event)
        self.client.subscribe(EndpointStateChange, self._on_event)  # ...and one to a single endpoint

    def reachable(self, name: str) -> bool:
        return self.states.get(name) == "online"

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call `watcher(name, reachable)` whenever an endpoint goes online or stops being; returns
        what stops it. Called in the events reader, in order: keep it quick (see `ivrpowers.ari.dispatch`)."""
        self._watchers.append(watcher)

        def stop() -> None:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

        return stop

    async def _on_resync(self, channels: list[Channel], reconnected: bool) -> None:
        await self.client.subscribe_app("endpoint:")
        found = {e.resource: e.state or "unknown" for e in await self.client.list_endpoints(TECHNOLOGY)}
        for name in sorted(set(self.states) | set(found)):
            await self._set(name, found.get(name))

    async def _on_event(self, event: PeerStatusChange | ContactStatusChange | EndpointStateChange) -> None:
        endpoint: Endpoint = event.endpoint
        if endpoint.technology == TECHNOLOGY:
            await self._set(endpoint.resource, endpoint.state or "unknown")

    async def _set(self, name: str, state: str | None) -> None:
        was = self.reachable(name)
        if state is None:
            self.states.pop(name, None)  # deleted
        else:
            self.states[name] = state
        now = self.reachable(name)
        if now != was:
            log.info("endpoint %s is %s", name, "reachable" if now else "no longer reachable")
            for watcher in list(self._watchers):
                await call_handler(watcher, "presence", name, now)
