"""The CDR writer: every CDR change goes through one ordered queue that survives a database outage.

Calls must not wait on SQL, and a database that is down or slow must not lose a CDR. Writes are
queued in order and applied by one task; a failing write is retried with backoff (the queue keeps
growing, nothing is dropped). At shutdown, whatever could not be written is appended to a spool
file in the state directory, and the next writer replays it before anything else.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError

from ivrpowers.store.cdrs import CdrRepository

log = logging.getLogger("ivrpowers.cdr")

_DATETIME_FIELDS = {"started_at", "answered_at", "ended_at", "at"}


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
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.failures = 0  # consecutive failed attempts, for health reporting

    # -- the operations ------------------------------------------------------------------------
    def start_call(self, **fields: Any) -> None:
        self._put({"op": "start", **fields})

    def update_call(self, call_id: str, **fields: Any) -> None:
        self._put({"op": "update", "call_id": call_id, **fields})

    def add_event(self, call_id: str, type: str, at: datetime, node: str | None, detail: dict[str, Any]) -> None:
        self._put({"op": "event", "call_id": call_id, "type": type, "at": at, "node": node, "detail": dict(detail)})

    @property
    def backlog(self) -> int:
        return len(self._ops)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._load_spool()
        self._task = asyncio.create_task(self._run(), name="cdr-writer")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def close(self, timeout: float = 5.0) -> None:
        """Write what can be written within `timeout`, spool the rest to disk."""
        await self.flush(timeout)
        self._closing = True
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._ops:
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            with self.spool.open("a") as fh:
                for op in self._ops:
                    fh.write(_encode(op) + "\n")
            log.warning("database unavailable: %d CDR writes spooled to %s", len(self._ops), self.spool)
            self._ops.clear()

    # -- internals -----------------------------------------------------------------------------
    def _put(self, op: dict[str, Any]) -> None:
        if self._closing:
            raise RuntimeError("CDR writer is closed")
        self._ops.append(op)
        self._idle.clear()
        self._wake.set()

    def _load_spool(self) -> None:
        if not self.spool.exists():
            return
        lines = [line for line in self.spool.read_text().splitlines() if line.strip()]
        # Spooled writes are older than anything queued now: they go first.
        self._ops.extendleft(reversed([_decode(line) for line in lines]))
        self.spool.unlink()
        if lines:
            log.info("replaying %d spooled CDR writes", len(lines))
            self._idle.clear()
            self._wake.set()

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
                self._idle.set()
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
            self._ops.popleft()

    def _reject(self, op: dict[str, Any], exc: Exception) -> None:
        self._ops.popleft()
        rejected = self.spool.with_suffix(".rejected")
        rejected.parent.mkdir(parents=True, exist_ok=True)
        with rejected.open("a") as fh:
            fh.write(_encode({**op, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        log.error("CDR write rejected by the database (%s); kept in %s", exc, rejected)
