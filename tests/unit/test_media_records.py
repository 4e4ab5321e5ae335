"""Asterisk's video file records and RTP packetizing both ways (VP8: RFC 7741, H.264: RFC 6184), as pure
logic: round trips of random frames, every VP8 descriptor variant, STAP-A, FU-A loss, torn files."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivrpowers.media import MediaError, h264, vp8
from ivrpowers.media.records import (
    MAX_PAYLOAD,
    PROMPT_CLOCK,
    Frame,
    Record,
    decode_records,
    encode_records,
    frame_records,
    prompt_steps,
    read_records,
    timeline,
    write_records,
)

frames_st = st.lists(st.binary(min_size=1, max_size=5000), min_size=1, max_size=8)
steps_st = st.lists(st.integers(0, 200_000), min_size=8, max_size=8)


def test_records_are_big_endian_with_the_marker_in_bit_15(tmp_path: Path) -> None:
    path = tmp_path / "x.vp8"
    write_records(path, [Record(1125, False, b"ab"), Record(0, True, b"c"), Record(7, False, b"")])
    assert path.read_bytes() == (b"\x00\x00\x04\x65\x00\x02ab" + b"\x00\x00\x00\x00\x80\x01c"
                                 + b"\x00\x00\x00\x07\x00\x00")
    assert read_records(path) == [Record(1125, False, b"ab"), Record(0, True, b"c"), Record(7, False, b"")]


@pytest.mark.parametrize("cut", [3, 9, 11])
def test_a_torn_file_is_refused_in_one_line(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "torn.h264"
    path.write_bytes(encode_records([Record(1125, True, b"x" * 4), Record(1125, True, b"y" * 6)])[:-cut])
    with pytest.raises(MediaError, match="torn") as caught:
        read_records(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_payloads_over_the_limit_and_ts_over_32_bits_are_refused() -> None:
    encode_records([Record(0, True, b"x" * MAX_PAYLOAD)])
    with pytest.raises(MediaError, match="1201 bytes"):
        encode_records([Record(0, True, b"x" * (MAX_PAYLOAD + 1))])
    with pytest.raises(MediaError, match="32 bits"):
        encode_records([Record(1 << 32, True, b"x")])


@pytest.mark.parametrize("fps", range(1, 11))
def test_prompt_steps_are_the_frame_interval_and_never_drift(fps: int) -> None:
    steps = list(itertools.islice(prompt_steps(fps), fps * 60))
    assert sum(steps) == PROMPT_CLOCK * 60  # a minute of frames lasts a minute, to the tick
    assert max(steps) - min(steps) <= 1 and abs(steps[0] - PROMPT_CLOCK / fps) <= 1
    if fps == 10:
        assert set(steps) == {1125}


def test_the_timeline_skips_the_first_ts_as_asterisk_does() -> None:
    recs = [Record(500, False, b"a"), Record(0, True, b"b"), Record(1125, True, b"c"), Record(9, True, b"d")]
    assert [clock for clock, _ in timeline(recs)] == [0, 0, 1125, 1134]


def test_frame_records_put_the_step_first_and_the_marker_last() -> None:
    recs = frame_records([[b"a", b"b", b"c"], [b"d"]], itertools.repeat(1125))
    assert [(r.ts, r.marker, r.payload) for r in recs] == [
        (1125, False, b"a"), (0, False, b"b"), (0, True, b"c"), (1125, True, b"d")]


# -- VP8 -----------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(frames=frames_st, steps=steps_st, first_pid=st.integers(0, 0x7FFF))
def test_vp8_round_trip(frames: list[bytes], steps: list[int], first_pid: int) -> None:
    packets = list(vp8.packetize_frames(frames, first_pid))
    for n, frame_packets in enumerate(packets):
        pid = (first_pid + n) % 0x8000
        assert all(len(p) <= MAX_PAYLOAD for p in frame_packets)
        assert [p[:4] for p in frame_packets] == [
            bytes((0x90 if i == 0 else 0x80, 0x80, 0x80 | pid >> 8, pid & 0xFF)) for i in range(len(frame_packets))]
    records = decode_records(encode_records(frame_records(packets, steps)))
    got = vp8.depacketize(records)
    expected_pts = [sum(steps[1:n + 1]) for n in range(len(frames))]
    assert got == [Frame(pts, data) for pts, data in zip(expected_pts, frames, strict=True)]


@st.composite
def vp8_descriptor(draw: st.DrawFn, start: bool, pid: int) -> bytes:
    """Any RFC 7741 descriptor: X and its I (7- or 15-bit picture id), L, T, K, and N."""
    x = draw(st.booleans())
    first = (x << 7) | (draw(st.booleans()) << 5) | (start << 4) | pid
    if not x:
        return bytes((first,))
    i, lb, t, k = (draw(st.booleans()) for _ in range(4))
    out = bytearray((first, i << 7 | lb << 6 | t << 5 | k << 4))
    if i:
        if draw(st.booleans()):
            picture = draw(st.integers(0, 0x7FFF))
            out += bytes((0x80 | picture >> 8, picture & 0xFF))
        else:
            out.append(draw(st.integers(0, 0x7F)))
    if lb:
        out.append(draw(st.integers(0, 255)))
    if t or k:
        out.append(draw(st.integers(0, 255)))
    return bytes(out)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), chunks=st.lists(st.binary(min_size=0, max_size=50), min_size=1, max_size=5))
def test_vp8_depacketize_strips_any_descriptor(data: st.DataObject, chunks: list[bytes]) -> None:
    payloads = [data.draw(vp8_descriptor(start=n == 0, pid=0 if n == 0 else data.draw(st.integers(0, 7))))
                + chunk for n, chunk in enumerate(chunks)]
    records = [Record(0, False, b"")] * 3 + [Record(90, n == len(payloads) - 1, p) for n, p in enumerate(payloads)]
    expected = [Frame(90 * 1, b"".join(chunks))] if b"".join(chunks) else []
    assert vp8.depacketize(records) == expected


def test_vp8_a_frame_starts_only_at_s_and_partition_0_and_a_cut_frame_is_dropped() -> None:
    records = [Record(0, True, b"\x80\x80\x80\x01mid"),      # no start seen: dropped
               Record(0, False, b"\x13tail"),                 # S=1 but partition 3: not a start
               Record(0, False, b"\x90\x80\x80\x02one"),       # start, never ended...
               Record(0, False, b"\x90\x80\x80\x03two"),       # ...cut by the next start
               Record(0, True, b"\x00!")]
    assert vp8.depacketize(records) == [Frame(0, b"two!")]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.builds(Record, st.integers(0, 99), st.booleans(), st.binary(max_size=12)), max_size=30))
def test_depacketizers_never_fail_on_garbage(records: list[Record]) -> None:
    for frame in vp8.depacketize(records) + h264.depacketize(records):
        assert frame.data


def test_ivf_round_trip_with_the_size_of_the_first_keyframe(tmp_path: Path) -> None:
    key = b"\x10\x02\x00\x9d\x01\x2a" + struct.pack("<HH", 320, 240) + b"rest"
    frames = [Frame(0, key), Frame(9000, b"\x01delta")]
    assert vp8.write_ivf(tmp_path / "a.ivf", frames, clock=90000) == 2
    assert vp8.read_ivf(tmp_path / "a.ivf") == (b"VP80", frames)
    header = (tmp_path / "a.ivf").read_bytes()[:32]
    assert struct.unpack_from("<HHIII", header, 12) == (320, 240, 90000, 1, 18000)  # length: ffmpeg's duration
    (tmp_path / "b.ivf").write_bytes((tmp_path / "a.ivf").read_bytes()[:-3])
    with pytest.raises(MediaError, match="torn"):
        vp8.read_ivf(tmp_path / "b.ivf")


# -- H.264 ---------------------------------------------------------------------------------------------
nal_st = st.builds(lambda kind, nri, body: bytes((nri << 5 | kind,)) + body,
                   st.sampled_from([1, 5, 7, 8]), st.integers(0, 3), st.binary(min_size=0, max_size=4000))


@settings(max_examples=60, deadline=None)
@given(units=st.lists(st.lists(nal_st, min_size=1, max_size=4), min_size=1, max_size=6), steps=steps_st)
def test_h264_round_trip_single_nal_and_fu_a(units: list[list[bytes]], steps: list[int]) -> None:
    packets = [[p for nal in unit for p in h264.fragment(nal)] for unit in units]
    for unit, unit_packets in zip(units, packets, strict=True):
        assert all(len(p) <= MAX_PAYLOAD for p in unit_packets)
        small = [nal for nal in unit if len(nal) <= MAX_PAYLOAD]
        assert [p for p in unit_packets if h264.nal_type(p) != h264.FU_A] == small
    got = h264.depacketize(decode_records(encode_records(frame_records(packets, steps))))
    assert [f.data for f in got] == [b"".join(h264.START_CODE + nal for nal in unit) for unit in units]
    assert [f.pts for f in got] == [sum(steps[1:n + 1]) for n in range(len(units))]


def test_h264_stap_a_and_a_lost_fu_a_start() -> None:
    sps, pps, idr = b"\x67sps", b"\x68pps", b"\x65" + bytes(range(200)) * 10
    stap = b"\x78" + b"".join(struct.pack(">H", len(n)) + n for n in (sps, pps))
    fus = h264.fragment(idr, chunk=700)
    assert len(fus) == 3 and [f[1] >> 6 for f in fus] == [2, 0, 1]  # S, middle, E
    whole = h264.depacketize([Record(0, False, stap), *(Record(0, n == 2, f) for n, f in enumerate(fus))])
    assert whole == [Frame(0, b"".join(h264.START_CODE + n for n in (sps, pps, idr)))]
    lost_start = h264.depacketize([Record(0, False, stap), Record(0, False, fus[1]), Record(0, True, fus[2])])
    assert lost_start == [Frame(0, b"".join(h264.START_CODE + n for n in (sps, pps)))]


def test_annexb_split_with_both_start_codes_and_access_units_by_first_slice() -> None:
    stream = (b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x00\x01\x67sps" + b"\x00\x00\x01\x68pps"
              + b"\x00\x00\x01\x65\x88a" + b"\x00\x00\x01\x65\x40b"  # IDR, 2 slices (the 2nd: first_mb != 0)
              + b"\x00\x00\x00\x01\x41\x9ac" + b"\x00\x00\x01\x41\x20d" + b"\x00\x00\x01\x41\x9ae\x00\x00")
    nals = h264.split_annexb(stream)
    assert nals == [b"\x09\xf0", b"\x67sps", b"\x68pps", b"\x65\x88a", b"\x65\x40b", b"\x41\x9ac", b"\x41\x20d",
                    b"\x41\x9ae"]
    assert list(h264.access_units(nals)) == [nals[:5], nals[5:7], nals[7:]]


def test_the_packetizer_puts_sps_pps_before_every_idr_and_drops_aud_and_sei() -> None:
    sps, pps, sei, aud = b"\x67sps", b"\x68pps", b"\x06sei", b"\x09\xf0"
    idr1, idr2, p = b"\x65\x88one", b"\x65\x88two", b"\x41\x9ap"
    packetizer = h264.Packetizer()
    assert packetizer.packetize([aud, sps, pps, sei, idr1]) == [sps, pps, idr1]
    assert packetizer.packetize([aud, p]) == [p]
    assert packetizer.packetize([sei, idr2]) == [sps, pps, idr2]
    with pytest.raises(MediaError, match="before any SPS"):
        h264.Packetizer().packetize([idr1])
