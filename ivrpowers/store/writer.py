"""The CDR writer: every CDR change goes through one ordered queue, logged to disk first.

Calls must not wait on SQL, and neither a database outage nor a controller crash may lose a CDR.
Each write is appended to a log file in the state directory before it is queued, then applied by
one task in order; a failing write is retried with backoff (the queue grows, nothing is dropped).
The log is emptied whenever the queue drains. At start, whatever the log still holds is replayed
before anything else: writes are idempotent (an event carries its own id), so replaying one that
had already reached the database changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import DataError, IntegrityError

from ivrpowers.store.cdrs import CdrRepository

log = logging.getLogger("ivrpowers.cdr")

_DATETIME_FIELDS = {"started_at", "answered_at", "ended_at", "at"}

# Rewrite the log to just the pending writes once this many applied ones have piled up in it
# (the queue may never drain on a busy system).
COMPACT_AFTER = 5000


def _encode(op: dict[str, Any]) -> str:
    return json.dumps({k: v.isoformat() if isinstance(v, datetime) else v for k, v in op.items()})


def _decode(line: str) -> dict[str, Any]:
    op = json.loads(line)
    return {k: datetime.fromisoformat(v) if k in _DATETIME_FIELDS and v else v for k, v in op.items()}


class CdrWriter:
    def __init__(self, repo: CdrRepository, spool: Path, *, retry_min: float = 0.2, retry_max: float = 5.0) -> None:
        self.repo = repo
        self.spool = spool
        self.retry_min, self.retry_max = retry_min, retry_max
        self._ops: deque[dict[str, Any]] = deque()
        self._log: IO[str] | None = None
        self._applied_in_log = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._queued = 0  # writes ever queued, and ever done (written or set aside)
        self._finished = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.failures = 0  # consecutive failed attempts, for health reporting

    # -- the operations ------------------------------------------------------------------------
    def start_call(self, **fields: Any) -> None:
        self._put({"op": "start", **fields})

    def update_call(self, call_id: str, **fields: Any) -> None:
        self._put({"op": "update", "call_id": call_id, **fields})

    def add_event(self, call_id: str, type: str, at: datetime, node: str | None, detail: dict[str, Any]) -> None:
        self._put({"op": "event", "uid": str(uuid.uuid4()), "call_id": call_id, "type": type, "at": at,
                   "node": node, "detail": dict(detail)})

    @property
    def backlog(self) -> int:
        return len(self._ops)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        replay = self._read_log()
        self._log = self.spool.open("a", encoding="utf-8")
        if replay:
            log.info("replaying %d logged CDR writes", len(replay))
            self._ops.extendleft(reversed(replay))  # older than anything queued now
            self._queued += len(replay)
            self._wake.set()
        self._task = asyncio.create_task(self._run(), name="cdr-writer")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write queued before this call is done (not later ones); False on timeout."""
        target = self._queued

        async def reached() -> None:
            while self._finished < target:
                self._progress.clear()
                await self._progress.wait()

        try:
            await asyncio.wait_for(reached(), timeout)
            return True
        except TimeoutError:
            return False

    async def close(self, timeout: float = 5.0) -> None:
        """Write what can be written within `timeout`; the rest stays in the log for next time."""
        await self.flush(timeout)
        self._closing = True
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._ops:
            log.warning("database unavailable: %d CDR writes kept in %s", len(self._ops), self.spool)
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- internals -----------------------------------------------------------------------------
    def _read_log(self) -> list[dict[str, Any]]:
        if not self.spool.exists():
            return []
        ops = []
        for number, line in enumerate(self.spool.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                ops.append(_decode(line))
            except ValueError:
                # A crash mid-append leaves at most one torn line, the last one.
                log.warning("%s:%d: unreadable CDR write skipped", self.spool, number)
        return ops

    def _put(self, op: dict[str, Any]) -> None:
        if self._closing or self._log is None:
            raise RuntimeError("CDR writer is not running")
        # On disk before in memory: a crash from here on loses nothing.
        self._log.write(_encode(op) + "\n")
        self._log.flush()
        self._ops.append(op)
        self._queued += 1
        self._wake.set()

    def _done(self) -> None:
        self._ops.popleft()
        self._finished += 1
        self._progress.set()
        self._applied_in_log += 1
        if self._log is None:
            return
        if not self._ops:
            self._log.truncate(0)  # append mode: the next write lands at the new end
            self._applied_in_log = 0
        elif self._applied_in_log >= COMPACT_AFTER:
            self._rewrite_log()

    def _rewrite_log(self) -> None:
        tmp = self.spool.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(_encode(op) + "\n" for op in self._ops)
        tmp.replace(self.spool)
        assert self._log is not None
        self._log.close()
        self._log = self.spool.open("a", encoding="utf-8")
        self._applied_in_log = 0

    async def _apply(self, op: dict[str, Any]) -> None:
        fields = {k: v for k, v in op.items() if k != "op"}
        match op["op"]:
            case "start":
                await self.repo.start(**fields)
            case "update":
                call_id = fields.pop("call_id")
                await self.repo.update(call_id, **fields)
            case "event":
                await self.repo.add_event(**fields)
            case other:
                raise ValueError(f"unknown CDR operation {other!r}")

    async def _run(self) -> None:
        delay = self.retry_min
        while True:
            if not self._ops:
                self._wake.clear()
                await self._wake.wait()
                continue
            op = self._ops[0]
            try:
                await self._apply(op)
            except asyncio.CancelledError:
                raise
            except (IntegrityError, DataError, LookupError, ValueError) as exc:
                # Not an outage: this write can never succeed. Keep it on disk for a human, and
                # don't let it block every CDR behind it.
                self._reject(op, exc)
                continue
            except Exception as exc:  # the database is down or refused: keep the op, retry later
                self.failures += 1
                if self.failures in (1, 10) or self.failures % 100 == 0:
                    log.warning("CDR write failed (%s: %s); %d queued, retrying", type(exc).__name__, exc, len(self._ops))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if self.failures:
                log.info("CDR writes resumed after %d failures", self.failures)
            self.failures = 0
            delay = self.retry_min
            self._done()

    def _reject(self, op: dict[str, Any], exc: Exception) -> None:
        rejected = self.spool.with_suffix(".rejected")
        with rejected.open("a", encoding="utf-8") as fh:
            fh.write(_encode({**op, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        log.error("CDR write rejected by the database (%s); kept in %s", exc, rejected)
        self._done()
