"""A video caller from /call reaches a video agent on /agent through the queue: while waiting the
caller sees the queue's hold video; the agent's offer shows who calls; once answered each browser
shows the other's camera (pixels), with the longest freeze measured on both sides. The wallboard
shows a caller waiting in that queue within a second. A waiting caller whose tab closes, or whose
browser dies, is hung up and leaves the queue."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from ivrpowers.calls.media_facts import SAMPLE_EVERY, SILENT_AFTER

from .browser import ARTIFACTS, Browsers, screenshot
from .camera import BLUE, GREEN, MAGENTA, Cameras
from .probe import inbound_video, start_freeze_meter, wait_colour, watch_for
from .scenes import answer, press, sign_in, video_call, wait_in_queue
from .stack import ORANGE, VIOLET, Stack, video_stack

# How long each side's picture is watched for freezes, from the agent's answer.
WATCH_MS = 4000
MAX_FREEZE_MS = 1000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with video_stack(tmp_path_factory.mktemp("video-agent"), rtp_base=35000) as running:
        yield running


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_a_video_caller_waits_watching_hold_video_and_talks_face_to_face_with_an_agent(
        stack: Stack, browsers: Browsers, cameras: Cameras, codec: str) -> None:
    agent_id = f"vid-{codec}"
    password = stack.video_agent(agent_id)
    user, caller_password = stack.browser_account(f"cust{codec}")
    caller, agent = await browsers.open_many({"caller": cameras.get("caller", GREEN),
                                              "agent": cameras.get("agent", MAGENTA)})
    await sign_in(agent.page, stack, agent_id, password)

    await video_call(caller.page, stack, user, caller_password, codec)
    await press(caller.page, "3")
    # Nobody ready yet: the caller waits, watching the queue's hold video.
    await wait_colour(caller.page, "#remote", ORANGE, timeout=10)
    await screenshot(caller.page, f"call-video-hold-{codec}")

    await agent.page.click("#ready")
    await agent.page.wait_for_function("document.body.dataset.state === 'ringing'", timeout=15_000)
    assert await agent.page.text_content("#offer-channel") == "video call"
    assert user in (await agent.page.text_content("#offer-caller") or "")
    assert await agent.page.text_content("#offer-queue") == "video-desk"
    assert "account4455" in (await agent.page.text_content("#offer-vars") or "").replace(" ", "")
    await screenshot(agent.page, f"agent-offer-{codec}")
    answered = time.monotonic()
    await agent.page.click("#answer")
    await agent.page.wait_for_function("document.body.dataset.state === 'in-call'", timeout=10_000)

    # Each sees the other's camera (how long after the answer: polled, to within 50 ms)...
    await wait_colour(agent.page, "#remote", GREEN, timeout=10)
    agent_sees = time.monotonic() - answered
    await wait_colour(caller.page, "#remote", MAGENTA, timeout=10)
    caller_sees = time.monotonic() - answered
    # ...and it keeps moving: the longest freeze on each side once the bridge is made.
    for page in (agent.page, caller.page):
        await start_freeze_meter(page, "#remote")
    agent_view, caller_view = [await watch_for(p, "#remote", WATCH_MS) for p in (agent.page, caller.page)]
    await screenshot(agent.page, f"agent-video-call-{codec}")
    await screenshot(caller.page, f"call-video-agent-{codec}")
    received = {side: await inbound_video(p) for side, p in (("agent", agent.page), ("caller", caller.page))}
    codecs = {side: [s["mimeType"].lower() for s in streams] for side, streams in received.items()}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"video-agent-{codec}.json").write_text(json.dumps({
        "codec": codec, "codecs_received": codecs,
        "answer_to_agent_sees_caller_s": round(agent_sees, 2), "answer_to_caller_sees_agent_s": round(caller_sees, 2),
        "agent_longest_freeze_ms": round(agent_view.longest_gap_ms), "agent_changes": agent_view.changes,
        "caller_longest_freeze_ms": round(caller_view.longest_gap_ms), "caller_changes": caller_view.changes,
        "caller_packets_lost": sum(s["packetsLost"] for s in received["caller"]),
    }, indent=2))
    # The agent's start-up burst never reaches the caller as a gap (it did: 17 packets "lost").
    assert all(s["packetsLost"] == 0 for s in received["caller"]), received["caller"]
    assert agent_view.longest_gap_ms < MAX_FREEZE_MS, agent_view
    assert caller_view.longest_gap_ms < MAX_FREEZE_MS, caller_view
    # Each side gets the other's picture on a stream of its own (the caller's first one carried the
    # IVR and the hold: an SFU bridge), all in the codec chosen: nothing is transcoded.
    assert set(codecs["agent"]) == {f"video/{codec}"} and set(codecs["caller"]) == {f"video/{codec}"}, codecs

    # The agent puts the caller on hold: the caller sees the queue's hold video; then takes them back.
    await agent.page.click("#hold")
    await wait_colour(caller.page, "#remote", ORANGE, timeout=10)
    if codec == "vp8":  # held longer than the silence after which a browser counts as gone: both still send
        await start_freeze_meter(caller.page, "#remote")
        held = await watch_for(caller.page, "#remote", (SILENT_AFTER + SAMPLE_EVERY + 1) * 1000)
        assert held.frames > 0, held
        await wait_colour(caller.page, "#remote", ORANGE, timeout=2)
    await agent.page.click("#hold")
    await wait_colour(caller.page, "#remote", MAGENTA, timeout=10)
    await wait_colour(agent.page, "#remote", GREEN, timeout=10)

    await agent.page.click("#hangup")
    record = await stack.controller.wait_cdr(user, timeout=20)
    assert record["queue"]["agent"] == agent_id, record.get("queue")
    assert [e["type"] for e in record["events"] if e["type"] in ("held", "unheld")] == ["held", "unheld"]


async def test_an_agent_already_ready_answers_during_the_queue_welcome_and_both_see_each_other(
        stack: Stack, browsers: Browsers, cameras: Cameras) -> None:
    """The common case: an agent waits for calls; the offer rings while the caller still sees the
    queue's welcome. The welcome stops, no hold starts inside the bridge, and media flows both ways."""
    agent_id = "vid-ready"
    password = stack.video_agent(agent_id)
    user, caller_password = stack.browser_account("custready")
    caller, agent = await browsers.open_many({"caller": cameras.get("caller", GREEN),
                                              "agent": cameras.get("agent", MAGENTA)})
    await sign_in(agent.page, stack, agent_id, password)
    await agent.page.click("#ready")
    await agent.page.wait_for_function("document.body.dataset.agentState === 'available'", timeout=10_000)

    await video_call(caller.page, stack, user, caller_password)
    await press(caller.page, "3")
    await wait_colour(caller.page, "#remote", VIOLET, timeout=10)  # the welcome: 4 s long
    await answer(agent.page)
    await agent.page.wait_for_function("document.body.dataset.state === 'in-call'", timeout=10_000)

    await wait_colour(agent.page, "#remote", GREEN, timeout=10)
    await wait_colour(caller.page, "#remote", MAGENTA, timeout=10)
    await screenshot(agent.page, "agent-answered-during-welcome")
    await agent.page.click("#hangup")
    record = await stack.controller.wait_cdr(user, timeout=20)
    assert record["queue"]["agent"] == agent_id, record.get("queue")
    # The welcome was cut short for the agent, and the caller was never put on hold with them.
    played = [e for e in record["events"] if e["type"] == "prompt_played" and e["node"] == "desk"]
    assert [e["detail"]["media"] for e in played] == [["video:e2e-welcome"]], played


async def test_an_agent_transfers_a_video_caller_to_another_queue_whose_agent_answers(
        stack: Stack, browsers: Browsers, cameras: Cameras) -> None:
    first_password = stack.video_agent("vid-first")
    second_password = stack.video_agent("vid-second", queue="video-two")
    user, caller_password = stack.browser_account("custmoved")
    caller, first, second = await browsers.open_many({"caller": cameras.get("caller", GREEN),
                                                      "agent": cameras.get("agent", MAGENTA),
                                                      "second": cameras.get("second", BLUE)})
    await sign_in(first.page, stack, "vid-first", first_password)
    await sign_in(second.page, stack, "vid-second", second_password)
    await first.page.click("#ready")
    await second.page.click("#ready")
    await video_call(caller.page, stack, user, caller_password)
    await press(caller.page, "3")
    await answer(first.page)
    await wait_colour(caller.page, "#remote", MAGENTA, timeout=10)

    await first.page.select_option("#transfer-queue", "video-two")
    await first.page.click("#transfer")
    await first.page.wait_for_function("document.body.dataset.state === 'ready'", timeout=10_000)
    await second.page.wait_for_function("document.body.dataset.state === 'ringing'", timeout=15_000)
    assert await second.page.text_content("#offer-queue") == "video-two"
    await second.page.click("#answer")
    await wait_colour(caller.page, "#remote", BLUE, timeout=10)
    await wait_colour(second.page, "#remote", GREEN, timeout=10)
    await screenshot(second.page, "agent-after-transfer")
    await second.page.click("#hangup")
    record = await stack.controller.wait_cdr(user, timeout=20)
    moves = [(e["type"], e["detail"].get("queue") or e["detail"].get("to"))
             for e in record["events"] if e["type"] in ("queue_joined", "transferred", "queue_answered")]
    assert moves == [("queue_joined", "video-desk"), ("queue_answered", "video-desk"), ("transferred", "video-two"),
                     ("queue_joined", "video-two"), ("queue_answered", "video-two")], moves


async def test_a_video_call_lasts_past_half_a_minute_and_ends_when_the_agents_page_goes_away(
        stack: Stack, browsers: Browsers, cameras: Cameras) -> None:
    """No media timeout cuts a long video call (each browser only receives on the stream that carries
    the other's picture); an agent whose tab closes mid-call ends it at once, and is not left busy."""
    password = stack.video_agent("vid-long")
    user, caller_password = stack.browser_account("custlong")
    caller, agent = await browsers.open_many({"caller": cameras.get("caller", GREEN),
                                              "agent": cameras.get("agent", MAGENTA)})
    await sign_in(agent.page, stack, "vid-long", password)
    await agent.page.click("#ready")
    await video_call(caller.page, stack, user, caller_password)
    await press(caller.page, "3")
    await answer(agent.page)
    await wait_colour(caller.page, "#remote", MAGENTA, timeout=10)
    await start_freeze_meter(caller.page, "#remote")
    talked = await watch_for(caller.page, "#remote", 35_000)  # past Asterisk's usual 30 s media timeouts
    assert talked.longest_gap_ms < MAX_FREEZE_MS, talked
    await wait_colour(agent.page, "#remote", GREEN, timeout=2)  # both still up

    closed = time.monotonic()
    await agent.context.close()  # the tab goes: no BYE
    record = await stack.controller.wait_cdr(user, timeout=20)
    ended = time.monotonic() - closed
    done = [e for e in record["events"] if e["type"] == "queue_agent_done"]
    assert done and not done[0]["detail"]["caller_hung_up"], done
    state = json.loads(stack.controller.ivrpowers("agent", "state", "vid-long", "--json").stdout)
    # Not left busy, and paused until its page is back: no chat is offered to a closed page.
    assert state["state"] != "busy" and state["reason"] == "page_closed", state
    (ARTIFACTS / "agent-tab-closed.json").write_text(json.dumps({"tab_closed_to_call_ended_s": round(ended, 2),
                                                                 "talked_ms": talked.elapsed_ms}, indent=2))


async def test_the_wallboard_shows_a_waiting_caller_within_a_second(
        stack: Stack, browsers: Browsers, cameras: Cameras) -> None:
    made = json.loads(stack.controller.ivrpowers("wallboard", "--name", "e2e-screen", "--json").stdout)
    user, password = stack.browser_account("cust-wallboard")
    caller, screen = await browsers.open_many({"caller": cameras.get("caller", GREEN),
                                               "wallboard": cameras.get("agent", MAGENTA)})
    await screen.page.goto(made["url"])
    await screen.page.wait_for_selector('.tile[data-queue="video-desk"][data-waiting="0"]', timeout=10_000)

    await caller.page.goto(f"{stack.web}/call#user={user}&password={password}&number=300")
    await caller.page.click("#voice-call")
    await caller.page.wait_for_function("document.body.dataset.state === 'in-call'", timeout=10_000)
    await press(caller.page, "3")  # into video-desk, where no agent is ready
    await screen.page.wait_for_selector('.tile[data-queue="video-desk"][data-waiting="1"]', timeout=10_000)
    # When the snapshot showing the caller reached the page, against when the caller joined (the
    # snapshot's own figures: taken at `at`, the caller waiting `longest_wait` by then). One clock.
    board = await screen.page.evaluate("window.ivrpowers")
    queue = board["snapshot"]["queues"]["video-desk"]
    delay = board["receivedAt"] - (board["snapshot"]["at"] - queue["longest_wait"])
    await screenshot(screen.page, "wallboard-waiting")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "wallboard.json").write_text(json.dumps({"join_to_wallboard_s": round(delay, 3)}, indent=2))
    assert 0 <= delay < 1.0, delay

    await caller.page.click("#hangup")  # gives up waiting: an abandon
    await screen.page.wait_for_selector('.tile[data-queue="video-desk"][data-waiting="0"]', timeout=10_000)
    tile = screen.page.locator('.tile[data-queue="video-desk"]')
    assert int(await tile.locator('[data-field="abandoned"]').text_content() or "0") >= 1
    await screenshot(screen.page, "wallboard")


async def test_a_waiting_caller_whose_tab_closes_leaves_the_queue_at_once(
        stack: Stack, browsers: Browsers, cameras: Cameras) -> None:
    """Closing the tab (its unload handler runs) hangs up: Asterisk alone would keep the call, and an
    agent would be offered a caller who is gone."""
    user, password = stack.browser_account("custclose")
    caller = await browsers.open("caller", cameras.get("caller", GREEN))
    await wait_in_queue(caller.page, stack, user, password)
    closed = time.monotonic()
    await caller.page.close(run_before_unload=True)
    record = await stack.controller.wait_cdr(user, timeout=10)
    ended = time.monotonic() - closed
    hangup = next(e for e in record["events"] if e["type"] == "hangup")
    assert (record["disposition"], hangup["detail"]["by"]) == ("caller_hangup", "caller"), record["events"]
    assert [e["type"] for e in record["events"] if e["type"].startswith("queue_")] == [
        "queue_joined", "queue_abandoned"], record["events"]
    (ARTIFACTS / "caller-tab-closed.json").write_text(json.dumps({"tab_closed_to_call_ended_s": round(ended, 2)}))


async def test_a_caller_whose_browser_dies_is_hung_up_once_its_audio_stops(
        stack: Stack, browsers: Browsers, cameras: Cameras) -> None:
    """A browser killed outright (no BYE, no unload) while its caller waits: its audio stops, and the
    controller hangs the call up within SILENT_AFTER plus one reading's interval."""
    user, password = stack.browser_account("custcrash")
    caller = await browsers.open("caller", cameras.get("caller", GREEN))
    await wait_in_queue(caller.page, stack, user, password)
    killed = time.monotonic()
    assert caller.crash() > 1
    record = await stack.controller.wait_cdr(user, timeout=SILENT_AFTER + SAMPLE_EVERY + 10)
    ended = time.monotonic() - killed
    hangup = next(e for e in record["events"] if e["type"] == "hangup")
    assert (record["disposition"], hangup["detail"]["by"]) == ("caller_hangup", "media"), record["events"]
    assert record["hangup_cause"] == 38, record  # network out of order
    media = next(e["detail"] for e in record["events"] if e["type"] == "media")
    assert SILENT_AFTER <= media["silent_s"] <= SILENT_AFTER + SAMPLE_EVERY + 1, media
    assert "queue_abandoned" in [e["type"] for e in record["events"]], record["events"]
    (ARTIFACTS / "caller-browser-killed.json").write_text(json.dumps({"killed_to_call_ended_s": round(ended, 2),
                                                                      "silent_s": media["silent_s"]}))
