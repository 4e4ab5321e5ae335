"""Presence's logic, with ARI and AMI faked: AMI's PeerStatus sets an endpoint's state, a ContactStatus
has it read back from ARI, every state is read again after each AMI login and while AMI is down,
and only changes reach the watchers, in order. (On the real Asterisk: tests/integration/test_presence.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ivrpowers.ari import AriConnectionError, AriNotFound, Endpoint
from ivrpowers.endpoints.presence import Presence

from .waiting import until


class FakeAri:
    """Asterisk's PJSIP endpoints as ARI shows them; `hold` keeps the next list_endpoints waiting."""

    def __init__(self) -> None:
        self.endpoints: dict[str, str] = {}
        self.down = False
        self.lists = 0
        self.gets: list[str] = []
        self.hold: asyncio.Event | None = None
        self.listing = asyncio.Event()

    def _endpoint(self, name: str) -> Endpoint:
        return Endpoint(technology="PJSIP", resource=name, state=self.endpoints[name], channel_ids=[])

    async def list_endpoints(self, technology: str | None = None) -> list[Endpoint]:
        assert technology == "PJSIP"
        self.listing.set()
        if self.hold is not None:
            await self.hold.wait()
            self.hold = None
        if self.down:
            raise AriConnectionError("GET", "endpoints/PJSIP", "connection refused")
        self.lists += 1
        return [self._endpoint(name) for name in sorted(self.endpoints)]

    async def get_endpoint(self, technology: str, resource: str) -> Endpoint:
        self.gets.append(resource)
        if self.down:
            raise AriConnectionError("GET", f"endpoints/PJSIP/{resource}", "connection refused")
        if resource not in self.endpoints:
            raise AriNotFound(404, "GET", f"endpoints/PJSIP/{resource}", "Endpoint not found")
        return self._endpoint(resource)


class FakeAmi:
    def __init__(self) -> None:
        self.connected = False
        self.handlers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self.login_handlers: list[Callable[[], None]] = []
        self.running = asyncio.Event()
        self.closed = False

    def on_event(self, name: str, handler: Callable[[dict[str, Any]], None]) -> None:
        self.handlers.setdefault(name, []).append(handler)

    def on_login(self, handler: Callable[[], None]) -> None:
        self.login_handlers.append(handler)

    async def run(self, retry: float = 2.0) -> None:
        self.running.set()
        await asyncio.Event().wait()

    def close(self) -> None:
        self.closed = True

    def login(self) -> None:
        self.connected = True
        for handler in self.login_handlers:
            handler()

    def send(self, event: str, **fields: str) -> None:
        for handler in self.handlers.get(event, []):
            handler({"Event": event, **fields})

    def peer(self, name: str, status: str) -> None:
        self.send("PeerStatus", ChannelType="PJSIP", Peer=f"PJSIP/{name}", PeerStatus=status)

    def contact(self, name: str, status: str) -> None:
        self.send("ContactStatus", URI=f"sip:{name}@127.0.0.1:5070", ContactStatus=status, AOR=name,
                  EndpointName=name, RoundtripUsec="0")


async def started(ari: FakeAri, ami: FakeAmi, poll_every: float = 60.0
                  ) -> tuple[Presence, list[tuple[str, bool]]]:
    presence = Presence(ari, ami, poll_every=poll_every)
    seen: list[tuple[str, bool]] = []
    presence.watch(lambda name, reachable: seen.append((name, reachable)))
    presence.install()
    await until(lambda: ami.running.is_set())
    return presence, seen


async def known(ari: FakeAri, ami: FakeAmi, poll_every: float = 60.0) -> tuple[Presence, list[tuple[str, bool]]]:
    """Started, AMI logged in, the first read done and its report forgotten."""
    presence, seen = await started(ari, ami, poll_every)
    ami.login()
    await until(lambda: presence.reads >= 1 and not presence._read_queued)
    await until(lambda: presence._jobs.empty())
    seen.clear()
    return presence, seen


async def test_the_first_read_reports_who_cannot_ring_and_until_then_everyone_can() -> None:
    ari, ami = FakeAri(), FakeAmi()
    ari.endpoints = {"ana": "online", "bob": "offline", "eve": "unknown"}
    ari.hold = asyncio.Event()
    presence, seen = await started(ari, ami)
    await until(lambda: ari.listing.is_set())
    # Not read yet: as before presence existed, every phone counts as able (restored offers stay).
    assert presence.reachable("ana") and presence.reachable("bob") and presence.reachable("nobody")
    ari.hold.set()
    await until(lambda: presence.reads == 1)
    assert sorted(seen) == [("bob", False), ("eve", False)]
    assert presence.reachable("ana") and not presence.reachable("bob") and not presence.reachable("nobody")
    await presence.close()
    assert ami.closed


async def test_peer_status_sets_the_state_and_only_changes_are_reported_in_order() -> None:
    ari, ami = FakeAri(), FakeAmi()
    ari.endpoints = {"ana": "offline"}
    presence, seen = await known(ari, ami)
    ami.peer("ana", "Reachable")
    ami.peer("ana", "Reachable")  # no change: not reported again
    ami.peer("ana", "Unreachable")
    ami.peer("ana", "Reachable")
    ami.send("PeerStatus", ChannelType="SIP", Peer="SIP/ana", PeerStatus="Unreachable")  # not PJSIP's
    ami.send("PeerStatus", ChannelType="PJSIP", Peer="PJSIP/ana", PeerStatus="Lagged")  # not a state
    await until(lambda: len(seen) == 3 and presence._jobs.empty())
    assert seen == [("ana", True), ("ana", False), ("ana", True)] and presence.reachable("ana")
    assert presence.events == 4 and ari.gets == []  # PeerStatus is taken as it is: nothing read back
    await presence.close()


async def test_a_contact_status_has_its_endpoint_read_back_from_ari() -> None:
    ari, ami = FakeAri(), FakeAmi()
    ari.endpoints = {"ana": "offline"}
    presence, seen = await known(ari, ami)
    ari.endpoints["ana"] = "online"
    ami.contact("ana", "Reachable")
    await until(lambda: seen == [("ana", True)])
    assert ari.gets == ["ana"]
    del ari.endpoints["ana"]  # deleted meanwhile: Asterisk no longer has it
    ami.contact("ana", "Removed")
    await until(lambda: seen == [("ana", True), ("ana", False)])
    assert "ana" not in presence.states
    ari.down = True  # ARI away: the contact's word is dropped, what PeerStatus says still counts
    ami.contact("ana", "Reachable")
    ami.peer("ana", "Reachable")
    await until(lambda: seen[2:] == [("ana", True)])
    assert ari.gets == ["ana", "ana", "ana"]
    await presence.close()


async def test_an_event_that_comes_during_a_read_is_applied_after_it() -> None:
    ari, ami = FakeAri(), FakeAmi()
    ari.endpoints = {"ana": "offline"}
    presence, seen = await started(ari, ami)
    await until(lambda: presence.reads == 1)
    ari.hold = asyncio.Event()
    ari.listing.clear()
    ami.login()  # a read again; while it is under way, ana registers
    await until(lambda: ari.listing.is_set())
    ami.peer("ana", "Reachable")
    ari.hold.set()  # the read answers what Asterisk knew when it was asked: offline
    await until(lambda: presence.reads == 2)
    await until(lambda: len(seen) == 2)
    # The read's "offline" was older than the event: no flicker, the event has the last word.
    assert presence.reachable("ana") and seen == [("ana", False), ("ana", True)]
    await presence.close()


async def test_every_state_is_read_after_each_ami_login_and_while_ami_is_down() -> None:
    ari, ami = FakeAri(), FakeAmi()
    ari.endpoints = {"ana": "online", "bob": "online"}
    presence, seen = await started(ari, ami, poll_every=0.01)
    # AMI down: reads over and over, so changes still arrive, late by at most `poll_every`.
    await until(lambda: presence.reads >= 1)
    ari.endpoints["bob"] = "offline"
    await until(lambda: seen == [("bob", False)])
    ami.login()
    reads = presence.reads
    await until(lambda: presence.reads == reads + 1)
    assert not presence._stale
    await until(lambda: presence._jobs.empty())
    reads, polls = presence.reads, presence.polls
    await until(lambda: presence.polls >= polls + 3)  # several poll periods: AMI up, nothing read
    assert presence.reads == reads
    # AMI away and back: what changed meanwhile (ana unregistered, bob deleted) is caught up.
    ami.connected = False
    ari.endpoints = {"ana": "offline"}
    ami.login()
    await until(lambda: seen[1:] == [("ana", False)])
    assert "bob" not in presence.states
    await presence.close()


async def test_a_failed_read_is_tried_again_until_one_succeeds() -> None:
    ari, ami = FakeAri(), FakeAmi()
    ari.endpoints = {"ana": "offline"}
    ari.down = True
    presence, seen = await started(ari, ami, poll_every=0.01)
    ami.login()
    await until(lambda: presence.problem is not None)
    problem = presence.problem
    assert problem is not None and "not read" in problem
    assert presence.reachable("ana")  # not known yet
    ari.down = False
    await until(lambda: presence.reads >= 1)
    assert presence.problem is None and not presence._stale and seen == [("ana", False)]
    await presence.close()


async def test_a_watcher_stops_and_a_failing_one_does_not_stop_the_others() -> None:
    ari, ami = FakeAri(), FakeAmi()
    presence, seen = await started(ari, ami)
    await until(lambda: presence.reads == 1)

    def broken(name: str, reachable: bool) -> None:
        raise RuntimeError("a watcher's bug")

    later: list[tuple[str, bool]] = []

    async def slow(name: str, reachable: bool) -> None:
        await asyncio.sleep(0)
        later.append((name, reachable))

    presence.watch(broken)
    stop = presence.watch(slow)
    ami.peer("ana", "Reachable")
    await until(lambda: later == [("ana", True)])
    assert seen == [("ana", True)]
    stop()
    ami.peer("ana", "Unreachable")
    await until(lambda: seen == [("ana", True), ("ana", False)])
    assert later == [("ana", True)]
    await presence.close()
