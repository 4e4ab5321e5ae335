"""The CDR writer: every CDR change goes through one ordered queue, logged to disk first.

Calls must not wait on SQL, and neither a database outage nor a controller crash may lose a CDR,
nor may one bad write hold up the others. Each write is appended to the spool (`store/spool.py`,
the queue of record) before the call returns, then applied by one task, in order, up to
`batch_size` writes per transaction. At start, whatever the spool still holds is replayed first:
writes are idempotent (an event carries its own id, a second start of a call changes nothing), so
replaying one that had already reached the database is harmless.

When a transaction fails, the database is probed: unreachable means an outage, and the same writes
are retried with backoff for as long as it lasts. Reachable means the writes are at fault: the
batch is split until the culprit stands alone, which gets `max_tries` tries and is then set aside
in the `.rejected` file next to the spool, and the rest flow on. Errors that can never succeed
(integrity, bad data, no such call) set a write aside at its first try.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from ivrpowers.store.cdrs import OPS, CdrRepository
from ivrpowers.store.spool import Record, Spool, wait_for_count

log = logging.getLogger("ivrpowers.cdr")

_DATETIME_FIELDS = {"started_at", "answered_at", "ended_at", "at"}
# Errors that say the write itself can never succeed: no point retrying it.
_PERMANENT = (IntegrityError, DataError, LookupError, ValueError, TypeError)


def _encode(record: Record) -> bytes:
    """One spool line: datetimes as ISO 8601, the newline included."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)


def _decode(line: bytes) -> Record:
    op = orjson.loads(line)
    if not isinstance(op, dict):
        raise ValueError("not a CDR write")
    return {k: datetime.fromisoformat(v) if k in _DATETIME_FIELDS and v else v for k, v in op.items()}


class CdrWriter:
    def __init__(
        self, repo: CdrRepository, spool: Path, *, retry_min: float = 0.2, retry_max: float = 5.0,
        batch_size: int = 200, max_tries: int = 5, max_queued: int = 50_000, alarm_backlog: int | None = None,
        alarm_after: float = 10.0, sync_interval: float = 0.2, segment_bytes: int = 8 << 20,
        probe_timeout: float = 5.0, interval: float = 0.25,
    ) -> None:
        self.repo = repo
        self.spool = spool
        self.rejected = spool.with_suffix(".rejected")
        self.retry_min, self.retry_max = retry_min, retry_max
        self.batch_size, self.max_tries = batch_size, max_tries
        self.alarm_backlog = alarm_backlog or max_queued
        self.alarm_after, self.probe_timeout = alarm_after, probe_timeout
        # Group commit: at most one transaction per `interval` seconds unless a full batch waits. A
        # transaction costs far more than a row (a commit is an fsync), and the spool already holds
        # every write durably; the database only has to follow within a fraction of a second.
        self.interval = interval
        self._last_batch = -interval
        self._spool = Spool(spool, window=max_queued, encode=_encode, decode=_decode,
                            segment_bytes=segment_bytes, sync_interval=sync_interval)
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._limit = batch_size  # smaller while isolating a failing write
        self._suspect_end = 0  # ...among the writes before this index
        self._tries = 0  # of the oldest write, alone
        self._failing_since: float | None = None
        self.failures = 0  # consecutive failed attempts, for health reporting
        self.set_aside = 0  # writes set aside since start
        self.transactions = 0  # attempted (tests count them)
        # Event ids: unique across writers and restarts (80 random bits) and cheaper than a uuid4 each.
        self._uid_prefix = uuid.uuid4().hex[:20] + "-"
        self._uids = itertools.count()

    # -- the operations ------------------------------------------------------------------------
    def start_call(self, **fields: Any) -> None:
        self._put({"op": "start", **fields})

    def update_call(self, call_id: str, **fields: Any) -> None:
        self._put({"op": "update", "call_id": call_id, **fields})

    def add_event(self, call_id: str, type: str, at: datetime, node: str | None, detail: dict[str, Any]) -> None:
        uid = f"{self._uid_prefix}{next(self._uids):x}"
        self._put({"op": "event", "uid": uid, "call_id": call_id, "type": type, "at": at, "node": node,
                   "detail": dict(detail)})

    @property
    def backlog(self) -> int:
        return self._spool.pending

    def health(self) -> dict[str, Any]:
        """Backlog, consecutive failures, writes set aside, and what is wrong (None: nothing)."""
        problems = []
        backlog = self.backlog
        if backlog >= 0.8 * self.alarm_backlog:
            problems.append(f"CDR backlog {backlog} (alarm at {self.alarm_backlog})")
        if self._failing_since is not None and time.monotonic() - self._failing_since >= self.alarm_after:
            problems.append(f"CDR writes failing for {time.monotonic() - self._failing_since:.0f} s")
        if self.set_aside:
            problems.append(f"{self.set_aside} CDR writes set aside in {self.rejected}")
        if self._spool.stats.sync_errors:
            problems.append(f"{self._spool.stats.sync_errors} failed fsyncs of the CDR spool")
        return {"backlog": backlog, "failures": self.failures, "set_aside": self.set_aside,
                "problem": "; ".join(problems) or None}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        replay = self._spool.open()
        if replay:
            log.info("replaying %d logged CDR writes", replay)
        self._running = True
        self._task = asyncio.create_task(self._run(), name="cdr-writer")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write queued before this call is done (not later ones); False on timeout."""
        return await wait_for_count(self._progress, lambda: self._spool.done_count, self._spool.total, timeout)

    async def sync(self, timeout: float | None = None) -> bool:
        """Wait until every write made before this call survives an OS crash (fsynced); False on timeout."""
        return await self._spool.wait_synced(timeout)

    async def close(self, timeout: float = 5.0) -> None:
        """Write what can be written within `timeout`; the rest stays in the spool for next time."""
        await self.flush(timeout)
        self._running = False
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.backlog:
            log.warning("database unavailable: %d CDR writes kept in %s", self.backlog, self.spool)
        await self._spool.close()

    # -- internals -----------------------------------------------------------------------------
    def _put(self, op: Record) -> None:
        if not self._running:
            raise RuntimeError("CDR writer is not running")
        self._spool.append(op)  # on disk (page cache) before returning: a crash from here on loses nothing
        self._wake.set()

    def _done(self, n: int) -> None:
        self._spool.done(n)
        self._progress.set()
        if self._spool.done_count >= self._suspect_end:
            self._limit = self.batch_size

    async def _run(self) -> None:
        delay = self.retry_min
        while self._running:  # as well as cancel(): library code may swallow a cancellation
            if self._spool.needs_refill():
                try:
                    await self._spool.refill()
                except Exception as exc:  # a spool file damaged under us: say so, and keep trying
                    log.exception("reading the CDR spool back failed")
                    await self._failed([], exc, delay)
                    delay = min(delay * 2, self.retry_max)
                    continue
            if not self._spool.in_memory:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._last_batch + self.interval - time.monotonic()
            # A retry is already spaced by its backoff, and a full batch gains nothing by waiting.
            if wait > 0 and not self.failures and self._spool.in_memory < self._limit:
                await asyncio.sleep(wait)
            self._last_batch = time.monotonic()
            batch = self._spool.head(self._limit)
            if batch[0].get("op") not in OPS:
                await self._set_aside(batch[0], ValueError(f"unknown CDR operation {batch[0].get('op')!r}"))
                continue
            batch = batch[:next((i for i, op in enumerate(batch) if op.get("op") not in OPS), len(batch))]
            try:
                self.transactions += 1
                await self.repo.apply_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if await self._failed(batch, exc, delay):
                    delay = min(delay * 2, self.retry_max)
                continue
            if self.failures:
                log.info("CDR writes resumed after %d failures", self.failures)
            self.failures, self._tries, self._failing_since = 0, 0, None
            delay = self.retry_min
            self._done(len(batch))

    async def _failed(self, batch: list[Record], exc: Exception, delay: float) -> bool:
        """Handle a failed transaction; True if it waited (the backoff grows)."""
        self.failures += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        if not batch:
            await asyncio.sleep(delay)
            return True
        if not isinstance(exc, _PERMANENT) and await self._outage(exc):
            if self.failures in (1, 10) or self.failures % 100 == 0:
                log.warning("CDR write failed (%s: %s); %d queued, retrying", type(exc).__name__, exc, self.backlog)
            await asyncio.sleep(delay)
            return True
        if len(batch) > 1:  # one of these is at fault: split until it stands alone
            self._suspect_end = self._spool.done_count + len(batch)
            self._limit = max(1, len(batch) // 2)
            return False
        self._tries += 1
        if isinstance(exc, _PERMANENT) or self._tries >= self.max_tries:
            await self._set_aside(batch[0], exc)
            return False
        log.warning("CDR write failed (%s: %s), try %d of %d", type(exc).__name__, exc, self._tries, self.max_tries)
        await asyncio.sleep(delay)
        return True

    async def _outage(self, exc: Exception) -> bool:
        """Is the database unreachable (or busy), rather than this write at fault?"""
        if isinstance(exc, OperationalError) and "database is locked" in str(exc):
            return True  # SQLite: another process holds the lock; not the write's fault
        try:
            # Not wait_for: on 3.11 it swallows a cancellation that arrives as the probe fails.
            async with asyncio.timeout(self.probe_timeout):
                await self.repo.ping()
        except asyncio.CancelledError:
            raise
        except Exception:
            return True
        return False

    async def _set_aside(self, op: Record, exc: Exception) -> None:
        # Kept on disk for a human, and out of the way of every CDR behind it.
        line = _encode({**op, "error": f"{type(exc).__name__}: {exc}"})
        await asyncio.to_thread(_append_private, self.rejected, line)
        self.set_aside += 1
        self._tries, self.failures, self._failing_since = 0, 0, None  # the failing write is out of the way
        log.error("CDR write set aside (%s: %s); kept in %s", type(exc).__name__, exc, self.rejected)
        self._done(1)


def _append_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
