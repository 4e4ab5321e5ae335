"""H.264 in RTP (RFC 6184, packetization mode 1) both ways, from and to Annex B byte streams.

Out: one access unit (a picture) per frame; each NAL unit of up to MAX_PAYLOAD bytes is a packet of
its own, bigger ones are cut into FU-A fragments. SPS and PPS go before every IDR picture, so that
a browser joining at any keyframe can decode; AUD and SEI are dropped (useless over RTP).
In: single NAL units, STAP-A aggregates and FU-A fragments, back to an Annex B stream.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from ivrpowers.media import MediaError
from ivrpowers.media.records import MAX_PAYLOAD, Frame, Record, timeline

SLICE, IDR, SEI, SPS, PPS, AUD, FILLER = 1, 5, 6, 7, 8, 9, 12
STAP_A, FU_A = 24, 28
CHUNK = 1100  # FU-A fragment data bytes, as for VP8: room under the limit for the 2 FU bytes
DROPPED = frozenset({SEI, AUD, FILLER})
START_CODE = b"\x00\x00\x00\x01"
# NAL types that, after a picture's slices, begin the next access unit (H.264 7.4.1.2.3).
_AU_OPENERS = frozenset({AUD, SEI, SPS, PPS, 14, 15, 16, 17, 18})


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


def split_annexb(stream: bytes) -> list[bytes]:
    """The NAL units of an Annex B stream (start codes and trailing zero bytes removed)."""
    nals: list[bytes] = []
    at = stream.find(b"\x00\x00\x01")
    while at >= 0:
        begin = at + 3
        at = stream.find(b"\x00\x00\x01", begin)
        nal = stream[begin:at if at >= 0 else len(stream)].rstrip(b"\x00")
        if nal:
            nals.append(nal)
    return nals


def access_units(nals: Iterable[bytes]) -> Iterator[list[bytes]]:
    """NAL units grouped into access units: a new one begins at a parameter set, AUD or SEI after a
    picture's slices, or at a slice whose first_mb_in_slice is 0 (its first bit is 1)."""
    unit: list[bytes] = []
    has_slice = False
    for nal in nals:
        kind = nal_type(nal)
        is_slice = kind in (SLICE, IDR)
        first_slice = is_slice and len(nal) > 1 and bool(nal[1] & 0x80)
        if has_slice and (kind in _AU_OPENERS or first_slice):
            yield unit
            unit, has_slice = [], False
        unit.append(nal)
        has_slice = has_slice or is_slice
    if unit:
        yield unit


def read_annexb_units(path: Path) -> list[list[bytes]]:
    return [unit for unit in access_units(split_annexb(path.read_bytes()))
            if any(nal_type(n) in (SLICE, IDR) for n in unit)]


def is_keyframe(unit: Iterable[bytes]) -> bool:
    return any(nal_type(n) == IDR for n in unit)


def fragment(nal: bytes, chunk: int = CHUNK) -> list[bytes]:
    """One NAL unit as payloads: itself if it fits, else FU-A fragments."""
    if len(nal) <= MAX_PAYLOAD:
        return [nal]
    indicator = bytes((nal[0] & 0xE0 | FU_A,))
    body = nal[1:]
    pieces = [body[at:at + chunk] for at in range(0, len(body), chunk)]
    last = len(pieces) - 1
    return [indicator + bytes(((n == 0) << 7 | (n == last) << 6 | nal_type(nal),)) + piece
            for n, piece in enumerate(pieces)]


class Packetizer:
    """Access units to payload lists; remembers the last SPS and PPS to put before each IDR."""

    def __init__(self) -> None:
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def packetize(self, unit: Iterable[bytes]) -> list[bytes]:
        nals: list[bytes] = []
        for nal in unit:
            kind = nal_type(nal)
            if kind in DROPPED:
                continue
            if kind == SPS:
                self.sps = nal
            elif kind == PPS:
                self.pps = nal
            elif kind == IDR:
                if self.sps is None or self.pps is None:
                    raise MediaError("the H.264 stream has an IDR picture before any SPS and PPS")
                kinds = {nal_type(n) for n in nals}
                nals += [ps for ps, k in ((self.sps, SPS), (self.pps, PPS)) if k not in kinds]
            nals.append(nal)
        if not nals:
            raise MediaError("an H.264 access unit with nothing to send")
        return [payload for nal in nals for payload in fragment(nal)]


def packetize_units(units: Iterable[Iterable[bytes]]) -> Iterator[list[bytes]]:
    packetizer = Packetizer()
    for unit in units:
        yield packetizer.packetize(unit)


def payload_nals(payload: bytes) -> tuple[list[bytes], tuple[bool, bool, bytes] | None]:
    """What one payload holds: whole NAL units, or a FU-A fragment as (start, end, bytes) where a
    start fragment's bytes begin with the rebuilt NAL header. Other types (STAP-B, MTAP, FU-B: not
    used by WebRTC) and malformed aggregates give nothing."""
    kind = nal_type(payload)
    if 1 <= kind <= 23:
        return [payload], None
    if kind == STAP_A:
        nals: list[bytes] = []
        at = 1
        while at + 2 <= len(payload):
            (size,) = struct.unpack_from(">H", payload, at)
            at += 2
            if size == 0 or at + size > len(payload):
                return [], None
            nals.append(payload[at:at + size])
            at += size
        return nals, None
    if kind == FU_A and len(payload) >= 2:
        header = payload[1]
        start, end = bool(header & 0x80), bool(header & 0x40)
        data = payload[2:]
        if start:
            data = bytes((payload[0] & 0xE0 | header & 0x1F,)) + data
        return [], (start, end, data)
    return [], None


def depacketize(records: Iterable[Record]) -> list[Frame]:
    """Access units (as Annex B bytes) from records: the marker ends one. FU-A fragments without their
    start are dropped; empty records are skipped. pts: see `records.timeline`."""
    frames: list[Frame] = []
    nals: list[bytes] = []
    pending: bytearray | None = None  # a FU-A NAL unit being rebuilt
    pts: int | None = None
    for clock, rec in timeline(records):
        if not rec.payload:
            continue
        if pts is None:
            pts = clock
        whole, piece = payload_nals(rec.payload)
        nals += whole
        if piece is not None:
            start, end, data = piece
            if start:
                pending = bytearray(data)
            elif pending is not None:
                pending += data
            if end and pending is not None:
                nals.append(bytes(pending))
                pending = None
        if rec.marker:
            if nals:
                frames.append(Frame(pts, b"".join(START_CODE + n for n in nals)))
            nals, pending, pts = [], None, None
    return frames
