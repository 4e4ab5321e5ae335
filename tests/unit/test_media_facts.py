"""Media facts: Asterisk's codec and RTP statistics strings read into the `media` event, and when a
channel is read (browsers only; right before this controller hangs up; after a prompt; every few
seconds) with what the event says when it could not be."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ivrpowers.ari import AriClient, AriConnectionError, AriNotFound, AriServerError, CallerID, Channel, parse_event
from ivrpowers.calls.controller import CallController
from ivrpowers.calls.identity import call_id_for
from ivrpowers.calls.liveness import Liveness
from ivrpowers.calls.media_facts import (
    AUDIO_FORMAT,
    NO_READING,
    NOT_READ,
    RTCP,
    VIDEO_FORMAT,
    MeasuredCall,
    MediaFacts,
    format_name,
    is_browser,
    leg_role,
    media_event,
    parse_quality,
    reading_of,
)
from ivrpowers.calls.routing import Router
from ivrpowers.config import Settings
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.controllers import ControllerRepository
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowRepository
from ivrpowers.store.models import Base
from ivrpowers.store.routes import RouteRepository
from ivrpowers.store.writer import CdrWriter

from .fake_asterisk import APP, FakeAsterisk
from .test_controller import MENU_FLOW, Node, ended
from .waiting import until

AUDIO = ("ssrc=449613892;themssrc=1742924230;lp=2;rxjitter=0.000458;rxcount=204;txjitter=0.000771;"
         "txcount=199;rlp=1;rtt=0.000747;rxmes=88.087887;txmes=0.000000")
VIDEO = ("ssrc=791812173;themssrc=544872987;lp=0;rxjitter=0.050000;rxcount=77;txjitter=0.000000;txcount=40;"
         "rlp=0;rtt=0.000000;rxmes=88.087885;txmes=0.000000")
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


# -- parsing -----------------------------------------------------------------------------------

def test_a_stream_s_figures_each_way() -> None:
    # Jitter is left out: Asterisk's video jitter is computed at 1 kHz instead of 90 kHz (50 ms here
    # for 0.6 ms), its audio jitter is its latest estimate, not the call's.
    assert parse_quality(AUDIO) == {
        "rx_packets": 204, "tx_packets": 199, "rx_lost": 2, "tx_lost": 1, "rtt_ms": 0.747}


def test_a_video_stream_has_no_rtt_before_the_far_end_answered_a_report() -> None:
    assert parse_quality(VIDEO) == {"rx_packets": 77, "tx_packets": 40, "rx_lost": 0,
                                                  "tx_lost": 0, "rtt_ms": None}


def test_a_lost_count_gone_negative_reads_as_none_lost() -> None:
    figures = parse_quality("rxcount=10;txcount=30;lp=4294967295;rlp=7")
    assert figures is not None and (figures["rx_lost"], figures["tx_lost"]) == (0, 7)


def test_more_lost_than_sent_is_not_a_figure() -> None:
    figures = parse_quality("rxcount=700;txcount=19;lp=0;rlp=25")
    assert figures is not None and figures["tx_lost"] is None and figures["tx_packets"] == 19


@pytest.mark.parametrize("value", ["", "garbage", "ssrc=1;lp=0", "rxcount=x;txcount=1"])
def test_a_string_without_packet_counts_is_not_figures(value: str) -> None:
    assert parse_quality(value) is None


@pytest.mark.parametrize(("value", "name"), [("(opus)", "opus"), ("(ulaw|alaw)", "ulaw"), ("(nothing)", None),
                                             ("", None), ("(vp8)", "vp8")])
def test_format_names(value: str, name: str | None) -> None:
    assert format_name(value) == name


def test_a_video_call_s_event() -> None:
    reading = reading_of({AUDIO_FORMAT: "(opus)", RTCP["audio"]: AUDIO, RTCP["video"]: VIDEO}, AT, video_codec="vp8")
    event = media_event("ch-1", "caller", reading, final=True)
    assert event == {
        "channel": "ch-1", "role": "caller", "audio_codec": "opus", "video_codec": "vp8",
        "audio": parse_quality(AUDIO), "video": parse_quality(VIDEO),
        "as_of": "2026-01-02T03:04:05+00:00", "final": True}


def test_an_audio_call_s_event_has_no_video() -> None:
    reading = reading_of({AUDIO_FORMAT: "(opus)", RTCP["audio"]: AUDIO}, AT, video_codec=None)
    event = media_event("ch-2", "caller", reading, final=False)
    assert event["video_codec"] is None and event["video"] is None
    assert event["audio"]["tx_packets"] == 199 and "missing" not in event


def test_what_asterisk_could_not_read_is_named() -> None:
    reading = reading_of({AUDIO_FORMAT: "(opus)", RTCP["audio"]: "nonsense"}, AT, video_codec="h264",
                         failed={RTCP["video"]: "Asterisk could not read it"})
    event = media_event("ch-3", "agent", reading, final=True)
    assert event["audio"] is None and event["video"] is None and event["video_codec"] == "h264"
    assert event["missing"] == ["audio: Asterisk's statistics unreadable: 'nonsense'",
                                "video: Asterisk could not read it"]


def test_a_channel_never_read_and_a_trunk_channel() -> None:
    assert media_event("ch-4", "caller", None, final=False) == {
        "channel": "ch-4", "role": "caller", "audio_codec": None, "video_codec": None, "audio": None,
        "video": None, "missing": [NO_READING]}
    assert media_event("ch-5", "caller", None, final=False, browser=False)["missing"] == [NOT_READ]


def _channel(channel_id: str, context: str = "from-webrtc",
             app_data: str = "ivrpowers,inbound,source=browser") -> Channel:
    return Channel.model_validate({"id": channel_id, "name": f"PJSIP/x-{channel_id}", "state": "Up",
                                   "caller": CallerID(number="visitor").model_dump(),
                                   "dialplan": {"context": context, "exten": "s", "priority": 1,
                                                "app_name": "Stasis", "app_data": app_data}})


def test_legs_are_known_by_their_stasis_arguments_and_context() -> None:
    agent = _channel("l1", app_data="ivrpowers,leg,interaction=c1,purpose=queue,agent=ana")
    transfer = _channel("l2", context="from-agents", app_data="ivrpowers,leg,interaction=c1,purpose=transfer")
    assert (leg_role(agent), is_browser(agent)) == ("agent", True)
    assert (leg_role(transfer), is_browser(transfer)) == ("transfer", False)
    assert leg_role(_channel("l3", app_data="ivrpowers,leg,interaction=c1")) == "leg"


# -- reading live channels -----------------------------------------------------------------------

def _split(joined: str) -> list[str]:
    """Asterisk's split of `variables`: on commas outside parentheses."""
    names, depth, start = [], 0, 0
    for i, char in enumerate(joined):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            names.append(joined[start:i])
            start = i + 1
    return [*names, joined[start:]]


class FakeAri:
    """What MediaFacts and AriCall ask of ARI, for one or more channels; records every request."""

    def __init__(self) -> None:
        self.values = {AUDIO_FORMAT: "(opus)", VIDEO_FORMAT: "(vp8)", RTCP["audio"]: AUDIO, RTCP["video"]: VIDEO}
        self.requests: list[tuple[str, ...]] = []
        self.gone: set[str] = set()
        self.unreadable: set[str] = set()  # functions Asterisk fails to read (500)
        self.several = True  # GET /channels/{id}/variables exists (Asterisk 22.10)
        self.down = False
        self.is_connected = True
        self.handlers: dict[Any, Any] = {}

    def subscribe(self, event_type: Any, handler: Any, *, channel_id: str | None = None) -> None:
        self.handlers[event_type] = handler

    def _value(self, method: str, path: str, channel_id: str, name: str) -> str:
        if self.down:
            raise AriConnectionError(method, path, "connection refused")
        if channel_id in self.gone:
            raise AriNotFound(404, method, path, "Provided channel was not found")
        if name in self.unreadable:
            raise AriServerError(500, method, path, "Unable to read provided function")
        return self.values[name]

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None) -> Any:
        channel_id = path.split("/")[2]
        names = _split((params or {})["variables"])
        self.requests.append(("variables", channel_id, *names))
        if not self.several:
            raise AriNotFound(404, method, path, "Resource not found")
        return {"variables": {name: self._value(method, path, channel_id, name) for name in names}}

    async def get_variable(self, channel_id: str, name: str) -> str:
        self.requests.append(("variable", channel_id, name))
        return self._value("GET", f"/channels/{channel_id}/variable", channel_id, name)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.requests.append(("hangup", channel_id))
        self.gone.add(channel_id)


@pytest.fixture
async def ari() -> AsyncIterator[FakeAri]:
    yield FakeAri()


@pytest.fixture
async def facts(ari: FakeAri) -> AsyncIterator[MediaFacts]:
    media = MediaFacts(ari, every=3600, first=3600, timeout=0.5)  # type: ignore[arg-type]  # no loop readings
    media.install()
    yield media
    await media.close()


def _call(ari: FakeAri, channel_id: str = "c1", browser: bool | None = True) -> MeasuredCall:
    return MeasuredCall(ari, _channel(channel_id), "300", on_answer=lambda at: None,  # type: ignore[arg-type]
                        browser=browser)


async def test_a_hangup_by_this_controller_reads_first_in_one_request(ari: FakeAri, facts: MediaFacts) -> None:
    call = _call(ari)
    facts.watch(call, "caller", browser=True)
    await call.hangup()
    assert ari.requests == [("variable", "c1", VIDEO_FORMAT),
                            ("variables", "c1", AUDIO_FORMAT, RTCP["audio"], RTCP["video"]),
                            ("hangup", "c1")]
    event = facts.ended("c1")
    assert event["final"] is True and (event["audio_codec"], event["video_codec"]) == ("opus", "vp8")
    assert event["video"]["tx_packets"] == 40 and event["audio"]["rx_packets"] == 204
    assert "c1" not in facts.watched


async def test_a_far_end_that_hung_up_leaves_the_last_reading(ari: FakeAri, facts: MediaFacts) -> None:
    call = _call(ari)
    facts.watch(call, "caller", browser=True)
    await facts.read("c1")
    ari.values[RTCP["video"]] = VIDEO.replace("txcount=40", "txcount=70")
    ari.gone.add("c1")  # the browser hung up: Asterisk forgets the channel at once
    await facts.read("c1")
    event = facts.ended("c1")
    assert event["video"]["tx_packets"] == 40 and event["final"] is False
    assert datetime.fromisoformat(event["as_of"]) <= datetime.now(UTC)


async def test_a_channel_gone_before_its_first_reading(ari: FakeAri, facts: MediaFacts) -> None:
    call = _call(ari)
    facts.watch(call, "caller", browser=True)
    ari.gone.add("c1")
    await facts.read("c1")
    assert facts.ended("c1") == media_event("c1", "caller", None, final=False)
    assert facts.ended("never-watched", "agent")["missing"] == [NO_READING]


async def test_trunk_and_phone_channels_are_never_asked(ari: FakeAri, facts: MediaFacts) -> None:
    call = _call(ari, browser=False)
    facts.watch(call, "caller", browser=False)
    await facts.read("c1")
    await call.hangup()
    assert ari.requests == [("hangup", "c1")]
    assert facts.ended("c1")["missing"] == [NOT_READ]


async def test_an_audio_only_browser_call_is_not_asked_for_video(ari: FakeAri, facts: MediaFacts) -> None:
    ari.values[VIDEO_FORMAT] = "(nothing)"
    facts.watch(_call(ari), "caller", browser=True)
    await facts.read("c1")
    assert ari.requests[-1] == ("variables", "c1", AUDIO_FORMAT, RTCP["audio"])
    event = facts.ended("c1")
    assert event["video"] is None and event["video_codec"] is None and event["audio"]["tx_packets"] == 199


async def test_a_value_asterisk_cannot_read_is_asked_alone_and_named(ari: FakeAri, facts: MediaFacts) -> None:
    ari.unreadable.add(RTCP["video"])  # e.g. a video stream without RTP
    facts.watch(_call(ari), "agent", browser=True)
    await facts.read("c1")
    event = facts.ended("c1")
    assert event["audio"]["tx_packets"] == 199 and event["video"] is None and event["video_codec"] == "vp8"
    why = "(500 Unable to read provided function)"
    assert event["missing"] == [f"video: Asterisk could not read {RTCP['video']} {why}"]


async def test_an_asterisk_without_the_variables_request_is_asked_one_value_at_a_time(
        ari: FakeAri, facts: MediaFacts) -> None:
    ari.several = False
    facts.watch(_call(ari), "caller", browser=True)
    await facts.read("c1")
    await facts.read("c1")
    assert [r[0] for r in ari.requests].count("variables") == 1  # tried once, then never again
    assert facts.ended("c1")["video"]["rx_packets"] == 77


async def test_ari_unreachable_the_call_still_ends_and_says_why(ari: FakeAri, facts: MediaFacts) -> None:
    call = _call(ari)
    facts.watch(call, "caller", browser=True)
    await facts.read("c1")  # one reading before the outage
    ari.down = True
    await facts.read("c1")
    event = facts.ended("c1")
    assert event["video"]["tx_packets"] == 40
    assert event["missing"] == ["later readings failed: ARI GET /channels/c1/variables: connection refused"]

    other = _call(ari, "c2")  # never read: AriCall waits for ARI to come back, the reading does not
    facts.watch(other, "caller", browser=True)
    await facts.read("c2")
    assert facts.ended("c2")["missing"] == ["not read: no answer from Asterisk within 0.5 s"]


async def test_a_prompt_s_end_and_the_loop_read_browser_channels(ari: FakeAri) -> None:
    facts = MediaFacts(ari, every=0.02, first=0.01)  # type: ignore[arg-type]
    facts.install()
    try:
        facts.watch(_call(ari, "b1"), "caller", browser=True)
        facts.watch(_call(ari, "t1", browser=False), "caller", browser=False)
        await until(lambda: facts.readings >= 3)
        before = facts.readings
        finished = parse_event({"type": "PlaybackFinished", "playback": {"id": "p1", "target_uri": "channel:b1"}})
        ari.handlers[type(finished)](finished)
        await until(lambda: facts.readings > before)
        assert {r[1] for r in ari.requests} == {"b1"}  # the trunk channel: never
    finally:
        await facts.close()


async def test_a_channel_s_first_reading_comes_soon_after_it_joins(ari: FakeAri) -> None:
    facts = MediaFacts(ari, every=3600, first=0.01)  # type: ignore[arg-type]
    try:
        facts.watch(_call(ari, "leg"), "agent", browser=True)
        await until(lambda: facts.readings == 1)  # well before `every`: a short leg still has figures
        assert facts.ended("leg")["video"]["rx_packets"] == 77
    finally:
        await facts.close()


async def test_a_reading_that_takes_too_long_does_not_hold_the_hangup(ari: FakeAri, facts: MediaFacts) -> None:
    stuck = asyncio.Event()

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await stuck.wait()

    ari.request = slow  # type: ignore[method-assign]
    call = _call(ari)
    facts.watch(call, "caller", browser=True)
    await asyncio.wait_for(call.hangup(), 2)
    assert ari.requests[-1] == ("hangup", "c1")
    assert facts.ended("c1")["missing"] == ["not read: no answer from Asterisk within 0.5 s"]


@pytest.fixture
async def node(asterisk: FakeAsterisk, tmp_path: Path) -> AsyncIterator[tuple[Node, Database]]:
    """A controller on the fake Asterisk (a trunk caller, for it has no browsers), number 100: a menu."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await FlowRepository(db).import_source("menu", MENU_FLOW, publish=True)
    await RouteRepository(db).set("100", "menu")
    writer = CdrWriter(CdrRepository(db), tmp_path / "spool", retry_min=0.01, retry_max=0.05)
    writer.start()
    liveness = Liveness(ControllerRepository(db), "ctl", "ast-test", every=0.05)
    liveness.start()
    client = AriClient(asterisk.base_url, "u", "p", APP, reconnect_min=0.01, reconnect_max=0.05)
    controller = CallController(client, Settings(state_dir=tmp_path, ari_app=APP),
                                Router(RouteRepository(db), FlowRepository(db)), CdrRepository(db), writer, liveness)
    controller.install()
    client.start()
    await client.wait_connected(5)
    running = Node(controller, client, writer, liveness)
    yield running, db
    await running.stop()
    await db.close()


async def test_a_trunk_call_s_record_says_its_media_was_not_read_and_nothing_was_asked(
        asterisk: FakeAsterisk, node: tuple[Node, Database]) -> None:
    _, db = node
    channel = await asterisk.call("inbound", "dialed=100", "source=trunk")
    await until(lambda: bool(channel.playbacks))
    await asterisk.caller_hangs_up(channel)
    rec = await ended(db, call_id_for("ast-test", channel.id))
    # Written when the channel is known to have ended, just before the hangup event.
    assert [e.type for e in rec.events][-2:] == ["media", "hangup"]
    media = next(e for e in rec.events if e.type == "media")
    assert media.detail == media_event(channel.id, "caller", None, final=False, browser=False)
    assert not [r for r in asterisk.requests if "variable" in r[1]]


# -- a browser gone without a word ---------------------------------------------------------------

def _received(ari: FakeAri, packets: int) -> None:
    ari.values[RTCP["audio"]] = AUDIO.replace("rxcount=204", f"rxcount={packets}")


async def test_a_browser_whose_audio_stopped_is_hung_up_as_gone(ari: FakeAri) -> None:
    facts = MediaFacts(ari, every=3600, first=3600, silent_after=0)  # type: ignore[arg-type]
    try:
        call = _call(ari)
        facts.watch(call, "caller", browser=True)
        await facts.read("c1")  # it sends
        assert ("hangup", "c1") not in ari.requests
        _received(ari, 250)
        await facts.read("c1")  # it still sends
        assert ("hangup", "c1") not in ari.requests
        await facts.read("c1")  # nothing since: gone
        await until(lambda: ("hangup", "c1") in ari.requests)
        assert call.silent and call.cause == 38 and facts.silenced == 1
        event = facts.ended("c1")
        assert event["silent_s"] >= 0 and event["audio"]["rx_packets"] == 250
    finally:
        await facts.close()


async def test_a_browser_that_never_sent_or_still_sends_is_left_alone(ari: FakeAri) -> None:
    facts = MediaFacts(ari, every=3600, first=3600, silent_after=0)  # type: ignore[arg-type]
    try:
        _received(ari, 0)  # e.g. an agent's leg still ringing: no media yet
        facts.watch(_call(ari, "ringing"), "agent", browser=True)
        for _ in range(3):
            await facts.read("ringing")
        facts.watch(_call(ari, "talking"), "caller", browser=True)
        for packets in (10, 20, 30):
            _received(ari, packets)
            await facts.read("talking")
        assert not [r for r in ari.requests if r[0] == "hangup"] and facts.silenced == 0
    finally:
        await facts.close()


async def test_a_silence_is_measured_over_seconds_not_readings(ari: FakeAri) -> None:
    facts = MediaFacts(ari, every=3600, first=3600, silent_after=3600)  # type: ignore[arg-type]
    try:
        facts.watch(_call(ari), "caller", browser=True)
        for _ in range(5):  # readings close together: a silence far shorter than the limit
            await facts.read("c1")
        assert facts.silenced == 0 and ("hangup", "c1") not in ari.requests
    finally:
        await facts.close()
