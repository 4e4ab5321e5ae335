"""A supervisor on a third /agent page listens to, whispers to, barges into and watches a video call
between a caller (/call) and an agent (/agent) through the queue.

Each browser's microphone is a tone of its own (caller 440 Hz, agent 660 Hz, supervisor 1000 Hz: no
harmonic or mix product of the first two falls near the third), and who hears whom is measured in
each page: the spectrum (WebAudio AnalyserNode) of the audio it receives. The pictures are checked by
their pixels (the caller's camera green, the agent's magenta), the CDR timeline for the supervision.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from .browser import ARTIFACTS, Browsers, BrowserUnderTest, screenshot
from .camera import BLUE, GREEN, MAGENTA, Camera, Cameras
from .probe import sample_colour, wait_colour, wait_until
from .scenes import answer, press, sign_in, video_call
from .stack import Stack, video_stack

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 440, 660, 1000
FREQS = (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ)
# A tone heard: its peak this far above the band's median level (measured: 58-86 dB); not heard: below
# SILENT_DB (measured: 0-20 dB, opus and mixing noise).
HEARD_DB = 40
SILENT_DB = 28

# The received audio's level at each frequency, above the median of 200-2000 Hz (dB), over `ms`:
# the median over the frames (a tone is there all along, a click is not).
SPECTRUM_JS = """
async ({who, freqs, ms}) => {
  const st = window.ivrpowers;
  const pc = who === 'supervisor' ? st.supervisor.state.pc : st.pc;
  if (!pc) return null;
  const tracks = pc.getReceivers().map((r) => r.track)
    .filter((t) => t && t.kind === 'audio' && t.readyState === 'live');
  if (!tracks.length) return null;
  const ctx = window.__spectrum || (window.__spectrum = new AudioContext());
  await ctx.resume();
  const source = ctx.createMediaStreamSource(new MediaStream(tracks));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  analyser.smoothingTimeConstant = 0;
  source.connect(analyser);
  const data = new Float32Array(analyser.frequencyBinCount);
  const bin = ctx.sampleRate / analyser.fftSize;
  const frames = Object.fromEntries(freqs.map((f) => [f, []]));
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    analyser.getFloatFrequencyData(data);
    const band = Array.from(data.slice(Math.round(200 / bin), Math.round(2000 / bin))).sort((a, b) => a - b);
    const floor = band[Math.floor(band.length / 2)];
    for (const f of freqs) {
      const b = Math.round(f / bin);
      frames[f].push(Math.max(...data.slice(b - 2, b + 3)) - floor);
    }
  }
  source.disconnect();
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return Object.fromEntries(freqs.map((f) => [f, Math.round(median(frames[f]))]));
}
"""

Levels = dict[str, int]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with video_stack(tmp_path_factory.mktemp("supervision"), rtp_base=40000) as running:
        yield running


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """A fake microphone file per frequency (chromium loops it)."""
    directory = tmp_path_factory.mktemp("tones")
    made = {}
    for hz in FREQS:
        path = made[hz] = directory / f"tone-{hz}.wav"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"sine=frequency={hz}:sample_rate=48000:duration=10", "-ac", "1", "-c:a", "pcm_s16le",
                        str(path)], check=True, timeout=60)
    return made


async def open_with_tone(browsers: Browsers, name: str, camera: Camera, tone: Path) -> BrowserUnderTest:
    return await browsers.open(name, camera, [f"--use-file-for-fake-audio-capture={tone}"])


async def levels(page: Page, who: str, ms: int = 800) -> Levels | None:
    found: Levels | None = await page.evaluate(SPECTRUM_JS, {"who": who, "freqs": list(FREQS), "ms": ms})
    return found


def heard(found: Levels | None, hz: int) -> bool:
    return found is not None and found[str(hz)] >= HEARD_DB


def silent(found: Levels | None, hz: int) -> bool:
    return found is not None and found[str(hz)] < SILENT_DB


async def until_heard(page: Page, who: str, *freqs: int, timeout: float = 15) -> Levels:
    found = await wait_until(lambda: levels(page, who), lambda got: all(heard(got, hz) for hz in freqs),
                             timeout=timeout, interval=0.1, what=f"{who} hearing {freqs} Hz")
    assert found is not None
    return found


async def supervising(page: Page, agent_id: str, mode: str, timeout: float = 15) -> None:
    """Until the supervisor's listing shows its supervision of the agent's call live in `mode`."""
    await page.wait_for_function(
        """([agent, mode]) => {
          const sv = window.ivrpowers.supervisor;
          const c = sv && sv.state.list.find((x) => x.agent === agent);
          return Boolean(sv.state.session) && c && c.supervision && c.supervision.status === 'live'
            && c.supervision.mode === mode;
        }""", arg=[agent_id, mode], timeout=timeout * 1000)


@dataclass
class Call:
    caller: BrowserUnderTest
    agent: BrowserUnderTest
    boss: BrowserUnderTest
    user: str  # the caller's number
    row: str  # the conversation's row in the supervisor's panel
    call_id: str


async def video_call_and_supervisor(stack: Stack, browsers: Browsers, cameras: Cameras, tones: dict[int, Path],
                                    name: str) -> Call:
    """A caller and an agent talking with video through the queue, and a supervisor signed in whose panel
    lists their conversation."""
    agent_id, boss_id = f"{name}-agent", f"{name}-boss"
    agent_password = stack.video_agent(agent_id)
    boss_endpoint, boss_password = stack.browser_account(f"{name}-boss-browser")
    stack.controller.ivrpowers("agent", "create", boss_id, "--name", "Boss", "--endpoint", boss_endpoint,
                               "--supervisor")
    user, caller_password = stack.browser_account(f"{name}cust")  # no dash: the caller number is the user
    caller = await open_with_tone(browsers, "caller", cameras.get("caller", GREEN), tones[CALLER_HZ])
    agent = await open_with_tone(browsers, "agent", cameras.get("agent", MAGENTA), tones[AGENT_HZ])
    boss = await open_with_tone(browsers, "supervisor", cameras.get("supervisor", BLUE), tones[SUPERVISOR_HZ])
    await sign_in(agent.page, stack, agent_id, agent_password)
    # The supervisor serves no queue (the page shows no agent state for it): signed in, it gets the panel.
    await boss.page.goto(f"{stack.web}/agent")
    await boss.page.fill("#agent", boss_id)
    await boss.page.fill("#password", boss_password)
    await boss.page.click("#signin-button")
    await boss.page.wait_for_selector("#supervise", state="visible", timeout=10_000)
    # Only a supervisor gets it: the agent's token is refused the list.
    await agent.page.wait_for_function("window.ivrpowers.supervisor === null", timeout=10_000)
    assert not await agent.page.is_visible("#supervise")

    await agent.page.click("#ready")
    await agent.page.wait_for_function("document.body.dataset.agentState === 'available'", timeout=10_000)
    await video_call(caller.page, stack, user, caller_password)
    await press(caller.page, "3")
    await answer(agent.page)
    await wait_colour(agent.page, "#remote", GREEN, timeout=10)
    await wait_colour(caller.page, "#remote", MAGENTA, timeout=10)
    row = f'#supervise tr[data-agent="{agent_id}"]'
    await boss.page.wait_for_selector(row, timeout=10_000)
    assert await boss.page.get_attribute(row, "data-media") == "video"
    call_id = await boss.page.get_attribute(row, "data-call")
    assert call_id
    return Call(caller, agent, boss, user, row, call_id)


async def supervision_timeline(stack: Stack, call: Call, video: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The call's supervision events once the agent hung up; the supervisor's browser channel has
    its media event too (what it negotiated, and the microphone's packets that reached Asterisk)."""
    await call.agent.page.click("#hangup")
    record = await stack.controller.wait_cdr(call.user, timeout=20)
    media = [e["detail"] for e in record["events"] if e["type"] == "media" and e["detail"]["role"] == "supervisor"]
    assert len(media) == 1 and (media[0]["audio_codec"], media[0]["video_codec"]) == ("opus", video), media
    assert media[0]["audio"]["rx_packets"] > 0 and media[0]["final"] is True, media
    if video:  # watching: the picture reached the supervisor's browser
        assert media[0]["video"]["tx_packets"] > 0, media
    return [(e["type"], e["detail"]) for e in record["events"] if e["type"].startswith("supervision_")]


async def test_a_supervisor_listens_then_whispers_then_barges_into_a_call(
        stack: Stack, browsers: Browsers, cameras: Cameras, tones: dict[int, Path]) -> None:
    call = await video_call_and_supervisor(stack, browsers, cameras, tones, "sv1")
    caller, agent, boss, row = call.caller.page, call.agent.page, call.boss.page, call.row
    report: dict[str, Any] = {}

    # Listen: the supervisor hears both; neither hears the supervisor.
    await boss.click(f'{row} button[data-mode="listen"]')
    await supervising(boss, "sv1-agent", "listen")
    report["listen"] = {"supervisor": await until_heard(boss, "supervisor", CALLER_HZ, AGENT_HZ),
                        "caller": await levels(caller, "caller"), "agent": await levels(agent, "agent")}
    assert silent(report["listen"]["caller"], SUPERVISOR_HZ), report
    assert silent(report["listen"]["agent"], SUPERVISOR_HZ), report

    # Whisper: the agent hears the supervisor, the caller does not; the supervisor still hears both.
    await boss.click(f'{row} button[data-mode="whisper"]')
    await supervising(boss, "sv1-agent", "whisper")
    report["whisper"] = {"agent": await until_heard(agent, "agent", SUPERVISOR_HZ, CALLER_HZ),
                         "caller": await levels(caller, "caller"),
                         "supervisor": await until_heard(boss, "supervisor", CALLER_HZ, AGENT_HZ)}
    assert silent(report["whisper"]["caller"], SUPERVISOR_HZ), report

    # Barge: all three hear each other.
    await boss.click(f'{row} button[data-mode="barge"]')
    await supervising(boss, "sv1-agent", "barge")
    report["barge"] = {"caller": await until_heard(caller, "caller", SUPERVISOR_HZ, AGENT_HZ),
                       "agent": await until_heard(agent, "agent", SUPERVISOR_HZ, CALLER_HZ),
                       "supervisor": await until_heard(boss, "supervisor", CALLER_HZ, AGENT_HZ)}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "supervision-audio.json").write_text(json.dumps(report, indent=2))

    # Stop (the panel's button): the supervisor's call ends, the conversation goes on.
    await boss.click("#supervise .sv-stop")
    await boss.wait_for_function("!window.ivrpowers.supervisor.state.session", timeout=10_000)
    assert await agent.evaluate("document.body.dataset.state") == "in-call"
    timeline = await supervision_timeline(stack, call)
    assert [t for t, _ in timeline] == ["supervision_started"] + ["supervision_changed"] * 2 + ["supervision_ended"]
    assert timeline[0][1]["supervisor"] == "sv1-boss" and timeline[0][1]["mode"] == "listen", timeline
    assert [d["mode"] for _, d in timeline[1:3]] == ["whisper", "barge"], timeline
    assert timeline[-1][1]["reason"] == "stopped" and timeline[-1][1]["mode"] == "barge", timeline


async def test_a_supervisor_watches_a_video_call_from_the_cli(
        stack: Stack, browsers: Browsers, cameras: Cameras, tones: dict[int, Path]) -> None:
    call = await video_call_and_supervisor(stack, browsers, cameras, tones, "sv2")
    caller, agent, boss = call.caller.page, call.agent.page, call.boss.page
    listed = json.loads(stack.controller.ivrpowers("supervise", "list", "--json").stdout)
    mine = next(c for c in listed if c["call_id"] == call.call_id)
    assert mine["agent"] == "sv2-agent" and mine["media"] == "video" and mine["supervision"] is None, mine

    # Watch: both pictures on the supervisor's page, heard by nobody; the caller and the agent still see
    # each other (the supervisor sends no picture of its own into the SFU).
    stack.controller.ivrpowers("supervise", call.call_id[:12], "--mode", "watch", "--as", "sv2-boss")
    await supervising(boss, "sv2-agent", "watch")
    await boss.wait_for_function("document.querySelectorAll('#supervise video.sv-picture').length >= 2",
                                 timeout=15_000)
    seen = set()
    for index in (1, 2):
        selector = f"#supervise video.sv-picture:nth-of-type({index})"
        seen.add(await wait_until(lambda s=selector: _which(boss, s), lambda c: c is not None, timeout=15,
                                  what=f"{selector} showing the caller's or the agent's camera"))
    assert seen == {"caller", "agent"}, seen
    await screenshot(boss, "supervisor-watch")
    report = {"supervisor": await until_heard(boss, "supervisor", CALLER_HZ, AGENT_HZ),
              "caller": await levels(caller, "caller"), "agent": await levels(agent, "agent")}
    assert silent(report["caller"], SUPERVISOR_HZ) and silent(report["agent"], SUPERVISOR_HZ), report
    await wait_colour(caller, "#remote", MAGENTA, timeout=5)
    await wait_colour(agent, "#remote", GREEN, timeout=5)
    # An audio-only call could not be watched: refused by the API (unit tests); here, watching twice is
    # the same supervision, and another supervisor's request is refused.
    refused = stack.controller.ivrpowers("supervise", call.call_id, "--mode", "listen", "--endpoint",
                                         "sv1-boss-browser", check=False)
    assert refused.returncode == 1 and "supervised by sv2-boss" in refused.stderr, refused.stderr

    stack.controller.ivrpowers("supervise", "stop", call.call_id[:12])
    await boss.wait_for_function("!window.ivrpowers.supervisor.state.session", timeout=10_000)
    assert await agent.evaluate("document.body.dataset.state") == "in-call"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "supervision-watch.json").write_text(json.dumps(report, indent=2))
    timeline = await supervision_timeline(stack, call, video="vp8")
    assert [(t, d["mode"]) for t, d in timeline] == [("supervision_started", "watch"), ("supervision_ended", "watch")]
    assert timeline[-1][1]["reason"] == "stopped", timeline


async def _which(page: Page, selector: str) -> str | None:
    """Whose camera the <video> shows: "caller", "agent", or None (neither yet)."""
    colour = await sample_colour(page, selector)
    if colour is None:
        return None
    for name, rgb in (("caller", GREEN), ("agent", MAGENTA)):
        if colour.distance(rgb) <= 40:
            return name
    return None
