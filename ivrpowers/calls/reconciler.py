"""After (re)connecting to ARI: catch up with what happened while no one listened.

Three jobs, none of which may stall the ARI reader (every call's events wait behind it):
- sessions whose channel is still there re-learn what they missed (`AriCall.resync`), concurrently
  with a bound;
- channels in our Stasis app that no session drives are adopted: their flow resumes from the CDR;
- CDRs of calls whose channel is gone are closed as lost, but only calls on *our* Asterisk whose
  owner is this controller or is known dead; the others may be alive elsewhere, so they are looked
  at again once their owner's heartbeat could have gone stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

from ivrpowers.ari import AriClient, Channel
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.calls.liveness import Liveness
from ivrpowers.calls.roles import INBOUND, parse_stasis_args, stasis_args_of
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.models import CallRecord
from ivrpowers.store.writer import CdrWriter

log = logging.getLogger("ivrpowers.calls")

# Concurrent ARI requests while resyncing or adopting: enough to finish thousands of calls quickly,
# few enough not to flood Asterisk's HTTP threads.
CONCURRENCY = 16


class Owner(Protocol):
    """The controller as the reconciler sees it."""

    asterisk_id: str

    def live_calls(self) -> dict[str, AriCall]: ...
    def driven(self, channel_id: str) -> bool: ...
    def handled(self, call_id: str) -> bool: ...
    def lost(self, call_id: str) -> None: ...
    def start_channel(
        self, channel: Channel, args: list[str], adopted: CallRecord | None, *, recovered: bool
    ) -> None: ...


async def bounded(jobs: Iterable[Callable[[], Awaitable[object]]], limit: int = CONCURRENCY) -> None:
    """Run `jobs` with at most `limit` at a time; one failing job does not stop the others."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("resync step failed (%s: %s)", type(exc).__name__, exc)

    await asyncio.gather(*(one(job) for job in jobs))


class Reconciler:
    def __init__(self, client: AriClient, app: str, owner: Owner, cdrs: CdrRepository, writer: CdrWriter,
                 liveness: Liveness) -> None:
        self.client = client
        self.app = app
        self.owner = owner
        self.cdrs = cdrs
        self.writer = writer
        self.liveness = liveness
        self.task: asyncio.Task[None] | None = None
        self._recheck: asyncio.Task[None] | None = None
        self._again = False
        self.adopted = 0  # channels taken over since start
        self.waits = 0  # adoption attempts that had to wait (database or ARI unavailable)
        self.passes = 0  # adoption passes completed (lost calls looked at)

    def on_resync(self, channels: list[Channel], reconnected: bool) -> None:
        """The ARI client's resync handler: quick bookkeeping here, the REST work in a task."""
        present = {c.id for c in channels}
        stale: list[AriCall] = []
        for channel_id, call in self.owner.live_calls().items():
            if channel_id in present:
                stale.append(call)
            else:
                call.feed_destroyed(None, None, None)  # it left while we weren't listening
        if self.task is not None and not self.task.done():
            self._again = True  # a second reconnect during a catch-up: run it once more after
            return
        self.task = asyncio.create_task(self._catch_up(stale), name="reconcile")

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in (self.task, self._recheck) if t is not None]

    async def _catch_up(self, stale: list[AriCall]) -> None:
        await bounded(call.resync for call in stale)
        deferred = await self.adopt()
        while self._again:
            self._again = False
            deferred = await self.adopt()
        if deferred and (self._recheck is None or self._recheck.done()):
            self._recheck = asyncio.create_task(self._recheck_later(), name="reconcile-recheck")

    async def _recheck_later(self) -> None:
        """Calls whose owner was not known dead: look again once its heartbeat could have gone stale."""
        deferred = 1
        while deferred:
            await asyncio.sleep(self.liveness.stale_after.total_seconds())
            deferred = await self.adopt()

    async def adopt(self) -> int:
        """Take over the channels in our app that no session drives; close the lost calls we may close.

        Needs the database (each call's flow version and last node are there), so during an outage
        it waits and retries: the callers wait in the call, they are not dropped. Returns how many
        lost calls were left open because their owner may still be alive.
        """
        delay = 0.5
        while True:
            try:
                if self.writer.backlog:
                    log.info("adoption waits for %d pending CDR writes", self.writer.backlog)
                await self.writer.flush()  # replayed writes may hold these calls' CDRs: let them land
                # Another Asterisk's calls are not ours to adopt or close: we cannot see its channels.
                records = await self.cdrs.unfinished(self.owner.asterisk_id)
                channels = [c for c in await self.client.list_channels() if c.in_stasis_app(self.app)]
                dead = await self.liveness.dead({r.owner for r in records})
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.waits += 1
                log.warning("cannot adopt calls yet (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        by_channel = {r.channel_id: r for r in records}
        present = {c.id for c in channels}
        # Callers first: a leg joins an interaction, which must be running again before it can.
        for channel in sorted(channels, key=lambda c: parse_stasis_args(stasis_args_of(c)).role != INBOUND):
            if not self.owner.driven(channel.id):
                record = by_channel.get(channel.id)
                log.info("adopting channel %s (%s)", channel.id,
                         "resuming its flow" if record else "no record of it: recovered")
                self.owner.start_channel(channel, stasis_args_of(channel), record, recovered=record is None)
                self.adopted += 1
        deferred = 0
        now = datetime.now(UTC)
        for record in records:
            if record.channel_id in present or self.owner.driven(record.channel_id) or self.owner.handled(record.id):
                continue  # a session here ran it: its own end is on its way through the writer
            if record.owner not in dead and record.owner != self.liveness.id:  # dead: stopped, stale or None
                deferred += 1
                continue
            log.info("call %s ended while no controller watched it", record.id)
            self.writer.add_event(record.id, "ended_unobserved", now, None, {"owner": record.owner})
            self.writer.update_call(record.id, ended_at=now, disposition="ended_unobserved")
            self.owner.lost(record.id)
        self.passes += 1
        return deferred
