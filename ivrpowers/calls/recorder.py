"""A flow's `record` node on ARI: record the caller's channel into a stored recording named after
the call and the node, wait for Asterisk to finish it, and measure it (`flows.services.Recorder`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ivrpowers.ari import AriError, LiveRecording
from ivrpowers.calls.ari_call import AriCall
from ivrpowers.flows.call import CallerHungUp
from ivrpowers.flows.services import Recording

if TYPE_CHECKING:
    from ivrpowers.calls.session import Session

# After the caller hangs up, how long Asterisk may take to close the file and say so.
_FINISH_GRACE = 5.0
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def recording_name(call_id: str, label: str, attempt: int) -> str:
    return f"{call_id}-{_SAFE.sub('_', label)[:40]}-{attempt}"


class SessionRecorder:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._count = 0

    async def record(
        self, label: str, *, max_duration: float, max_silence: float | None = None, beep: bool = True,
        terminator: str | None = "#", started: Callable[[str], Awaitable[None]] | None = None,
    ) -> Recording:
        call: AriCall = self.session.call
        client = self.session.ctx.client
        self._count += 1
        name = recording_name(self.session.call_id, label, self._count)
        done: asyncio.Future[tuple[LiveRecording, bool]] = asyncio.get_running_loop().create_future()
        call.recordings[name] = done
        try:
            await call.request_about_call(lambda: client.record(
                call.channel_id, name, "wav", max_duration_seconds=round(max_duration),
                max_silence_seconds=round(max_silence) if max_silence else None, beep=beep,
                terminate_on=terminator or "none", if_exists="overwrite"))
        except BaseException:
            call.recordings.pop(name, None)
            raise
        hung_up = False
        try:
            if started is not None:
                await started(name)
            finished, failed = await _first(done, call.destroyed, max_duration + _FINISH_GRACE)
        except CallerHungUp:
            hung_up = True
            finished, failed = await _first(done, None, _FINISH_GRACE)
        finally:
            call.recordings.pop(name, None)
        if terminator:
            call.discard_digit(terminator)
        if failed or finished is None:
            cause = finished.cause if finished is not None else "no end reported by Asterisk"
            raise AriError(500, "POST", f"/channels/{call.channel_id}/record", f"recording {name} failed: {cause}")
        size = 0
        try:
            size = len(await client.stored_recording_file(name))
        except AriError:
            pass  # measured when possible; the recording itself is what matters
        return Recording(name=name, duration=float(finished.duration or 0), reason="hangup" if hung_up else
                         "finished", size=size)


async def _first(
    done: asyncio.Future[tuple[LiveRecording, bool]], gone: asyncio.Event | None, timeout: float
) -> tuple[LiveRecording | None, bool]:
    """The recording's end; CallerHungUp first if `gone` is set before it; (None, True) on timeout."""
    waiters: set[asyncio.Future[object]] = {done}  # type: ignore[arg-type]
    gone_wait = asyncio.ensure_future(gone.wait()) if gone is not None else None
    if gone_wait is not None:
        waiters.add(gone_wait)  # type: ignore[arg-type]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if gone_wait is not None:
            gone_wait.cancel()
    if done.done():
        return done.result()
    if gone is not None and gone.is_set():
        raise CallerHungUp()
    return None, True
