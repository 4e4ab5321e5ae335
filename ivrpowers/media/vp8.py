"""VP8 in RTP (RFC 7741) both ways, and the IVF container ffmpeg reads and writes VP8 in.

A payload starts with a descriptor:

    |X|R|N|S|R|PID|  [|I|L|T|K|RSV|]  [|M|PictureID (7 or 15 bits)|]  [TL0PICIDX]  [|TID|Y|KEYIDX|]

S=1 with PID=0 starts a frame. We write the descriptor browsers send (X, I, 15-bit picture id) and read
any of them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from ivrpowers.media import MediaError
from ivrpowers.media.records import Frame, Record, timeline

CHUNK = 1100  # data bytes per packet: with the 4-byte descriptor, well under the 1200 limit
PICTURE_ID_MOD = 0x8000
IVF_HEADER = struct.Struct("<4sHH4sHHIII4x")
IVF_FRAME = struct.Struct("<IQ")


# -- IVF -----------------------------------------------------------------------------------------------
def read_ivf(path: Path) -> tuple[bytes, list[Frame]]:
    """The fourcc and the frames (pts in the file's timebase) of an IVF file."""
    data = path.read_bytes()
    if len(data) < IVF_HEADER.size or data[:4] != b"DKIF":
        raise MediaError(f"{path.name} is not an IVF file")
    _, _, header_len, fourcc, _, _, _, _, _ = IVF_HEADER.unpack_from(data)
    frames: list[Frame] = []
    at = header_len
    while at < len(data):
        if len(data) - at < IVF_FRAME.size:
            raise MediaError(f"{path.name} is torn at offset {at}")
        size, pts = IVF_FRAME.unpack_from(data, at)
        at += IVF_FRAME.size
        if at + size > len(data):
            raise MediaError(f"{path.name} is torn: frame {len(frames)} is cut short")
        frames.append(Frame(pts, data[at:at + size]))
        at += size
    return fourcc, frames


def write_ivf(path: Path, frames: Iterable[Frame], *, clock: int, fourcc: bytes = b"VP80",
              width: int = 0, height: int = 0) -> int:
    """Write `frames` with timebase 1/`clock`; returns how many. The size defaults to the first VP8
    keyframe's."""
    frames = list(frames)
    if fourcc == b"VP80" and not (width and height):
        width, height = next((size for f in frames if (size := keyframe_size(f.data))), (0, 0))
    # The header's "length": libvpx writes the frame count there, ffmpeg the duration in the timebase
    # (and reads it so). ffmpeg reads our files: the duration, the last frame lasting an average one.
    span = frames[-1].pts - frames[0].pts if frames else 0
    length = span + span // (len(frames) - 1) if len(frames) > 1 else 0
    body = bytearray(IVF_HEADER.pack(b"DKIF", 0, IVF_HEADER.size, fourcc, width, height, clock, 1,
                                     min(length, 0xFFFFFFFF)))
    for frame in frames:
        body += IVF_FRAME.pack(len(frame.data), frame.pts) + frame.data
    path.write_bytes(bytes(body))
    return len(frames)


# -- VP8 bitstream ---------------------------------------------------------------------------------------
def is_keyframe(frame: bytes) -> bool:
    return bool(frame) and not frame[0] & 0x01  # frame tag: P bit 0 = key frame


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a key frame's header (3-byte tag, start code 9d 01 2a, sizes), else None."""
    if len(frame) < 10 or not is_keyframe(frame) or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", frame, 6)
    return width & 0x3FFF, height & 0x3FFF


# -- RTP payloads --------------------------------------------------------------------------------------
def packetize(frame: bytes, picture_id: int, chunk: int = CHUNK) -> list[bytes]:
    """One frame as RTP payloads: a 4-byte descriptor (X, I with a 15-bit picture id; S on the first)."""
    if not frame:
        raise MediaError("an empty VP8 frame")
    pid = picture_id % PICTURE_ID_MOD
    tail = bytes((0x80, 0x80 | pid >> 8, pid & 0xFF))
    return [bytes((0x90 if at == 0 else 0x80,)) + tail + frame[at:at + chunk] for at in range(0, len(frame), chunk)]


def packetize_frames(frames: Iterable[bytes], first_picture_id: int = 0) -> Iterator[list[bytes]]:
    for n, frame in enumerate(frames):
        yield packetize(frame, first_picture_id + n)


def descriptor(payload: bytes) -> tuple[bool, int, int] | None:
    """(S, PID, length of the descriptor) of a payload, None if it is cut short."""
    if not payload:
        return None
    first = payload[0]
    size = 1
    if first & 0x80:  # X: an extension byte follows
        if len(payload) < 2:
            return None
        ext = payload[1]
        size = 2
        if ext & 0x80:  # I: picture id, 15 bits if its first bit (M) is set
            if len(payload) < 3:
                return None
            size += 2 if payload[2] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            size += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            size += 1
    if size > len(payload):
        return None
    return bool(first & 0x10), first & 0x07, size


def depacketize(records: Iterable[Record]) -> list[Frame]:
    """Frames from records: a frame begins at S=1, PID=0 and ends at the marker. Empty records (a
    recording starts with some) and packets outside a started frame are skipped; a frame cut short
    by the next start is dropped. pts: see `records.timeline`."""
    frames: list[Frame] = []
    parts: list[bytes] | None = None
    pts = 0
    for clock, rec in timeline(records):
        if not rec.payload:
            continue
        found = descriptor(rec.payload)
        if found is None:
            parts = None
            continue
        start, pid, size = found
        if start and pid == 0:
            parts, pts = [], clock
        if parts is None:
            continue
        parts.append(rec.payload[size:])
        if rec.marker:
            data = b"".join(parts)
            if data:
                frames.append(Frame(pts, data))
            parts = None
    return frames
