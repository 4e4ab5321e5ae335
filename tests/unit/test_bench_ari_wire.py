"""The call-load bench's setup split from the ARI port's capture (bench/ari_wire.py), and C minus B
within each repetition (bench/report.py), on hand-made captures and runs."""

from __future__ import annotations

import struct
from pathlib import Path

import orjson

from bench import ari_wire, capture
from bench.report import paired, paired_table

from .pcap_files import tcp_frame, write_pcap

ARI, EVENTS, LANE, HTTP_CLIENT = 8088, 50001, 50002, 50003


def _pcap(path: Path, segments: list[tuple[float, int, int, bytes]]) -> Path:
    return write_pcap(path, [(when, tcp_frame(sport, dport, payload)) for when, sport, dport, payload in segments])


def _frame(message: dict[str, object], *, mask: bytes | None = None) -> bytes:
    """A websocket text frame; a client's is masked (RFC 6455)."""
    data = orjson.dumps(message)
    head = bytes([0x81]) + (bytes([0x80 | 126]) if mask else bytes([126])) + struct.pack("!H", len(data))
    if mask:
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return head + data


def _upgrade(sport: int, at: float) -> list[tuple[float, int, int, bytes]]:
    return [(at, sport, ARI, b"GET /ari/events?app=x HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
            (at, ARI, sport, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")]  # fmt: skip


def _call(call_id: str, invite: float, ok: float) -> capture.CallTrace:
    return capture.CallTrace(call_id, invite, ok=ok)


def test_setup_splits_into_asterisk_app_and_answer(tmp_path: Path) -> None:
    start = {"type": "StasisStart", "channel": {"id": "ch-1"}}
    pcap = _pcap(tmp_path / "ari.pcap", [
        *_upgrade(EVENTS, 99.0), *_upgrade(LANE, 99.0),
        (100.002, ARI, EVENTS, _frame(start)),
        # C: over a REST lane, masked.
        (100.003, LANE, ARI, _frame({"type": "RESTRequest", "request_id": "7", "method": "POST",
                                     "uri": "channels/ch-1/answer"}, mask=b"\x01\x02\x03\x04")),
        (100.010, ARI, EVENTS, _frame({"type": "StasisStart", "channel": {"id": "ch-2"}})),
        # B: over HTTP.
        (100.0125, HTTP_CLIENT, ARI, b"POST /ari/channels/ch-2/answer HTTP/1.1\r\nHost: x\r\n\r\n"),
    ])  # fmt: skip
    one, two = _call("c1", 100.000, 100.005), _call("c2", 100.009, 100.014)
    ari_wire.attach_setup([two, one], ari_wire.read_ari(pcap, ARI))
    assert (one.stasis_start, one.answer_request) == (100.002, 100.003)
    assert (two.stasis_start, two.answer_request) == (100.010, 100.0125)
    steps = ari_wire.setup_steps([one, two])
    assert steps["calls"] == 2
    assert steps["to_app"]["p50"] == 1.5 and steps["in_app"]["p50"] == 1.75 and steps["answer"]["p50"] == 1.75


def test_a_call_that_does_not_fit_is_left_without_steps(tmp_path: Path) -> None:
    # The answer request after the 200 OK cannot be that call's: no split rather than a wrong one.
    pcap = _pcap(tmp_path / "ari.pcap", [
        *_upgrade(EVENTS, 99.0),
        (100.002, ARI, EVENTS, _frame({"type": "StasisStart", "channel": {"id": "ch-1"}})),
        (100.009, HTTP_CLIENT, ARI, b"POST /ari/channels/ch-1/answer HTTP/1.1\r\n\r\n"),
    ])  # fmt: skip
    late = _call("c1", 100.000, 100.005)
    ari_wire.attach_setup([late], ari_wire.read_ari(pcap, ARI))
    assert late.stasis_start is None
    assert ari_wire.setup_steps([late])["calls"] == 0


def test_c_minus_b_is_taken_within_each_repetition() -> None:
    def run(target: str, rep: int, setup_p50: float) -> dict[str, object]:
        figures = {"p50": setup_p50, "p99": setup_p50 * 3}
        return {"concurrency": 200, "target": target, "rep": rep, "setup_ms": figures,
                "dtmf_ms": {"p50": None, "p99": None}, "answer_to_audio_ms": figures}  # fmt: skip

    # The machine's mood moves both targets of a repetition: B 3, 6, 3 and C 4, 7, 3.5.
    runs = [run("B", 0, 3.0), run("C", 0, 4.0), run("B", 1, 6.0), run("C", 1, 7.0), run("B", 2, 3.0),
            run("C", 2, 3.5), run("C", 3, 1.0)]  # fmt: skip
    (row,) = paired(runs)
    assert row["repetitions"] == 3  # the fourth has no B to compare with
    assert row["setup p50"] == {"each": [1.0, 1.0, 0.5], "median": 1.0}
    assert row["setup p99"]["median"] == 3.0
    assert row["dtmf p50"] == {"each": [], "median": None}
    assert "| 200 | 1.00 (+1.00, +1.00, +0.50) |" in paired_table([row])


def test_overlapping_calls_are_told_apart_by_their_answers(tmp_path: Path) -> None:
    pcap = _pcap(tmp_path / "ari.pcap", [
        *_upgrade(EVENTS, 99.0),
        (100.002, ARI, EVENTS, _frame({"type": "StasisStart", "channel": {"id": "ch-1"}})),
        (100.007, ARI, EVENTS, _frame({"type": "StasisStart", "channel": {"id": "ch-2"}})),
        (100.012, HTTP_CLIENT, ARI, b"POST /ari/channels/ch-2/answer HTTP/1.1\r\n\r\n"),
        (100.018, HTTP_CLIENT, ARI, b"POST /ari/channels/ch-1/answer HTTP/1.1\r\n\r\n"),
    ])  # fmt: skip
    # The second call's StasisStart and answer fall inside the first call's setup too.
    first, second = _call("c1", 100.000, 100.020), _call("c2", 100.005, 100.015)
    ari_wire.attach_setup([first, second], ari_wire.read_ari(pcap, ARI))
    assert (first.stasis_start, first.answer_request) == (100.002, 100.018)
    assert (second.stasis_start, second.answer_request) == (100.007, 100.012)


def test_a_websocket_joined_mid_frame_is_read_from_the_next_frame(tmp_path: Path) -> None:
    # The events websocket was up before the capture: its first segment is the tail of a frame whose
    # bytes read as a header announcing 65535 bytes.
    pcap = _pcap(tmp_path / "ari.pcap", [
        (100.001, ARI, EVENTS, b"\x81\x7e\xff\xff" + b'tail of an event"}'),
        (100.002, ARI, EVENTS, _frame({"type": "StasisStart", "channel": {"id": "ch-1"}})),
        (100.003, LANE, ARI, _frame({"type": "RESTRequest", "method": "POST", "uri": "channels/ch-1/answer"},
                                    mask=b"\x01\x02\x03\x04")),
    ])  # fmt: skip
    call = _call("c1", 100.000, 100.005)
    ari_wire.attach_setup([call], ari_wire.read_ari(pcap, ARI))
    assert (call.stasis_start, call.answer_request) == (100.002, 100.003)


def test_the_digit_splits_into_asterisk_app_and_play(tmp_path: Path) -> None:
    # B stops the prompt then plays the marker; an earlier digit event (before the End on the wire) and
    # the prompt's own play request are not the digit's.
    pcap = _pcap(tmp_path / "ari.pcap", [
        *_upgrade(EVENTS, 99.0),
        (100.002, ARI, EVENTS, _frame({"type": "StasisStart", "channel": {"id": "ch-1"}})),
        (100.003, HTTP_CLIENT, ARI, b"POST /ari/channels/ch-1/answer HTTP/1.1\r\n\r\n"),
        (100.006, HTTP_CLIENT, ARI, b"POST /ari/channels/ch-1/play/p1?media=x HTTP/1.1\r\n\r\n"),
        (101.000, ARI, EVENTS, _frame({"type": "ChannelDtmfReceived", "digit": "1", "channel": {"id": "ch-1"}})),
        (102.001, ARI, EVENTS, _frame({"type": "ChannelDtmfReceived", "digit": "2", "channel": {"id": "ch-1"}})),
        (102.002, HTTP_CLIENT, ARI, b"DELETE /ari/playbacks/p1 HTTP/1.1\r\n\r\n"),
        (102.004, HTTP_CLIENT, ARI, b"POST /ari/channels/ch-1/play/m1?media=y HTTP/1.1\r\n\r\n"),
        (102.005, HTTP_CLIENT, ARI, b"POST /ari/channels/ch-1/play/m2?media=y HTTP/1.1\r\n\r\n"),
    ])  # fmt: skip
    call = capture.CallTrace("c1", 100.000, ok=100.005, digit_end=102.000, marker=102.010)
    other = capture.CallTrace("c2", 100.100, ok=100.105, digit_end=102.000, marker=102.010)  # no ARI of its own
    messages = ari_wire.read_ari(pcap, ARI)
    ari_wire.attach_setup([call, other], messages)
    ari_wire.attach_dtmf([call, other], messages)
    assert (call.dtmf_event, call.marker_request) == (102.001, 102.004)
    assert other.dtmf_event is None
    steps = ari_wire.dtmf_steps([call, other])
    assert steps["calls"] == 1
    assert (steps["to_app"]["p50"], steps["in_app"]["p50"], steps["play"]["p50"]) == (1.0, 3.0, 6.0)
