"""`record`: voicemail. The recorder (the controller's, per call) names, records and measures it."""

from __future__ import annotations

from ..call import CallerHungUp
from ..interpreter import Run, handles
from ..schema import RecordNode


@handles(RecordNode)
async def _record(run: Run, node_id: str, node: RecordNode) -> str | None:
    # A digit typed during the greeting skips it (and is not the terminator of the recording).
    await run.play(node_id, node.prompt, barge_in=True)

    async def started(name: str) -> None:
        # Journaled as it starts: a call adopted mid-recording goes on (the node is skipped, and
        # Asterisk finishes the file) with `var` set, and the recording is listed.
        if node.var is not None:
            run.state.vars[node.var] = name
        await run.record("recording_started", node_id, {"name": name})

    recording = await run.recorder.record(
        node_id, max_duration=node.max_seconds, max_silence=node.silence_seconds or None, beep=node.beep,
        terminator=node.terminator, started=started)
    await run.record("recording_saved", node_id, {"name": recording.name, "duration": recording.duration,
                                                  "size": recording.size, "reason": recording.reason})
    if recording.reason == "hangup":
        raise CallerHungUp()
    return node.next
