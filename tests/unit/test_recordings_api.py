"""An agent's page sends the video recording of a call it answered: stored as an MP4, linked to the
call by a `recording_saved` event; any other agent, call or second copy is refused."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivrpowers.media.call_recordings import CallRecordings
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.web.agent_auth import SignedTokens
from ivrpowers.web.app import create_app

CALL = "0b7a9a7e-3f7e-5c1e-9d59-0c7a8f1e2d3c"
OTHER = "1c8b0b8f-4a8f-5d2f-8e6a-1d8b9a2f3e4d"
API = "api-t0ken"


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ok", "problems": []}


@pytest.fixture(scope="module")
def webm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("webm") / "call.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=green:s=640x240:r=15:d=1",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:v", "libvpx", "-c:a", "libopus",
                    str(out)], check=True)
    return out.read_bytes()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], list[tuple[str, str, dict[str, Any]]],
                                                       CallRecordings, SignedTokens]]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    root = tmp_path / "recordings"
    root.mkdir()
    recordings = CallRecordings(root)
    notes: list[tuple[str, str, dict[str, Any]]] = []

    async def answered(agent_id: str, call_id: str) -> bool:
        return (agent_id, call_id) == ("ana", CALL)

    tokens = SignedTokens(b"k" * 32)
    app = create_app(health=Health(), cdrs=CdrRepository(db), api_token=API, agent_tokens=tokens,
                     recordings=(recordings, answered, lambda c, t, d: notes.append((c, t, d))))
    async with TestClient(TestServer(app)) as client:
        yield client, notes, recordings, tokens
    await db.close()


async def test_the_agent_who_answered_sends_it_once_and_it_becomes_an_mp4_on_the_call(
        setup: tuple[TestClient[Any, Any], list[tuple[str, str, dict[str, Any]]], CallRecordings, SignedTokens],
        webm: bytes) -> None:
    client, notes, recordings, tokens = setup
    ana = {"Authorization": f"Bearer {tokens.issue('ana')[0]}", "Content-Type": "video/webm"}
    bob = {"Authorization": f"Bearer {tokens.issue('bob')[0]}", "Content-Type": "video/webm"}
    assert (await client.post(f"/api/agents/bob/recordings/{CALL}", data=webm, headers=bob)).status == 403
    assert (await client.post(f"/api/agents/bob/recordings/{CALL}", data=webm, headers=ana)).status == 401
    assert (await client.post(f"/api/agents/ana/recordings/{OTHER}", data=webm, headers=ana)).status == 403
    assert (await client.post(f"/api/agents/ana/recordings/{CALL}", data=b"", headers=ana)).status == 400
    bad = await client.post(f"/api/agents/ana/recordings/{CALL}", data=b"not a video" * 10, headers=ana)
    assert bad.status == 422 and notes[-1][1] == "recording_failed"
    sent = await client.post(f"/api/agents/ana/recordings/{CALL}", data=webm, headers=ana)
    assert sent.status == 201, await sent.text()
    body = await sent.json()
    assert body["name"] == f"{CALL}-video.mp4" and body["by"] == "ana" and body["duration"] >= 0.9
    assert notes[-1] == (CALL, "recording_saved", body)
    path = recordings.path(body["name"])
    assert path is not None and path.read_bytes()[4:8] == b"ftyp" and path.stat().st_mode & 0o077 == 0
    assert (await client.post(f"/api/agents/ana/recordings/{CALL}", data=webm, headers=ana)).status == 409
    assert not [p for p in recordings.root.iterdir() if p.name.startswith(".")]  # no upload left behind
    assert recordings.path("../x-video.mp4") is None
