"""This controller's heartbeat in the database, and what it knows of the other controllers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ivrpowers.store.controllers import ControllerRepository

log = logging.getLogger("ivrpowers.calls")

HEARTBEAT_EVERY = 5.0
# A controller silent for this long is dead: several missed heartbeats, not one slow transaction.
STALE_AFTER = timedelta(seconds=4 * HEARTBEAT_EVERY)


class Liveness:
    def __init__(self, repo: ControllerRepository, controller_id: str, asterisk_id: str,
                 *, every: float = HEARTBEAT_EVERY, stale_after: timedelta = STALE_AFTER) -> None:
        self.repo = repo
        self.id = controller_id
        self.asterisk_id = asterisk_id
        self.every = every
        self.stale_after = stale_after
        self.registered = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="controller-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.registered.is_set():
            try:
                await asyncio.wait_for(self.repo.stopped(self.id, datetime.now(UTC)), 5)
            except Exception as exc:  # the database is down: the others will see the heartbeat go stale
                log.warning("could not record this controller's stop (%s: %s)", type(exc).__name__, exc)

    async def dead(self, owners: Iterable[str | None]) -> set[str | None]:
        """Owners among `owners` known dead (None, an owner never recorded, counts as dead)."""
        wanted = {o for o in owners if o is not None and o != self.id}
        alive = await self.repo.alive(wanted, now=datetime.now(UTC), stale_after=self.stale_after)
        return {o for o in owners if o != self.id and o not in alive}

    async def _run(self) -> None:
        delay = 0.5
        while not self.registered.is_set():
            try:
                await self.repo.register(self.id, asterisk_id=self.asterisk_id, host=socket.gethostname(),
                                         pid=os.getpid(), at=datetime.now(UTC))
                self.registered.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot register controller %s yet (%s: %s)", self.id, type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.every)
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.repo.heartbeat(self.id, datetime.now(UTC))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("controller heartbeat failed (%s: %s)", type(exc).__name__, exc)
