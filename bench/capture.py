"""Loopback capture (tcpdump, kernel timestamps) and what it says about each call.

Two captures run during a load point, on one clock: SIP in full, and RTP cut after the first bytes of
the payload (enough for the RFC 4733 End bit and the marker's signature) so 300 calls at 50 packets/s
each way stay small. Only the IVR's audio and the caller's digit packets are kept.
"""

from __future__ import annotations

import bisect
import re
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.media import MARKER_SIGNATURE, PT_EVENT
from bench.procs import die_with_parent

TCPDUMP = "/usr/bin/tcpdump"
# Ethernet 14 + IP 20 + UDP 8 + RTP 12 + the marker's signature.
RTP_SNAPLEN = 14 + 20 + 8 + 12 + len(MARKER_SIGNATURE)


class Capture:
    """tcpdump on lo into `path`; started before the calls, stopped after the last packet."""

    def __init__(self, path: Path, bpf: str, snaplen: int) -> None:
        self.path = path
        self._log = path.with_suffix(".log")
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = [TCPDUMP, "-i", "lo", "-n", "-s", str(snaplen), "-B", "32768", "-w", str(path), bpf]
        with self._log.open("wb") as err:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=die_with_parent
            )
        deadline = time.monotonic() + 10
        while b"listening on" not in self._log.read_bytes():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._proc.kill()
                raise RuntimeError(f"tcpdump did not start: {self._log.read_text(errors='replace')}")
            time.sleep(0.05)

    def stop(self, settle: float = 1.5) -> dict[str, int]:
        """Stop tcpdump; its packet counts (a "dropped by kernel" above 0 makes the point suspect)."""
        if self._proc.returncode is not None:
            return self._counts()
        # tcpdump loses its last ring block if stopped within ~1 s of the last packet.
        time.sleep(settle)
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        return self._counts()

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n, what in re.findall(
            r"(\d+) packets? (captured|received by filter|dropped by kernel)", self._log.read_text(errors="replace")
        ):
            counts[what.replace(" ", "_")] = int(n)
        return counts


def stop_all(captures: list[Capture]) -> list[dict[str, int]]:
    """Stop several captures after one settling delay."""
    time.sleep(1.5)
    return [c.stop(settle=0) for c in captures]


def sip_capture(path: Path, sip_port: int) -> Capture:
    return Capture(path, f"udp port {sip_port}", 65535)


def rtp_capture(path: Path, rtp_start: int, rtp_end: int) -> Capture:
    # The IVR's audio (from Asterisk's RTP ports) and the caller's telephone-event packets (to them).
    bpf = (
        f"udp and ((src portrange {rtp_start}-{rtp_end}) or "
        f"(dst portrange {rtp_start}-{rtp_end} and (udp[9] & 0x7f) = {PT_EVENT}))"
    )
    return Capture(path, bpf, RTP_SNAPLEN)


# -- reading ----------------------------------------------------------------------------------------


def ip_packets(path: Path, protocol: int) -> Iterator[tuple[float, int, int, bytes, int, int]]:
    """(kernel timestamp, source port, destination port, data, ip offset, record end) of each IPv4
    packet of `protocol` (6 TCP, 17 UDP) in a little-endian Ethernet or Linux-cooked pcap; data is
    the whole record from the IP header on."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    scale = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}.get(magic)
    if scale is None:
        raise ValueError(f"{path}: not a little-endian pcap file")
    linktype = struct.unpack_from("<I", data, 20)[0]
    link_len = {1: 14, 113: 16}.get(linktype)
    if link_len is None:
        raise ValueError(f"{path}: unsupported link type {linktype}")
    pos, end = 24, len(data)
    while pos + 16 <= end:
        sec, frac, caplen, _ = struct.unpack_from("<IIII", data, pos)
        pos += 16
        ip = pos + link_len
        pos += caplen
        if pos > end or data[ip] >> 4 != 4 or data[ip + 9] != protocol:
            continue
        sport, dport = struct.unpack_from("!HH", data, ip + (data[ip] & 0x0F) * 4)
        yield sec + frac * scale, sport, dport, data, ip, pos


def udp_packets(path: Path) -> Iterator[tuple[float, int, int, bytes]]:
    """(kernel timestamp, source port, destination port, captured UDP payload) of each IPv4 UDP packet."""
    for when, sport, dport, data, ip, end in ip_packets(path, 17):
        yield when, sport, dport, data[ip + (data[ip] & 0x0F) * 4 + 8 : end]


_CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)", re.M | re.I)
_CSEQ = re.compile(r"^CSeq\s*:\s*\d+\s+(\w+)", re.M | re.I)
_AUDIO = re.compile(r"^m=audio (\d+) ", re.M)


@dataclass
class CallTrace:
    call_id: str
    invite: float
    ok: float | None = None
    asterisk_rtp_port: int | None = None
    first_audio: float | None = None
    digit_end: float | None = None
    marker: float | None = None
    ivr_bye: float | None = None
    # An ARI app's call (bench.ari_wire): its channel, StasisStart and answer request, then the
    # digit's ChannelDtmfReceived and the request that plays the marker.
    channel: str | None = None
    stasis_start: float | None = None
    answer_request: float | None = None
    dtmf_event: float | None = None
    marker_request: float | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return None not in (self.ok, self.first_audio, self.digit_end, self.marker, self.ivr_bye)

    def failure(self) -> str | None:
        for attr, what in (
            ("ok", "no 200 OK"),
            ("first_audio", "no audio from the IVR"),
            ("digit_end", "no digit on the wire"),
            ("marker", "no marker after the digit"),
            ("ivr_bye", "the IVR never hung up"),
        ):
            if getattr(self, attr) is None:
                return what
        return None


def read_sip(path: Path, asterisk_sip_port: int) -> list[CallTrace]:
    calls: dict[str, CallTrace] = {}
    for when, sport, dport, payload in udp_packets(path):
        text = payload.decode("latin-1")
        first, _, _ = text.partition("\r\n")
        cid, cseq = _CALL_ID.search(text), _CSEQ.search(text)
        if not cid or not cseq:
            continue
        call = calls.get(cid.group(1))
        if dport == asterisk_sip_port and first.startswith("INVITE "):
            if call is None:
                calls[cid.group(1)] = CallTrace(cid.group(1), when)
        elif call is None:
            continue
        elif sport == asterisk_sip_port and first.startswith("SIP/2.0 200") and cseq.group(1) == "INVITE":
            if call.ok is None:
                call.ok = when
                audio = _AUDIO.search(text)
                call.asterisk_rtp_port = int(audio.group(1)) if audio else None
        elif sport == asterisk_sip_port and first.startswith("BYE ") and call.ivr_bye is None:
            call.ivr_bye = when
    return sorted(calls.values(), key=lambda c: c.invite)


def attach_rtp(calls: list[CallTrace], path: Path) -> None:
    """First IVR audio, digit End and first marker packet of each call, matched by Asterisk's RTP port."""
    by_port: dict[int, list[tuple[float, CallTrace]]] = {}
    for call in calls:
        if call.ok is not None and call.asterisk_rtp_port is not None:
            by_port.setdefault(call.asterisk_rtp_port, []).append((call.ok, call))
    for entries in by_port.values():
        entries.sort(key=lambda e: e[0])
    starts = {port: [e[0] for e in entries] for port, entries in by_port.items()}

    def owner(port: int, when: float) -> CallTrace | None:
        # Asterisk reuses RTP ports: the packet belongs to the last call answered on this port.
        times = starts.get(port)
        if not times:
            return None
        i = bisect.bisect_right(times, when) - 1
        return by_port[port][i][1] if i >= 0 else None

    for when, sport, dport, rtp in udp_packets(path):
        if len(rtp) < 12 or rtp[0] >> 6 != 2 or 192 <= rtp[1] <= 223:  # not RTP, or RTCP
            continue
        pt = rtp[1] & 0x7F
        if dport in starts and pt == PT_EVENT:
            owned = owner(dport, when)
            if owned is not None and owned.digit_end is None and len(rtp) >= 14 and rtp[13] & 0x80:
                owned.digit_end = when
        elif sport in starts:
            owned = owner(sport, when)
            if owned is None:
                continue
            if owned.first_audio is None:
                owned.first_audio = when
            if (
                owned.marker is None
                and owned.digit_end is not None
                and when >= owned.digit_end
                and rtp[12 : 12 + len(MARKER_SIGNATURE)] == MARKER_SIGNATURE
            ):
                owned.marker = when
