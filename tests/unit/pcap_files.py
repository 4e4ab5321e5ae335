"""Hand-made loopback captures for the benches' wire analysis: Ethernet + IPv4 frames in a pcap file."""

from __future__ import annotations

import struct
from pathlib import Path

_LOOPBACK = b"\x7f\0\0\1"


def _ipv4(protocol: int, segment: bytes) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0, 64, protocol, 0, _LOOPBACK, _LOOPBACK)
    return b"\0" * 12 + b"\x08\x00" + ip + segment


def udp_frame(sport: int, dport: int, payload: bytes) -> bytes:
    return _ipv4(17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def tcp_frame(sport: int, dport: int, payload: bytes) -> bytes:
    return _ipv4(6, struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, 0x18, 65535, 0, 0) + payload)


def write_pcap(path: Path, frames: list[tuple[float, bytes]]) -> Path:
    """A little-endian, microsecond pcap of Ethernet `frames`, each with its capture time."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for when, frame in frames:
        usec = round(when * 1e6)
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path
