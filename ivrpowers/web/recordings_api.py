"""`POST /api/agents/{agent_id}/recordings/{call_id}`: a browser agent's page hands over the video
recording of a call it answered from a recording queue (`media/call_recordings.py`).

Only the agent who answered that call may, once: the page's own agent token (or the API token). The
body is the WebM the page recorded (both pictures and their sound), streamed to disk up to
`MAX_BYTES`, then made into an MP4 linked to the call's CDR by a `recording_saved` event (`kind:
video`). `ivrpowers recording get <call id>-video.mp4` fetches it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ivrpowers.media import MediaError
from ivrpowers.media.call_recordings import CallRecordings, video_name
from ivrpowers.web.agent_auth import AGENT
from ivrpowers.web.json_body import json_error
from ivrpowers.web.openapi import ERROR, Api, Param

log = logging.getLogger("ivrpowers.web")

UPLOAD_PATH = "/api/agents/{agent_id}/recordings/{call_id}"
MAX_BYTES = 512 * 1024 * 1024  # an hour of a small two-picture call is well under this
_CALL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CHUNK = 256 * 1024

Answered = Callable[[str, str], Awaitable[bool]]  # (agent id, call id): did that agent answer that call?
Note = Callable[[str, str, dict[str, Any]], None]  # (call id, event type, detail): into the call's timeline


async def _receive(request: web.Request, path: str) -> int:
    """The request's body into `path` (private), off the event loop; its size."""
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > MAX_BYTES:
                raise json_error(web.HTTPRequestEntityTooLarge, f"a recording may be {MAX_BYTES // 2**20} MiB at most")
            await asyncio.to_thread(os.write, fd, chunk)
    finally:
        os.close(fd)
    return size


def add_recording_routes(api: Api, recordings: CallRecordings, answered: Answered, note: Note) -> None:
    async def upload(request: web.Request) -> web.Response:
        agent_id, call_id = request.match_info["agent_id"], request.match_info["call_id"]
        if AGENT in request and request[AGENT] != agent_id:
            raise json_error(web.HTTPForbidden, "an agent sends its own recordings")
        if not _CALL_ID.fullmatch(call_id):
            raise json_error(web.HTTPNotFound, f"{call_id[:40]!r} is not a call id")
        if not await answered(agent_id, call_id):
            raise json_error(web.HTTPForbidden, f"agent {agent_id} did not answer call {call_id}")
        name = video_name(call_id)
        if recordings.path(name) is not None:
            raise json_error(web.HTTPConflict, f"call {call_id} has its video recording already")
        upload_path = recordings.root / f".{call_id}.upload.webm"
        try:
            size = await _receive(request, str(upload_path))
            if size == 0:
                raise json_error(web.HTTPBadRequest, "the recording is empty")
            saved = await asyncio.to_thread(recordings.save_webm, call_id, upload_path)
        except MediaError as exc:
            note(call_id, "recording_failed", {"name": name, "kind": "video", "reason": str(exc), "by": agent_id})
            raise json_error(web.HTTPUnprocessableEntity, str(exc)) from None
        finally:
            upload_path.unlink(missing_ok=True)
        detail = {"name": saved.name, "kind": "video", "format": "mp4", "duration": saved.duration,
                  "size": saved.size, "by": agent_id}
        note(call_id, "recording_saved", detail)
        log.info("call %s: video recording %s saved (%d bytes) from agent %s", call_id, saved.name, saved.size,
                 agent_id)
        return web.json_response(detail, status=201)

    api.add("POST", UPLOAD_PATH, upload, summary=(
        "A browser agent's page sends the video recording (WebM, both pictures and their sound) of a call it "
        "answered from a recording queue; stored as <call id>-video.mp4 and linked to the CDR"),
        params=[Param("agent_id", "path", {"type": "string"}, "the agent who answered the call"),
                Param("call_id", "path", {"type": "string"}, "the call's id (the offer's X-Ivrpowers-Call header)")],
        returns={201: {"type": "object"}, 400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR, 413: ERROR, 422: ERROR})
