"""The call-load bench's wire analysis (bench/capture.py) on a hand-made capture, and its sounds."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from bench import capture, media
from bench.report import percentile, summarize, table

from .pcap_files import udp_frame, write_pcap

SIP, CALLER_SIP, CALLER_RTP = 5060, 40000, 40010


def _pcap(path: Path, packets: list[tuple[float, int, int, bytes]]) -> Path:
    return write_pcap(path, [(when, udp_frame(sport, dport, payload)) for when, sport, dport, payload in packets])


def _sip(first: str, call_id: str, cseq: str, body: str = "") -> bytes:
    return f"{first}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()


def _rtp(pt: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, 1, 0, 1) + payload


def test_one_call_is_measured_step_by_step(tmp_path: Path) -> None:
    sip = _pcap(tmp_path / "sip.pcap", [
        (100.000, CALLER_SIP, SIP, _sip("INVITE sip:8101@127.0.0.1 SIP/2.0", "c1", "1 INVITE")),
        (100.001, SIP, CALLER_SIP, _sip("SIP/2.0 100 Trying", "c1", "1 INVITE")),
        (100.003, SIP, CALLER_SIP, _sip("SIP/2.0 200 OK", "c1", "1 INVITE", "v=0\r\nm=audio 28002 RTP/AVP 8\r\n")),
        (110.000, SIP, CALLER_SIP, _sip("BYE sip:x SIP/2.0", "c1", "2 BYE")),
        # A call that was never answered.
        (101.000, CALLER_SIP, SIP, _sip("INVITE sip:8101@127.0.0.1 SIP/2.0", "c2", "1 INVITE")),
    ])  # fmt: skip
    prompt, marker = media.prompt_audio()[:16], media.MARKER_SIGNATURE
    digit = struct.pack("!BBH", 1, 10, 800)
    rtp = _pcap(tmp_path / "rtp.pcap", [
        (100.005, 28002, CALLER_RTP, _rtp(0x88, prompt)),
        (100.025, 28002, CALLER_RTP, _rtp(8, prompt)),
        (108.000, CALLER_RTP, 28002, _rtp(101, digit)),
        (108.100, CALLER_RTP, 28002, _rtp(101, struct.pack("!BBH", 1, 0x8A, 800))),
        (108.101, 28003, CALLER_RTP + 1, bytes([0x80, 200]) + b"\0" * 26),  # RTCP: ignored
        (108.102, 28002, CALLER_RTP, _rtp(8, prompt)),  # the prompt still playing: not the marker
        (108.1025, 28002, CALLER_RTP, _rtp(8, marker)),
    ])  # fmt: skip
    calls = capture.read_sip(sip, SIP)
    capture.attach_rtp(calls, rtp)
    answered, unanswered = calls
    assert answered.complete and answered.failure() is None
    assert answered.asterisk_rtp_port == 28002
    assert answered.ok is not None and answered.first_audio is not None and answered.marker is not None
    assert answered.ok - answered.invite == pytest.approx(0.003)
    assert answered.first_audio - answered.ok == pytest.approx(0.002)
    assert answered.digit_end == pytest.approx(108.1)
    assert answered.marker == pytest.approx(108.1025)
    assert unanswered.failure() == "no 200 OK"


def test_a_reused_rtp_port_belongs_to_the_latest_call(tmp_path: Path) -> None:
    sdp = "m=audio 28010 RTP/AVP 8\r\n"
    sip = _pcap(tmp_path / "sip.pcap", [
        (1.0, CALLER_SIP, SIP, _sip("INVITE sip:1@x SIP/2.0", "a", "1 INVITE")),
        (1.1, SIP, CALLER_SIP, _sip("SIP/2.0 200 OK", "a", "1 INVITE", sdp)),
        (20.0, CALLER_SIP, SIP, _sip("INVITE sip:1@x SIP/2.0", "b", "1 INVITE")),
        (20.1, SIP, CALLER_SIP, _sip("SIP/2.0 200 OK", "b", "1 INVITE", sdp)),
    ])  # fmt: skip
    rtp = _pcap(
        tmp_path / "rtp.pcap",
        [(1.2, 28010, CALLER_RTP, _rtp(8, b"x" * 16)), (20.3, 28010, CALLER_RTP, _rtp(8, b"x" * 16))],
    )
    first, second = capture.read_sip(sip, SIP)
    capture.attach_rtp([first, second], rtp)
    assert first.first_audio == pytest.approx(1.2)
    assert second.first_audio == pytest.approx(20.3)


def test_the_marker_is_recognisable_and_the_caller_sends_one_digit(tmp_path: Path) -> None:
    sounds = media.write_sounds(tmp_path)
    assert sounds["bench-marker"].read_bytes().startswith(media.MARKER_SIGNATURE)
    packets = media.caller_packets()
    events = [(when, rtp) for when, rtp in packets if rtp[1] & 0x7F == media.PT_EVENT]
    ends = [when for when, rtp in events if rtp[13] & 0x80]
    assert len(ends) == 3 and events[0][0] == pytest.approx(media.DIGIT_AT)
    seqs = [struct.unpack("!H", rtp[2:4])[0] for _, rtp in packets]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert packets[-1][0] < media.CALLER_AUDIO_SECONDS


def test_figures_are_medians_over_repetitions_and_failures_add_up() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([0.0, 10.0], 0.99) == pytest.approx(9.9)

    def run(setup_p50: float, failed: int, app_cpu: float = 5.0, steal: float = 1.0) -> dict[str, object]:
        ms = {"p50": setup_p50, "p99": setup_p50 * 2}
        return {
            "machine": {"busy_pct": 40.0, "steal_pct": steal},
            "concurrency": 50,
            "target": "B",
            "failed": failed,
            "setup_ms": ms,
            "answer_to_audio_ms": ms,
            "dtmf_ms": {"p50": None, "p99": None},
            "cpu_ms_per_call": {"asterisk": 50.0, "app": app_cpu},
        }

    (row,) = summarize([run(3.0, 0, 6.0, 20.0), run(9.0, 2, 4.5, 2.0), run(4.0, 1, 5.0, 3.0)])
    assert row["setup_ms"] == {"p50": 4.0, "p99": 8.0}
    assert row["cpu_ms_per_call"]["app"] == 5.0 and row["app_cpu_ms_per_call_min"] == 4.5
    assert row["steal_pct"] == 3.0
    assert row["dtmf_ms"] == {"p50": None, "p99": None}
    assert row["failed"] == 3 and row["repetitions"] == 3
    assert "| 50 (5/s) | - / 4.00 |" in table([row], ["A", "B"])
