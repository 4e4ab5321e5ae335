"""Media facts in the CDR: a browser's video call to the video IVR ends, and its timeline's `media` event
gives the codecs negotiated and the packets each way, checked against what the browser itself counted
(getStats) when its connection closed.

VP8: the flow ends the call (a digit, its branch's prompt, hang up): the controller reads the channel
right before hanging it up, so its figures are the whole call's. H.264: the caller hangs up while the
flow waits for a digit: the channel is gone at once, and the figures are those read when the menu's
prompt ended (all of the IVR's video was sent by then; the camera's packets that came later are not in
them, which the event says with `final: false`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Page

from .browser import ARTIFACTS, Browsers
from .camera import GREEN, MAGENTA, Cameras
from .probe import inbound_video, start_freeze_meter, wait_colour, wait_frames_decoded, wait_until, watch_for
from .scenes import sign_in
from .stack import BLUE, PROMPT_FPS, RED, YELLOW, Stack, video_stack

MENU_FRAMES = int(4.0 * PROMPT_FPS)  # e2e-menu: 2 s red, 2 s blue
BRANCH_FRAMES = int(3.0 * PROMPT_FPS)  # e2e-one: 3 s yellow
# What the browser may have sent after Asterisk's last reading of a call it hung up itself: the
# reading is taken right before the hangup request, the browser closes when the BYE reaches it; tens of
# milliseconds here, up to half a second on a loaded machine: 25 audio packets (50 a second), fewer video.
AFTER_FINAL_READING = 25
TALK_MS = 2000  # how long the caller and the agent talk

# The browser's own counters at the moment its connection closes (getStats() throws once it is closed):
# JsSIP's close is held back until they are taken.
FINAL_STATS_JS = """(() => {
  const close = RTCPeerConnection.prototype.close;
  window.__finalStats = null;
  RTCPeerConnection.prototype.close = function () {
    if (this.connectionState === 'closed') return close.call(this);
    const pc = this;
    pc.getStats().then((report) => {
      const out = [];
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp' && s.type !== 'outbound-rtp') return;
        out.push({type: s.type, kind: s.kind, mid: s.mid ?? null, packetsReceived: s.packetsReceived ?? null,
                  packetsSent: s.packetsSent ?? null, packetsLost: s.packetsLost ?? null});
      });
      window.__finalStats = out;
    }).finally(() => close.call(pc));
  };
})();"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with video_stack(tmp_path_factory.mktemp("media-facts"), rtp_base=38000) as running:
        yield running


async def final_stats(page: Page) -> dict[tuple[str, str], dict[str, Any]]:
    """The browser's counters when its call's connection closed, by (inbound|outbound, kind)."""
    found = await wait_until(lambda: page.evaluate("window.__finalStats"), lambda s: s is not None,
                             timeout=10, what="the browser's counters at close")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for stream in found:
        key = (stream["type"].split("-")[0], stream["kind"])
        assert key not in out, f"one stream of each kind each way in an IVR call: {found}"
        out[key] = stream
    return out


@pytest.mark.parametrize(("codec", "ending"), [("vp8", "flow"), ("h264", "caller")])
async def test_the_timeline_says_what_was_negotiated_and_what_flowed(
        stack: Stack, browsers: Browsers, cameras: Cameras, codec: str, ending: str) -> None:
    user, password = stack.browser_account(f"facts{codec}")
    caller = await browsers.open("caller", cameras.get("caller", GREEN))
    await caller.context.add_init_script(script=FINAL_STATS_JS)
    page = caller.page
    await page.goto(f"{stack.web}/call#user={user}&password={password}&number=300&codec={codec}")
    await page.click("#video-call")
    await page.wait_for_function("document.body.dataset.state === 'in-call'", timeout=10_000)
    await wait_colour(page, "#remote", RED, timeout=5)
    await wait_colour(page, "#remote", BLUE, timeout=5)
    await stack.controller.wait_event(user, "prompt_played", node="menu", timeout=15)
    await wait_frames_decoded(page, MENU_FRAMES, timeout=5)
    frames = MENU_FRAMES
    if ending == "flow":
        await page.click("#keypad button:text-is('1')")  # e2e-one, then the flow hangs up
        await wait_colour(page, "#remote", YELLOW, timeout=5)
        frames += BRANCH_FRAMES
    else:
        before = await inbound_video(page)  # the menu is over: nothing more comes until a digit
        await page.click("#hangup")
    record = await stack.controller.wait_cdr(user, timeout=20)
    browser = await final_stats(page)
    if ending == "caller":
        assert [s["packetsReceived"] for s in before] == [browser[("inbound", "video")]["packetsReceived"]]

    media = [e for e in record["events"] if e["type"] == "media"]
    assert len(media) == 1, record["events"]
    facts = media[0]["detail"]
    assert (facts["channel"], facts["role"]) == (record["channel_id"], "caller")
    assert (facts["audio_codec"], facts["video_codec"]) == ("opus", codec)
    assert facts["final"] is (ending == "flow") and "missing" not in facts, facts
    # The hangup is the last event; the media event comes right before it.
    assert [e["type"] for e in record["events"]][-2:] == ["media", "hangup"]

    for kind in ("audio", "video"):
        sent, got = facts[kind], browser[("inbound", kind)]
        # Everything Asterisk sent (the prompts) was over before the reading: the browser got exactly
        # that many (loopback: nothing lost).
        assert sent["tx_packets"] == got["packetsReceived"] > 0, (kind, facts, browser)
        assert got["packetsLost"] == 0 and sent["tx_lost"] == 0 and sent["rx_lost"] == 0, (kind, facts, browser)
        # What Asterisk received was read before the browser stopped sending: never more than it sent,
        # and right before the hangup nearly all of it.
        camera = browser[("outbound", kind)]["packetsSent"]
        assert 0 < sent["rx_packets"] <= camera, (kind, facts, browser)
        if ending == "flow":
            assert camera - sent["rx_packets"] <= AFTER_FINAL_READING, (kind, facts, browser)
    # One packet a frame: the prompts' frames are small (a solid colour).
    if codec == "vp8":
        assert facts["video"]["tx_packets"] == frames, facts

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"media-facts-{codec}.json").write_text(json.dumps({
        "codec": codec, "ended_by": ending, "media_event": facts, "browser_at_close": {
            f"{direction}-{kind}": stream for (direction, kind), stream in browser.items()},
    }, indent=2))


async def test_a_caller_and_an_agent_each_have_their_channel_s_facts(
        stack: Stack, browsers: Browsers, cameras: Cameras) -> None:
    """The agent hangs up first: its leg's facts are its last reading; the caller's flow goes on and
    hangs up, so the caller's are read right before."""
    password = stack.video_agent("facts-agent")
    user, caller_password = stack.browser_account("factscust")
    caller, agent = await browsers.open_many({"caller": cameras.get("caller", GREEN),
                                              "agent": cameras.get("agent", MAGENTA)})
    for side in (caller, agent):
        await side.context.add_init_script(script=FINAL_STATS_JS)
    await sign_in(agent.page, stack, "facts-agent", password)
    await agent.page.click("#ready")
    await agent.page.wait_for_function("document.body.dataset.agentState === 'available'", timeout=10_000)
    await caller.page.goto(f"{stack.web}/call#user={user}&password={caller_password}&number=300&codec=vp8")
    await caller.page.click("#video-call")
    await wait_colour(caller.page, "#remote", RED, timeout=10)
    await caller.page.click("#keypad button:text-is('3')")
    await agent.page.wait_for_function("document.body.dataset.state === 'ringing'", timeout=15_000)
    await agent.page.click("#answer")
    await wait_colour(agent.page, "#remote", GREEN, timeout=10)
    await wait_colour(caller.page, "#remote", MAGENTA, timeout=10)
    # They talk for two seconds, each seeing the other's moving picture.
    for page in (agent.page, caller.page):
        await start_freeze_meter(page, "#remote")
    for page in (agent.page, caller.page):
        assert (await watch_for(page, "#remote", TALK_MS)).changes > 0
    await agent.page.click("#hangup")
    record = await stack.controller.wait_cdr(user, timeout=20)
    agent_stats = await final_stats(agent.page)

    media = {e["detail"]["role"]: e for e in record["events"] if e["type"] == "media"}
    assert set(media) == {"caller", "agent"}, record["events"]
    leg = media["agent"]["detail"]
    assert leg["channel"] != record["channel_id"] and (leg["audio_codec"], leg["video_codec"]) == ("opus", "vp8")
    assert leg["final"] is False and "missing" not in leg, leg  # the agent's browser hung up: gone at once
    # Its camera reached Asterisk (read half a second after it joined, then every 5 s)...
    assert 0 < leg["video"]["rx_packets"] <= agent_stats[("outbound", "video")]["packetsSent"], (leg, agent_stats)
    assert 0 < leg["audio"]["rx_packets"] <= agent_stats[("outbound", "audio")]["packetsSent"], (leg, agent_stats)
    # ...and the leg's event comes before it left.
    types = [(e["type"], e["detail"].get("channel")) for e in record["events"]]
    assert types.index(("media", leg["channel"])) + 1 == types.index(("leg_left", leg["channel"]))
    mine = media["caller"]["detail"]
    assert mine["final"] is True and (mine["audio_codec"], mine["video_codec"]) == ("opus", "vp8"), mine
    assert mine["video"]["tx_packets"] > 0 and mine["video"]["rx_packets"] > 0, mine
