"""The CDR spool: the queue of record for CDR writes, on disk, with memory as a window onto it.

Each record is appended to a segment file with one unbuffered `os.write`, so a process crash right
after `append` returns loses nothing. fsync runs in a thread and is grouped: a round covers every
line written before it, and a round starts at most every `sync_interval` seconds (sooner than that
nothing is pending). Memory holds at most `window` pending records, the oldest ones; newer ones live
only in the files and are read back (in a thread) as the window drains.

Nothing is ever rewritten, so draining is linear in the backlog: the first segment is the spool path
itself (`cdr-spool.jsonl`), later ones are numbered (`cdr-spool.000001.jsonl`); the active segment
is truncated to empty whenever every record is done, a full one is closed for a new one, and a
closed segment whose records are all done is deleted whole.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("ivrpowers.cdr")

Record = dict[str, Any]
READ_CHUNK = 1 << 20


@dataclass
class _Segment:
    seq: int
    path: Path
    first: int  # global index of its first record
    records: int = 0
    size: int = 0  # bytes, all of them whole lines
    fd: int | None = None  # open for appending while active, and after until its last fsync
    dirty: bool = False  # written since its last fsync


@dataclass
class SpoolStats:
    """Counters that prove the work is linear (tests and benchmarks read them)."""

    bytes_written: int = 0
    records_read_back: int = 0
    bytes_read_back: int = 0
    sync_rounds: int = 0
    sync_errors: int = 0
    truncations: int = 0
    segments_deleted: int = 0


class Spool:
    """`encode(record)` gives one line of bytes, its newline included; `decode` reads one back."""

    def __init__(
        self, path: Path, *, window: int, encode: Callable[[Record], bytes], decode: Callable[[bytes], Record],
        segment_bytes: int = 8 << 20, sync_interval: float = 0.2,
    ) -> None:
        self.path = path
        self.window_max = max(1, window)
        self.segment_bytes = segment_bytes
        self.sync_interval = sync_interval
        self.stats = SpoolStats()
        self._encode, self._decode = encode, decode
        self._segments: deque[_Segment] = deque()
        self._window: deque[Record] = deque()
        self._total = 0  # records ever appended (or found at open); global indexes are below this
        self._done = 0  # the oldest `_done` records are done
        self._synced = 0  # records up to this index survive a power loss
        self._cursor: tuple[int, int] = (0, 0)  # (segment seq, offset) of the first record not in memory
        self._unlink: list[Path] = []
        self._dir_dirty = False
        self._to_sync = asyncio.Event()
        self._sync_progress = asyncio.Event()
        self._sync_task: asyncio.Task[None] | None = None
        self._round: asyncio.Future[bool] | None = None  # the sync thread's current round

    # -- counts -----------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._total - self._done

    @property
    def in_memory(self) -> int:
        return len(self._window)

    @property
    def on_disk_only(self) -> int:
        return self._total - self._done - len(self._window)

    @property
    def total(self) -> int:
        return self._total

    @property
    def done_count(self) -> int:
        return self._done

    # -- lifecycle --------------------------------------------------------------------------------
    def open(self) -> int:
        """Find the segments, cut torn tails, count what is pending; the number of records to replay."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for seq, path in self._existing():
            records, size = _repair_and_count(path)
            self._segments.append(_Segment(seq, path, self._total, records, size, dirty=records > 0))
            self._total += records
        if not self._segments:
            self._segments.append(_Segment(0, self.path, 0))
        active = self._segments[-1]
        active.fd = _open_append(active.path)
        self._cursor = (self._segments[0].seq, 0)
        self._dir_dirty = True
        self._collect()
        self._sync_task = asyncio.create_task(self._sync_loop(), name="cdr-spool-sync")
        self._to_sync.set()  # replayed records were maybe never fsynced
        return self._total

    async def close(self) -> None:
        """Last fsync, then close; what is pending stays in the files for the next start."""
        if self._sync_task is not None:
            self._sync_task.cancel()
            await asyncio.gather(self._sync_task, return_exceptions=True)
            self._sync_task = None
        if self._round is not None:
            await asyncio.gather(self._round, return_exceptions=True)
        fds, unlink, sync_dir = self._take_sync_work()
        await asyncio.to_thread(self._sync_files, fds, unlink, sync_dir)
        self._synced = self._total
        for seg in self._segments:
            if seg.fd is not None:
                os.close(seg.fd)
                seg.fd = None

    # -- the queue --------------------------------------------------------------------------------
    def append(self, record: Record) -> None:
        line = self._encode(record)
        active = self._segments[-1]
        if active.size >= self.segment_bytes:
            active = self._rotate()
        assert active.fd is not None, "spool not open"
        _write_line(active.fd, line, active.size)
        if self.on_disk_only == 0:
            if len(self._window) < self.window_max:
                self._window.append(record)
            else:
                self._cursor = (active.seq, active.size)  # the first record kept on disk only
        active.size += len(line)
        active.records += 1
        active.dirty = True
        self._total += 1
        self.stats.bytes_written += len(line)
        self._to_sync.set()

    def head(self, n: int) -> list[Record]:
        """Up to `n` of the oldest pending records that are in memory."""
        return list(itertools.islice(self._window, n))

    def done(self, n: int) -> None:
        """The `n` oldest records are done (written or set aside)."""
        for _ in range(n):
            self._window.popleft()
        self._done += n
        self._collect()

    def needs_refill(self) -> bool:
        return self.on_disk_only > 0 and len(self._window) <= self.window_max // 2

    async def refill(self) -> None:
        """Read the next records kept on disk only into memory, up to the window's size."""
        want = min(self.window_max - len(self._window), self.on_disk_only)
        if want <= 0:
            return
        seq, offset = self._cursor
        plan = [(s.seq, s.path, offset if s.seq == seq else 0, s.size) for s in self._segments if s.seq >= seq]
        records, self._cursor, nbytes = await asyncio.to_thread(self._read, plan, want)
        self._window.extend(records)
        self.stats.records_read_back += len(records)
        self.stats.bytes_read_back += nbytes
        if len(records) < want:
            raise RuntimeError(f"CDR spool {self.path}: {want} records expected on disk, {len(records)} found")

    async def wait_synced(self, timeout: float | None) -> bool:
        """Wait until every record appended before this call survives a power loss; False on timeout."""
        target = self._total
        return await wait_for_count(self._sync_progress, lambda: self._synced, target, timeout)

    # -- internals --------------------------------------------------------------------------------
    def _segment_path(self, seq: int) -> Path:
        return self.path if seq == 0 else self.path.with_name(f"{self.path.stem}.{seq:06d}{self.path.suffix}")

    def _existing(self) -> list[tuple[int, Path]]:
        pattern = re.compile(re.escape(self.path.stem) + r"\.(\d+)" + re.escape(self.path.suffix) + "$")
        found = [(0, self.path)] if self.path.exists() else []
        for path in self.path.parent.iterdir():
            if match := pattern.match(path.name):
                found.append((int(match[1]), path))
        return sorted(found)

    def _rotate(self) -> _Segment:
        old = self._segments[-1]
        seg = _Segment(old.seq + 1, self._segment_path(old.seq + 1), self._total)
        seg.fd = _open_append(seg.path)
        self._segments.append(seg)
        self._dir_dirty = True
        if not old.dirty and old.fd is not None:  # else the next sync round closes it
            os.close(old.fd)
            old.fd = None
        return seg

    def _collect(self) -> None:
        """Drop segments whose records are all done; empty the active one once everything is done."""
        while len(self._segments) > 1 and self._done >= self._segments[0].first + self._segments[0].records:
            seg = self._segments.popleft()
            if seg.fd is not None:
                os.close(seg.fd)
                seg.fd = None
            self._unlink.append(seg.path)  # by the sync thread: unlinking a big file can take a while
            self.stats.segments_deleted += 1
            self._to_sync.set()
        active = self._segments[-1]
        if self._done == self._total and active.size:
            assert active.fd is not None
            # O_APPEND: the next line lands at the new end. Cheap: the file is at most one segment.
            os.ftruncate(active.fd, 0)
            active.first, active.records, active.size = self._total, 0, 0
            self.stats.truncations += 1

    def _take_sync_work(self) -> tuple[list[int], list[Path], bool]:
        active = self._segments[-1] if self._segments else None
        fds = []
        for seg in self._segments:
            if seg.fd is None:
                continue
            if seg.dirty:
                fds.append(os.dup(seg.fd))  # the thread owns the copy: the loop may close its own
                seg.dirty = False
            if seg is not active:
                os.close(seg.fd)
                seg.fd = None
        unlink, self._unlink = self._unlink, []
        sync_dir, self._dir_dirty = self._dir_dirty, False
        return fds, unlink, sync_dir

    async def _sync_loop(self) -> None:
        while True:
            await self._to_sync.wait()
            self._to_sync.clear()
            target = self._total
            fds, unlink, sync_dir = self._take_sync_work()
            self._round = asyncio.ensure_future(asyncio.to_thread(self._sync_files, fds, unlink, sync_dir))
            try:
                # Shielded: cancelling this task must not leave the thread running after close().
                if await asyncio.shield(self._round):
                    self._synced = max(self._synced, target)
            except Exception:  # this task must not die: flush-for-durability waits on it
                self.stats.sync_errors += 1
                log.exception("CDR spool sync round failed")
                self._to_sync.set()
            self.stats.sync_rounds += 1
            self._sync_progress.set()
            await asyncio.sleep(self.sync_interval)

    def _sync_files(self, fds: list[int], unlink: list[Path], sync_dir: bool) -> bool:
        ok = True
        for fd in fds:
            try:
                os.fsync(fd)
            except OSError as exc:
                ok = False
                self.stats.sync_errors += 1
                log.error("fsync of the CDR spool failed: %s", exc)
            finally:
                os.close(fd)
        for i, path in enumerate(unlink):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                # Oldest first, and none after a failure: replaying a leftover segment is harmless only if
                # every later one is replayed after it (an old update must not land after a newer one).
                log.error("could not delete drained CDR spool segment %s: %s", path, exc)
                self._unlink[:0] = unlink[i:]
                break
        if sync_dir:  # a new segment's name survives a power loss too
            try:
                dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            except OSError as exc:
                ok = False
                self.stats.sync_errors += 1
                log.error("fsync of the CDR spool directory failed: %s", exc)
        return ok

    def _read(self, plan: list[tuple[int, Path, int, int]], want: int) -> tuple[list[Record], tuple[int, int], int]:
        records: list[Record] = []
        nbytes = 0
        cursor = self._cursor
        for seq, path, start, end in plan:
            cursor = (seq, start)
            with path.open("rb") as fh:
                fh.seek(start)
                pos, rest = start, b""
                while pos < end and len(records) < want:
                    chunk = rest + fh.read(min(READ_CHUNK, end - pos - len(rest)))
                    if len(chunk) == len(rest):
                        raise RuntimeError(f"CDR spool {path} is shorter than expected")
                    lines = chunk.split(b"\n")
                    rest = lines.pop()  # incomplete line: the next chunk completes it
                    for line in lines:
                        pos += len(line) + 1
                        nbytes += len(line) + 1
                        if line.strip():
                            records.append(self._decode_line(line))
                            if len(records) == want:
                                break
                cursor = (seq, pos)
            if len(records) == want:
                break
        return records, cursor, nbytes

    def _decode_line(self, line: bytes) -> Record:
        try:
            return self._decode(line)
        except ValueError:
            # Garbage left by a power loss, say: the writer sets it aside, it is not silently dropped.
            return {"op": "unreadable", "line": line.decode("utf-8", errors="replace")}


async def wait_for_count(progress: asyncio.Event, count: Callable[[], int], target: int,
                         timeout: float | None) -> bool:
    """Wait until `count()` reaches `target`, re-checking whenever `progress` is set; False on timeout."""
    try:
        async with asyncio.timeout(timeout):
            while count() < target:
                progress.clear()
                await progress.wait()
        return True
    except TimeoutError:
        return False


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _write_line(fd: int, line: bytes, size: int) -> None:
    view = memoryview(line)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        # Disk full, say: never leave half a line for the next append to merge with.
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise


def _repair_and_count(path: Path) -> tuple[int, int]:
    """Cut a torn last line (a crash mid-append); the number of records and the size left."""
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with path.open("r+b") as fh:
            fh.truncate(keep)
        log.warning("%s: torn last line cut (%d bytes)", path, len(data) - keep)
        data = data[:keep]
    return sum(1 for line in data.split(b"\n") if line.strip()), keep
