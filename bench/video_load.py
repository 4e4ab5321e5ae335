"""The video bench's second part: CPU per concurrent call of a video IVR against a voice IVR.

One Asterisk and a real `ivrpowers run` (SQLite, CDRs and timeline written), two flows of the same
shape: answer, a menu whose prompt is `video:bench-menu` (a moving test picture, 320x240 at 10 fps, as
`ivrpowers media import` makes it) or, for the voice IVR, `sound:` of that same prompt's audio; any
digit plays a short branch prompt (video or its sound), then the flow hangs up. SIPp callers
(video_sipp.py) on plain RTP/AVP dial them as the bench's own endpoint, which allows PCMA, VP8 and
H.264 and lands in the dialplan's browser context, so the controller treats the calls as it treats
browsers' (it asks for their video codec; trunk and phone calls never have video here).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.procs import die_with_parent
from bench.targets import _asterisk_pid
from bench.video_sipp import CALLER
from ivrpowers.asterisk import process
from ivrpowers.media.records import decode_records
from tests.integration.conftest import AsteriskUnderTest, running_asterisk
from tests.integration.sipp import free_tcp_port

NUMBERS = {"video": "8201", "voice": "8202", "trunk": "8202"}
MENU, BRANCH = "bench-menu", "bench-branch"
MENU_SECONDS, BRANCH_SECONDS = 7.5, 1.5  # the caller's digit comes at 8 s (bench.media.DIGIT_AT)
PROMPT_FPS = 10
RTP_START = 30000

# The bench's caller endpoint, made over ARI's dynamic configuration (memory, gone with this Asterisk).
# No authentication: it exists only in the bench's Asterisk, inside the bench's private network
# namespace, where nothing else can reach it. The browser context: see the module's description.
ENDPOINT_FIELDS = [
    ("identify_by", "username"), ("context", "from-webrtc"), ("transport", "transport-udp"),
    ("disallow", "all"), ("allow", "alaw,vp8,h264"), ("dtmf_mode", "rfc4733"), ("direct_media", "no"),
    ("rtp_symmetric", "yes"), ("media_address", "127.0.0.1"), ("bind_rtp_to_media_address", "yes"),
    ("max_audio_streams", "1"), ("max_video_streams", "1"),
]  # fmt: skip

_OPTIONS = ", ".join(f'"{d}": branch' for d in "0123456789*#")
_FLOW = """\
name: {name}
start: answer
nodes:
  answer: {{type: answer, next: menu}}
  menu:
    type: menu
    prompt: {menu}
    options: {{{options}}}
    timeout: 5
    retries: 0
    on_invalid: bye
    on_timeout: bye
  branch: {{type: play, media: {branch}, barge_in: false, next: bye}}
  bye: {{type: hangup}}
"""


@dataclass(frozen=True)
class Prompt:
    """What one prompt sends a caller: RTP packets and payload bytes of its video file, its seconds."""

    name: str
    seconds: float
    video_packets: int
    video_bytes: int

    @property
    def audio_packets(self) -> int:
        return round(self.seconds * 50)  # 20 ms packets


@dataclass
class LoadStack:
    asterisk: AsteriskUnderTest
    asterisk_pid: int
    controller: subprocess.Popen[bytes]
    state: Path

    @property
    def library(self) -> Path:
        return self.state / "media"

    def variant(self, prompt: str, codec: str) -> Path:
        return self.library / f"{prompt}_{codec}.{codec}"

    def calls(self) -> dict[str, dict[str, int]]:
        """Per flow and source (browser: the bench's endpoint; trunk), the CDRs written: calls, ended,
        and calls whose digit chose the branch."""
        out: dict[str, dict[str, int]] = {}
        with sqlite3.connect(self.state / "ivrpowers.db") as db:
            for flow, source, total, ended in db.execute(
                    "SELECT flow_name, source, count(*), count(ended_at) FROM calls GROUP BY flow_name, source"):
                branch = db.execute("SELECT count(DISTINCT e.call_id) FROM call_events e JOIN calls c "
                                    "ON c.id = e.call_id WHERE c.flow_name = ? AND c.source = ? AND "
                                    "e.node = 'branch'", (flow, source)).fetchone()[0]
                out[f"{flow} from {source}"] = {"calls": int(total), "ended": int(ended), "branch": int(branch)}
        return out


def _clip(path: Path, seconds: float, tone: int) -> Path:
    """A moving test picture (shapes, a counter, a gradient: what a 300 kbit/s VP8 encoder fills) with a tone."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=s=320x240:r={PROMPT_FPS}:d={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=8000:duration={seconds}",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)], check=True, timeout=120)
    return path


def flows(library: Path) -> dict[str, str]:
    """The video flow and the voice one: the same nodes, `video:NAME` against the `sound:` of its audio
    (the very file an audio-only caller of the video flow hears)."""
    def sound(name: str) -> str:
        return f"sound:{library / f'{name}_vp8'}"

    return {
        "video": _FLOW.format(name="bench-video", menu=f"video:{MENU}", branch=f"video:{BRANCH}", options=_OPTIONS),
        "voice": _FLOW.format(name="bench-voice", menu=sound(MENU), branch=sound(BRANCH), options=_OPTIONS),
    }


@contextmanager
def load_stack(work: Path, media_address: str) -> Iterator[LoadStack]:
    """Asterisk with the bench's caller endpoint, the prompts imported, both flows routed, a controller."""
    state = work / "state"
    with running_asterisk(state, RTP_START, media_address=media_address) as asterisk:
        asterisk.ari("PUT", f"/asterisk/config/dynamic/res_pjsip/endpoint/{CALLER}",
                     {"fields": [{"attribute": k, "value": v} for k, v in ENDPOINT_FIELDS]})
        env = {**os.environ, **asterisk.env, "PYTHONUNBUFFERED": "1",
               "IVRPOWERS_WEB_PORT": str(free_tcp_port()),
               # The controller removes endpoints its database does not know, but an outbound trunk's
               # (an endpoint the operator made) it leaves alone; no transfer may use it (no allow-list).
               "IVRPOWERS_OUTBOUND_TRUNK": CALLER}
        env.pop("IVRPOWERS_DB_URL", None)  # SQLite in the state directory

        def ivrpowers(*args: str) -> None:
            out = subprocess.run([sys.executable, "-m", "ivrpowers", *args], env=env, capture_output=True,
                                 text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError(f"ivrpowers {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")

        ivrpowers("db", "upgrade")
        for name, seconds, tone in ((MENU, MENU_SECONDS, 440), (BRANCH, BRANCH_SECONDS, 1000)):
            ivrpowers("media", "import", str(_clip(work / f"{name}.mp4", seconds, tone)), "--name", name)
        for kind, text in flows(state / "media").items():
            flow_file = work / f"{kind}.yaml"
            flow_file.write_text(text)
            ivrpowers("flow", "import", str(flow_file), "--publish")
            ivrpowers("route", "set", NUMBERS[kind], f"bench-{kind}")
        launcher = process.status(asterisk.settings).pid
        if launcher is None:
            raise RuntimeError("the bench's Asterisk is not running")
        log = work / "controller.log"
        with log.open("wb") as fh:
            controller = subprocess.Popen([sys.executable, "-m", "ivrpowers", "run"], env=env, stdout=fh,
                                          stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        try:
            _wait_app(asterisk, controller, log)
            yield LoadStack(asterisk, _asterisk_pid(launcher), controller, state)
        finally:
            if controller.poll() is None:
                controller.terminate()
                try:
                    controller.wait(20)
                except subprocess.TimeoutExpired:
                    controller.kill()
                    controller.wait()


def prompt_facts(stack: LoadStack, codec: str) -> dict[str, Prompt]:
    out = {}
    for name, seconds in ((MENU, MENU_SECONDS), (BRANCH, BRANCH_SECONDS)):
        records = [r for r in decode_records(stack.variant(name, codec).read_bytes()) if r.payload]
        out[name] = Prompt(name, seconds, len(records), sum(len(r.payload) for r in records))
    return out


def _wait_app(asterisk: AsteriskUnderTest, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    app = asterisk.settings.ari_app
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the controller exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        apps = asterisk.ari("GET", "/applications")
        if isinstance(apps, list) and any(a.get("name") == app for a in apps):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the controller did not connect to ARI within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
