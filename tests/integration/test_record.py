"""Voicemail on the real Asterisk: the caller's audio (a 1 kHz tone) is in the stored recording, the
CDR names it, and the CLI lists and fetches it."""

from __future__ import annotations

import json
import math
import struct
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database

from .conftest import ControllerUnderTest
from .sipp import Dtmf, ExpectHangup, Pause, SippCall, Tone, run_call_async

pytestmark = pytest.mark.integration

FLOW = """
name: itest-record
start: answer
nodes:
  answer: {type: answer, next: message}
  message:
    type: record
    beep: false
    max_seconds: 20
    silence_seconds: 0
    var: msg
    next: bye
  bye: {type: play, media: ["recording:{{ vars.msg }}"]}
"""


def energy(samples: list[int], frequency: float, rate: int = 8000) -> float:
    """Goertzel: the power of one frequency in the samples."""
    coeff = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


async def test_a_voicemail_holds_the_callers_audio(controller: ControllerUnderTest, tmp_path: Path) -> None:
    number, caller = ("310", "7101") if controller.kind == "sqlite" else ("311", "7102")
    flow = tmp_path / "itest-record.yaml"
    flow.write_text(FLOW)
    controller.ivrpowers("flow", "import", str(flow), "--publish")
    controller.ivrpowers("route", "set", number, "itest-record")
    call = SippCall(number, caller, steps=[Pause(1.0), Tone(1000, 3.0), Dtmf("#"), ExpectHangup(20)])
    result = await run_call_async(call, controller_target(controller))
    assert result.ok, result.failure_reasons
    cdr = await controller.wait_cdr(caller)
    saved = next(e for e in cdr["events"] if e["type"] == "recording_saved")["detail"]
    assert saved["reason"] == "finished" and 2 <= saved["duration"] <= 6 and saved["size"] > 16000, saved
    played = [e["detail"]["media"] for e in cdr["events"] if e["type"] == "prompt_played"]
    assert played == [[f"recording:{saved['name']}"]]
    # The CLI lists it with its call, and fetches the file.
    listed = json.loads(controller.ivrpowers("recording", "list", "--call", cdr["id"], "--json").stdout)
    assert [r["name"] for r in listed] == [saved["name"]] and listed[0]["caller"] == caller
    out = tmp_path / "message.wav"
    controller.ivrpowers("recording", "get", saved["name"], "-o", str(out))
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        frames = wav.readframes(wav.getnframes())
    samples = list(struct.unpack(f"<{len(frames) // 2}h", frames))
    assert len(samples) / 8000 >= 2.5
    loudest = max(range(0, len(samples) - 8000, 800), key=lambda i: sum(abs(x) for x in samples[i:i + 8000]))
    second = samples[loudest:loudest + 8000]
    rms = math.sqrt(sum(x * x for x in second) / len(second))
    assert rms > 3000, f"the recording is (nearly) silent: rms {rms:.0f}"
    tone, off = energy(second, 1000), max(energy(second, f) for f in (400, 700, 1400, 2000))
    assert tone > 50 * off, f"no 1 kHz tone in the recording: {tone:.3g} vs {off:.3g} off-tone"

    # A retention policy: the call, made 100 days old here, goes with its recording (deleted from
    # Asterisk's store first) only when asked for. The controller has written all it had for it.
    await controller.wait_health(lambda h: h["cdr_backlog"] == 0, timeout=10)
    db = Database(controller.db_url)
    try:
        old = datetime.now(UTC) - timedelta(days=100)
        await CdrRepository(db).update(cdr["id"], started_at=old, ended_at=old + timedelta(seconds=10))
    finally:
        await db.close()
    kept = json.loads(controller.ivrpowers("db", "prune", "--before", "90d", "--json").stdout)
    assert (kept["calls"], kept["kept_for_recordings"]) == (0, 1)
    pruned = json.loads(controller.ivrpowers("db", "prune", "--before", "90d", "--recordings", "--json").stdout)
    assert (pruned["calls"], pruned["recordings"], pruned["kept_for_recordings"]) == (1, [saved["name"]], 0)
    assert controller.ivrpowers("cdr", "show", cdr["id"], check=False).returncode == 3
    gone = controller.ivrpowers("recording", "get", saved["name"], "-o", str(tmp_path / "gone.wav"), check=False)
    assert gone.returncode == 3 and "Asterisk has no recording" in gone.stderr
    assert not any("set aside" in problem for problem in controller.health().get("problems", []))


def controller_target(controller: ControllerUnderTest) -> tuple[str, int]:
    env = controller.env
    return env.get("IVRPOWERS_BIND_ADDRESS", "127.0.0.1"), int(env["IVRPOWERS_SIP_PORT"])
