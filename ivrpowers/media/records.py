"""Asterisk's video file format (format_vp8, format_h264): one record per RTP packet.

    record := ts:u32  len:u16  payload[len & 0x7fff]        (big-endian)
    len bit 15 = the frame ends with this packet (the RTP marker)

Asterisk skips the first record's ts; after sending a record it reads the next one's ts and waits
`ts*4/45` ms before sending it (0: at once, the rest of the same frame). So a prompt's ts ticks at
11250 per second (PROMPT_CLOCK). Recordings store the RTP timestamp's 90 kHz deltas instead.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivrpowers.media import MediaError

# Browsers' path MTU is ~1200 bytes of RTP payload; Asterisk's reader also cuts records over 4096.
MAX_PAYLOAD = 1200
MARKER = 0x8000
MAX_LEN = 0x7FFF
PROMPT_CLOCK = 11250  # prompt ts units per second: a ts of T makes Asterisk wait T*4/45 ms
RECORDING_CLOCK = 90000  # recordings keep RTP's video clock
_HEADER = struct.Struct(">IH")


@dataclass(frozen=True)
class Record:
    ts: int
    marker: bool
    payload: bytes


@dataclass(frozen=True)
class Frame:
    """One coded picture; pts in the clock of the records it came from (see `timeline`)."""

    pts: int
    data: bytes


def encode_records(records: Iterable[Record], *, max_payload: int = MAX_PAYLOAD) -> bytes:
    out = bytearray()
    for n, rec in enumerate(records):
        if len(rec.payload) > max_payload:
            raise MediaError(f"record {n}: payload of {len(rec.payload)} bytes, more than {max_payload}")
        if not 0 <= rec.ts <= 0xFFFFFFFF:
            raise MediaError(f"record {n}: ts {rec.ts} does not fit 32 bits")
        out += _HEADER.pack(rec.ts, len(rec.payload) | (MARKER if rec.marker else 0))
        out += rec.payload
    return bytes(out)


def decode_records(data: bytes, *, where: str = "video file") -> list[Record]:
    records: list[Record] = []
    at = 0
    while at < len(data):
        if len(data) - at < _HEADER.size:
            raise MediaError(f"{where} is torn: {len(data) - at} stray bytes at offset {at} (record {len(records)})")
        ts, length = _HEADER.unpack_from(data, at)
        size = length & MAX_LEN
        start = at + _HEADER.size
        if start + size > len(data):
            raise MediaError(f"{where} is torn: record {len(records)} at offset {at} says {size} bytes, "
                             f"{len(data) - start} left")
        records.append(Record(ts, bool(length & MARKER), data[start:start + size]))
        at = start + size
    return records


def write_records(path: Path, records: Iterable[Record]) -> None:
    path.write_bytes(encode_records(records))


def read_records(path: Path) -> list[Record]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode_records(data, where=str(path))


def prompt_steps(fps: int) -> Iterator[int]:
    """The ts of each frame's first record at `fps`: the frame interval in PROMPT_CLOCK units (1125 at
    10 fps). Where the interval is not a whole number of units, the steps alternate so that the sum
    never drifts from real time by more than one unit."""
    if fps < 1:
        raise MediaError(f"a frame rate of {fps} fps is not possible")
    n = 0
    while True:
        yield (PROMPT_CLOCK * (n + 1) + fps // 2) // fps - (PROMPT_CLOCK * n + fps // 2) // fps
        n += 1


def frame_records(frames: Iterable[Sequence[bytes]], steps: Iterable[int]) -> list[Record]:
    """Records for frames already cut into RTP payloads: each frame's step on its first record (0 on
    the others), the marker on its last."""
    records: list[Record] = []
    for packets, step in zip(frames, steps, strict=False):
        if not packets:
            raise MediaError("a frame with no packets")
        last = len(packets) - 1
        records.extend(Record(step if i == 0 else 0, i == last, p) for i, p in enumerate(packets))
    return records


def timeline(records: Iterable[Record]) -> Iterator[tuple[int, Record]]:
    """Each record with the time it is sent at, as Asterisk plays the file: the sum of the ts of the
    records after the first, up to and including this one (the first ts is skipped)."""
    clock = 0
    for n, rec in enumerate(records):
        if n:
            clock += rec.ts
        yield clock, rec
