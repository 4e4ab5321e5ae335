"""The sounds the IVRs play and the audio the callers send, generated so they can be found on the wire.

The IVRs play raw A-law files (`.alaw`) to callers that only offer PCMA, so Asterisk sends the file's
bytes untouched, 160 per RTP packet: the marker's first packet starts with `MARKER_SIGNATURE`, a
pseudo-random frame that the prompt never contains. The caller's pcap is PCMA silence at 50 packets/s
from the ACK, like a phone, with one RFC 4733 digit at `DIGIT_AT` seconds.
"""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path

SAMPLE_RATE = 8000
FRAME = 160  # samples (= A-law bytes) per 20 ms RTP packet
PT_PCMA = 8
PT_EVENT = 101
ALAW_SILENCE = 0xD5

PROMPT_SECONDS = 7.8
MARKER_SECONDS = 1.5
DIGIT = "1"
DIGIT_AT = 8.0  # seconds after the ACK: the prompt has just ended, as in the reference method
DIGIT_SECONDS = 0.1
CALLER_AUDIO_SECONDS = 12.0  # longer than the call: the IVR hangs up first
SIGNATURE_BYTES = 16


def _alaw(sample: int) -> int:
    """G.711 A-law encoding of one signed 16-bit sample."""
    sign = 0x80 if sample >= 0 else 0x00
    magnitude = min(abs(sample), 32635) >> 3
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (code | sign) ^ 0x55


def _tone(freq: float, seconds: float, amplitude: int = 6000) -> bytes:
    count = round(seconds * SAMPLE_RATE)
    return bytes(_alaw(round(amplitude * math.sin(2 * math.pi * freq * n / SAMPLE_RATE))) for n in range(count))


def prompt_audio() -> bytes:
    return _tone(440.0, PROMPT_SECONDS)


def marker_audio() -> bytes:
    noise = random.Random(4733)
    first = bytes(_alaw(noise.randrange(-8000, 8000)) for _ in range(FRAME))
    return first + _tone(1000.0, MARKER_SECONDS - FRAME / SAMPLE_RATE)


MARKER_SIGNATURE = marker_audio()[:SIGNATURE_BYTES]


def write_sounds(directory: Path) -> dict[str, Path]:
    """Write bench-prompt.alaw and bench-marker.alaw into `directory`; return them by name."""
    prompt, marker = prompt_audio(), marker_audio()
    frames = {prompt[i : i + SIGNATURE_BYTES] for i in range(0, len(prompt), FRAME)}
    if MARKER_SIGNATURE in frames:
        raise AssertionError("the prompt contains the marker's signature: the marker could not be told apart")
    directory.mkdir(parents=True, exist_ok=True)
    out = {"bench-prompt": directory / "bench-prompt.alaw", "bench-marker": directory / "bench-marker.alaw"}
    out["bench-prompt"].write_bytes(prompt)
    out["bench-marker"].write_bytes(marker)
    return out


# -- the caller's audio -----------------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(rtp: bytes, ip_id: int) -> bytes:
    # SIPp keeps only the RTP bytes and rewrites addresses and ports: these are placeholders.
    src, dst = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    udp_len = 8 + len(rtp)
    udp = struct.pack("!HHHH", 40000, 40002, udp_len, 0) + rtp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ip_id, 0x4000, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp


def caller_packets() -> list[tuple[float, bytes]]:
    """(seconds from the ACK, RTP packet): silence, the digit (RFC 4733, three End packets), silence."""
    ssrc, seq, ts = 0x1B4E4733, 1000, 160_000
    out: list[tuple[float, bytes]] = []

    def rtp(when: float, pt: int, marker: bool, timestamp: int, payload: bytes) -> None:
        nonlocal seq
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
        out.append((when, header + payload))
        seq += 1

    silence = bytes([ALAW_SILENCE]) * FRAME
    updates = round(DIGIT_SECONDS / 0.02)
    event = int(DIGIT)
    n = 0
    while n * 0.02 < CALLER_AUDIO_SECONDS:
        when = n * 0.02
        if abs(when - DIGIT_AT) < 1e-9:
            start = ts
            for k in range(1, updates + 1):
                rtp(n * 0.02, PT_EVENT, k == 1, start, struct.pack("!BBH", event, 10, k * FRAME))
                n += 1
            for _ in range(3):  # RFC 4733 2.5.1.4: the end packet three times
                rtp(n * 0.02, PT_EVENT, False, start, struct.pack("!BBH", event, 0x80 | 10, updates * FRAME))
                n += 1
            ts += (updates + 3) * FRAME
            continue
        rtp(when, PT_PCMA, n == 0, ts, silence)
        ts += FRAME
        n += 1
    return out


def write_caller_pcap(path: Path) -> Path:
    """The caller's whole media stream as a pcap SIPp replays with play_pcap_audio."""
    return write_pcap(path, caller_packets())


def write_pcap(path: Path, packets: list[tuple[float, bytes]]) -> Path:
    """(seconds, RTP packet) as a pcap SIPp replays (play_pcap_*): it keeps the timing and the RTP bytes."""
    chunks = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ip_id, (when, rtp) in enumerate(packets):
        frame = _frame(rtp, ip_id & 0xFFFF)
        usec = round(when * 1_000_000)
        chunks.append(struct.pack("<IIII", 1_700_000_000 + usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)))
        chunks.append(frame)
    path.write_bytes(b"".join(chunks))
    return path
