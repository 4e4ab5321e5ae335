"""Can an endpoint ring now? Asterisk's answer, and its changes as they happen.

Asterisk says a PJSIP endpoint is `online` while one of its contacts is reachable: a phone registered
and, as the AORs here qualify every 30 s, answering Asterisk's OPTIONS; `offline` otherwise
(unregistered, expired, or silent). For the ACD, `online` is what "its phone can ring" means.

    presence = Presence(ari, ami)      # the controller's AriClient, an AmiClient of its own
    presence.install()                 # in the running loop: connects AMI, reads every state
    presence.watch(lambda name, reachable: ...)
    presence.reachable("ana")          # now; `await reachable_now(ari, "ana")` asks Asterisk

Where the changes come from: AMI events, not ARI. Subscribing the ARI app to the event source
`endpoint:` made Asterisk 22.10 crash at a registration's expiry once the app had been reactivated
(a controller reconnecting while a call kept the app) and later went away: res_stasis leaves the
old subscription's router behind, pointing at the freed app (scripts/repro-endpoint-subscription/).
A per-endpoint ARI subscription does not crash, but would have to follow every endpoint created and
deleted at run time; AMI's events come from manager's own subscription, which lives as long as
Asterisk. So:

- `PeerStatus` (class `system`) carries the endpoint's state as res_pjsip composes it from its
  contacts and AORs (`Reachable`/`Unreachable`, the same as ARI's online/offline): taken as it is.
- `ContactStatus` (class `system`: a contact created, removed, reachable or not) names the endpoint
  whose contacts changed: its state is read back from ARI (GET /endpoints/PJSIP/{name}) rather than
  recomputed here, since res_pjsip's rule (qualified or not, several AORs) is its own.
- After every AMI login (events sent while it was away are lost) every state is read again (ARI GET
  /endpoints/PJSIP, which subscribes to nothing); while AMI is down, that read is repeated every
  `poll_every` s, so presence keeps following, late by at most that.

Events and reads are applied by one worker, in the order they came: an event that arrives during a
read is applied after it, so the newest word wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

from ivrpowers.ari import AriConnectionError, AriError, AriNotFound, AriRest, Endpoint
from ivrpowers.ari.dispatch import call_handler
from ivrpowers.endpoints.push import TECHNOLOGY

log = logging.getLogger("ivrpowers.endpoints")

Watcher = Callable[[str, bool], Any]  # (endpoint name, reachable now); may be async

POLL_EVERY = 5.0  # seconds between reads of every state while AMI is down
_PEER_STATES = {"Reachable": "online", "Unreachable": "offline"}


class EndpointReader(Protocol):
    """What of ARI this reads (`ivrpowers.ari.AriClient` has it; unit tests fake it)."""

    async def list_endpoints(self, technology: str | None = None) -> list[Endpoint]: ...

    async def get_endpoint(self, technology: str, resource: str) -> Endpoint: ...


class AmiEvents(Protocol):
    """What of AMI this listens to (`ivrpowers.ami.AmiClient` has it; unit tests fake it)."""

    @property
    def connected(self) -> bool: ...

    def on_event(self, name: str, handler: Callable[[dict[str, Any]], None]) -> None: ...

    def on_login(self, handler: Callable[[], None]) -> None: ...

    async def run(self, retry: float = 2.0) -> None: ...

    def close(self) -> None: ...


async def reachable_now(ari: AriRest, name: str) -> bool:
    """Ask Asterisk whether the PJSIP endpoint `name` can ring now (False if it has no such endpoint)."""
    try:
        return (await ari.get_endpoint(TECHNOLOGY, name)).state == "online"
    except AriNotFound:
        return False


# What the worker does, in order: ("state", name, state), ("check", name), ("read", "").
_Job = tuple[str, str, str | None]


class Presence:
    """The state of every PJSIP endpoint, as Asterisk last reported it."""

    def __init__(self, ari: EndpointReader, ami: AmiEvents, poll_every: float = POLL_EVERY) -> None:
        self.ari, self.ami, self.poll_every = ari, ami, poll_every
        self.states: dict[str, str] = {}  # endpoint name -> online, offline, unknown
        self.events = 0  # AMI events taken: tests and health wait on it
        self.reads = 0  # reads of every state that succeeded
        self.polls = 0  # rounds of the poller (it reads only while AMI is down or a read failed)
        self.problem: str | None = None  # why the last read of every state failed, until one succeeds
        self._watchers: list[Watcher] = []
        self._browser_gone: list[Callable[[str], None]] = []
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._read_queued = False
        self._stale = True  # no read of every state has succeeded since AMI was (re)connected
        self._known = False  # a read of every state has succeeded once
        self._tasks: list[asyncio.Task[None]] = []

    def install(self) -> None:
        """Start following Asterisk (in the running event loop): AMI's events, a first read."""
        self.ami.on_event("PeerStatus", self._on_peer_status)
        self.ami.on_event("ContactStatus", self._on_contact_status)
        self.ami.on_login(self._on_login)
        for name, coro in (("presence", self._work()), ("presence-poll", self._poll()),
                           ("presence-ami", self.ami.run())):
            self._tasks.append(asyncio.create_task(coro, name=name))

    async def close(self) -> None:
        self.ami.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def reachable(self, name: str) -> bool:
        """Whether `name` can ring now. Until Asterisk's endpoints have been read once, an endpoint no
        event has named yet counts as able (what the ACD assumed before presence existed: a restarted
        controller does not withdraw the offers it restored); the first read reports each that is not."""
        state = self.states.get(name)
        if state is None:
            return not self._known
        return state == "online"

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call `watcher(name, reachable)` whenever an endpoint goes online or stops being; returns
        what stops it. Called by one worker, in order: keep it quick."""
        self._watchers.append(watcher)

        def stop() -> None:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

        return stop

    # -- what AMI says (called by panoramisk in the event loop, in Asterisk's order) -------------
    def _on_peer_status(self, fields: dict[str, Any]) -> None:
        technology, _, name = str(fields.get("Peer", "")).partition("/")
        state = _PEER_STATES.get(str(fields.get("PeerStatus", "")))
        if technology == TECHNOLOGY and name and state is not None:
            self.events += 1
            self._jobs.put_nowait(("state", name, state))

    def on_browser_gone(self, handler: Callable[[str], None]) -> None:
        """Call `handler(endpoint)` when a browser's contact is removed: its SIP websocket closed (the
        tab was closed or reloaded, the network went). Unlike a phone that misses an OPTIONS, that
        browser's calls are over: its page, and the media it held, are gone."""
        self._browser_gone.append(handler)

    def _on_contact_status(self, fields: dict[str, Any]) -> None:
        name = str(fields.get("EndpointName", ""))
        if name:
            self.events += 1
            self._jobs.put_nowait(("check", name, None))
            uri = str(fields.get("URI", ""))
            if fields.get("ContactStatus") == "Removed" and re.search(r";transport=wss?(;|$)", uri):
                for handler in self._browser_gone:
                    handler(name)

    def _on_login(self) -> None:
        self._stale = True
        self._queue_read()

    def _queue_read(self) -> None:
        if not self._read_queued:
            self._read_queued = True
            self._jobs.put_nowait(("read", "", None))

    # -- the worker ------------------------------------------------------------------------------
    async def _poll(self) -> None:
        self._queue_read()
        while True:
            await asyncio.sleep(self.poll_every)
            self.polls += 1
            if self._stale or not self.ami.connected:
                self._queue_read()

    async def _work(self) -> None:
        while True:
            kind, name, state = await self._jobs.get()
            try:
                if kind == "state":
                    await self._set(name, state)
                elif kind == "check":
                    await self._check(name)
                else:
                    self._read_queued = False
                    await self._read_all()
            except Exception:  # one bad job must not stop presence
                log.exception("presence: %s %s failed", kind, name)

    async def _check(self, name: str) -> None:
        try:
            endpoint = await self.ari.get_endpoint(TECHNOLOGY, name)
        except AriNotFound:
            await self._set(name, None)
            return
        except (AriConnectionError, AriError, OSError, TimeoutError) as exc:  # ARI away: PeerStatus still says it
            log.debug("presence: %s not read (%s)", name, exc)
            return
        await self._set(name, endpoint.state or "unknown")

    async def _read_all(self) -> None:
        was_connected = self.ami.connected
        try:
            found = {e.resource: e.state or "unknown" for e in await self.ari.list_endpoints(TECHNOLOGY)}
        except (AriConnectionError, AriError, OSError, TimeoutError) as exc:
            if self.problem is None:
                log.warning("presence: endpoints not read (%s); trying again", exc)
            self.problem = f"endpoint states not read: {exc}"
            return
        self.reads += 1
        self.problem = None
        if was_connected:
            self._stale = False
        names = sorted(set(self.states) | set(found))
        before = {name: self.reachable(name) for name in names}
        self.states, self._known = found, True
        for name in names:
            await self._report(name, before[name])

    async def _set(self, name: str, state: str | None) -> None:
        was = self.reachable(name)
        if state is None:
            self.states.pop(name, None)  # deleted
        else:
            self.states[name] = state
        await self._report(name, was)

    async def _report(self, name: str, was: bool) -> None:
        now = self.reachable(name)
        if now != was:
            log.info("endpoint %s is %s", name, "reachable" if now else "no longer reachable")
            for watcher in list(self._watchers):
                await call_handler(watcher, "presence", name, now)
