"""The controller's side: Asterisk has the database's endpoints after every (re)connect.

Asterisk keeps endpoints created at run time in memory only, so a restarted Asterisk has none; a
controller that reconnects cannot know whether Asterisk restarted meanwhile. After each connect it
therefore compares, in the background, Asterisk's PJSIP endpoints with the database's: it creates
those Asterisk lacks and removes those it has but the database no longer does (deleted while Asterisk
could not be reached), leaving pjsip.conf's own alone. Until a pass succeeds (the database or ARI
down), it tries again, backing off; `problem` says why meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from ivrpowers.ari import AriClient, AriConnectionError, AriError, AriUnauthorized, Channel
from ivrpowers.endpoints.accounts import static_names
from ivrpowers.endpoints.fields import Addresses
from ivrpowers.endpoints.push import TECHNOLOGY, ConfigApi, push, remove
from ivrpowers.store.endpoints import EndpointRecord

log = logging.getLogger("ivrpowers.endpoints")

# Requests in flight at once: a fresh Asterisk gets thousands of accounts back in seconds without
# queueing every one of them at once (as the reconciler does with channels).
CONCURRENCY = 16
RETRY_MIN, RETRY_MAX = 1.0, 30.0


@dataclass
class SyncResult:
    pushed: list[str]
    removed: list[str]
    failed: list[str]


class EndpointSync:
    def __init__(self, client: AriClient, records: Callable[[], Awaitable[list[EndpointRecord]]], addresses: Addresses,
                 outbound_trunk: str | None = None) -> None:
        self.client = client
        self.records = records
        self.addresses = addresses
        self.static = static_names([outbound_trunk])
        self.passes = 0  # passes completed: how a test (or /health) knows the push after a connect is done
        self.problem: str | None = None
        self._task: asyncio.Task[None] | None = None

    def install(self) -> None:
        self.client.on_resync(self._on_resync)

    def _on_resync(self, channels: list[Channel], reconnected: bool) -> None:
        # Not in the resync itself: the events of calls wait behind it.
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.create_task(self._run(), name="endpoint-sync")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = RETRY_MIN
        while True:
            try:
                await sync(self.client, self.records, self.addresses, self.static)
            except (AriError, SQLAlchemyError, OSError) as exc:
                self.problem = f"endpoints not pushed to Asterisk yet: {type(exc).__name__}: {exc}"
                log.warning("%s; trying again in %.0fs", self.problem, delay)
            except Exception as exc:  # a bug: loudly, and phones still get their endpoints when it passes
                self.problem = f"endpoints not pushed to Asterisk yet: unexpected {type(exc).__name__}: {exc}"
                log.exception("endpoint sync failed; trying again in %.0fs", delay)
            else:
                self.passes += 1
                self.problem = None
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)


async def sync(ari: ConfigApi, load: Callable[[], Awaitable[list[EndpointRecord]]], addresses: Addresses,
               static: frozenset[str]) -> SyncResult:
    """One pass: create the accounts `load` gives that Asterisk lacks, remove those it has that are
    neither loaded nor `static`. An account Asterisk refuses is logged and left; an
    `AriConnectionError` ends the pass.

    Asterisk's endpoints are listed before the database is read: the CLI stores an account before it
    pushes it, so one created meanwhile is never taken for an account the database dropped.
    """
    present = {e.resource for e in await ari.list_endpoints(TECHNOLOGY)}
    records = await load()
    wanted = {r.name for r in records}
    limit = asyncio.Semaphore(CONCURRENCY)
    result = SyncResult([], [], [])

    async def create(record: EndpointRecord) -> None:
        async with limit:
            try:
                if await push(ari, record, addresses):
                    result.pushed.append(record.name)
            except AriConnectionError:
                raise
            except AriError as exc:
                result.failed.append(record.name)
                log.error("Asterisk refused endpoint %s: %s", record.name, exc)

    async def drop(name: str) -> None:
        async with limit:
            try:
                if await remove(ari, name):
                    result.removed.append(name)
            except AriUnauthorized:
                log.debug("endpoint %s is not one of ours (pjsip.conf): left alone", name)
            except AriConnectionError:
                raise
            except AriError as exc:
                result.failed.append(name)
                log.error("Asterisk did not remove endpoint %s: %s", name, exc)

    await asyncio.gather(*(create(r) for r in records if r.name not in present),
                         *(drop(name) for name in sorted(present - wanted - static)))
    log.info("endpoints: %d in the database; pushed %d, removed %d, refused %d",
             len(records), len(result.pushed), len(result.removed), len(result.failed))
    return result
