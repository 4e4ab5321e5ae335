"""Recording a queue's conversations (`QueueDef.record`).

Asterisk records a bridge's mixed audio (`POST /bridges/{id}/record`), never its video: its bridge
recorder is an audio channel, and a channel in a bridge cannot be recorded (../shared/webrtc-video.md).
So the server keeps the audio of every recorded conversation, and a browser agent's page records a
video call's two pictures with their sound and hands the file over when the call ends
(`web/recordings_api.py`): the agent's offer says so in SIP headers, with the call it is for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ivrpowers.ari import AriError

if TYPE_CHECKING:
    from ivrpowers.calls.session import Session

log = logging.getLogger("ivrpowers.acd")

CALL_HEADER = "X-Ivrpowers-Call"  # the call an agent is rung for: where its page sends the recording
RECORD_HEADER = "X-Ivrpowers-Record"  # "yes": the agent's page records a video call
# After the bridge goes, how long Asterisk may take to close the file and say so.
FINISH_GRACE = 10.0


def offer_variables(session: Session, record: bool) -> dict[str, str] | None:
    """Channel variables of an agent's leg: SIP headers telling its page to record, and which call."""
    if not record:
        return None
    return {f"PJSIP_HEADER(add,{CALL_HEADER})": session.call_id, f"PJSIP_HEADER(add,{RECORD_HEADER})": "yes"}


def audio_name(call_id: str, bridge_id: str) -> str:
    return f"{call_id}-{bridge_id.rsplit('-b', 1)[-1]}-audio"


async def record_conversation(session: Session, bridge_id: str, gone: asyncio.Event) -> None:
    """Record the bridge's mixed audio until it ends; the call's timeline says when it started and
    what was saved (`recording_started`, `recording_saved` with `kind: audio`), or why not."""
    ctx, journal = session.ctx, session.journal
    name = audio_name(session.call_id, bridge_id)
    done = ctx.events.expect_recording(name)
    try:
        await ctx.client.record_bridge(bridge_id, name)
    except AriError as exc:
        ctx.events.recordings.pop(name, None)
        log.warning("call %s: conversation not recorded: %s", session.call_id, exc)
        journal.write("recording_failed", journal.last_node, {"name": name, "kind": "audio", "reason": str(exc)})
        return
    journal.write("recording_started", journal.last_node, {"name": name, "kind": "audio", "of": "conversation"})
    ended = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait([done, ended], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
        recording, failed = await asyncio.wait_for(done, FINISH_GRACE)
    except TimeoutError:
        recording, failed = None, True
    finally:
        ended.cancel()
        ctx.events.recordings.pop(name, None)
    if failed or recording is None:
        cause = recording.cause if recording is not None else "no end reported by Asterisk"
        journal.write("recording_failed", journal.last_node, {"name": name, "kind": "audio", "reason": cause})
        return
    size = 0
    try:
        size = len(await ctx.client.stored_recording_file(name))
    except AriError:
        pass  # measured when possible; the recording itself is what matters
    journal.write("recording_saved", journal.last_node, {"name": name, "kind": "audio", "format": "wav",
                                                          "duration": float(recording.duration or 0), "size": size})
