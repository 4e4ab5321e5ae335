"""Place real SIP calls with SIPp and send real RFC 4733/2833 DTMF.

Typical use in an integration test::

    call = SippCall(dialed="100", caller_number="5551234", caller_name="Alice",
                    steps=[Pause(1.5), Dtmf("1"), Pause(4.0), ExpectHangup()])
    result = run_call(call, target=("127.0.0.1", 15060), timeout=60)
    assert result.ok, result.describe()

Each call gets its own scenario XML, its own DTMF pcaps and its own free local SIP
and RTP ports (after an aborted call Asterisk keeps resending BYE to the old port
for ~32 s, so ports are never shared between calls). Waiting (``Pause``, and after a
``Dtmf``) is a ``<recv request="BYE">`` with a timeout rather than a ``<pause>``, so
a BYE from the far end at any time is answered with 200 and the call then fails
with a reason saying which step it interrupted (``result.failure_reasons``).

How SIPp (3.6.1, ``play_pcap_audio``) replays a pcap, read in its source
(send_packets.c, prepare_pcap.c) and checked on the wire by ``test_sipp_toolkit.py``:

* it keeps, byte for byte, everything after the UDP header: the whole RTP packet
  (marker, payload type, sequence number, timestamp, SSRC, payload). So the
  payload type in the pcap must be the one the SDP negotiated (we offer
  ``101 telephone-event/8000``), and sequence numbers/timestamps must continue
  from one pcap to the next of the same call: SIPp does not renumber them;
* it drops the Ethernet and IP headers: it sends through a raw IPPROTO_UDP socket
  (hence root), the kernel writes the IP header: source = ``-mi``, destination =
  the ``c=`` of the peer's SDP;
* it rewrites the UDP ports (source = the ``[media_port]`` of our SDP, i.e. ``-mp``;
  destination = the peer's ``m=audio`` port; of the pcap's ports only a packet's
  destination port minus the lowest one in the file survives, 0 for ours) and
  recomputes the UDP checksum. It takes the packet length from the UDP length
  field, and refuses records whose captured length differs from the original;
* it sleeps according to the pcap record timestamps (relative to the first
  packet of the file), so they pace the real-time replay;
* starting a new pcap cancels the one still playing, hence ``Dtmf`` waits for the
  pcap's duration before the scenario moves on.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

__all__ = [
    "DTMF_EVENTS",
    "PT_PCMU",
    "PT_TELEPHONE_EVENT",
    "Dtmf",
    "DtmfPcap",
    "DtmfRtpStream",
    "ExpectHangup",
    "Hangup",
    "Pause",
    "PreparedCall",
    "SippCall",
    "SippResult",
    "Step",
    "free_rtp_port",
    "free_udp_port",
    "make_dtmf_pcap",
    "prepare_call",
    "run_call",
    "run_call_async",
]

SIPP_BINARY = os.environ.get("SIPP", "/usr/bin/sipp")

# --------------------------------------------------------------------------------------
# RTP / pcap generation
# --------------------------------------------------------------------------------------

PT_PCMU = 0
PT_TELEPHONE_EVENT = 101
SAMPLE_RATE = 8000
PTIME = 0.020  # seconds per RTP packet, what every phone uses
SAMPLES_PER_PACKET = int(SAMPLE_RATE * PTIME)  # 160
END_PACKETS = 3  # RFC 4733 2.5.1.4: the final packet of an event is sent three times

# RFC 4733 section 3.2 event codes.
DTMF_EVENTS: dict[str, int] = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}

_PCAP_GLOBAL_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET
_PCMU_SILENCE = b"\xff" * SAMPLES_PER_PACKET  # µ-law "digital zero"


@dataclass(frozen=True)
class DtmfPcap:
    """A pcap written by :class:`DtmfRtpStream`."""

    path: Path
    digits: str
    duration: float  # seconds SIPp needs to replay it (first packet to last + one ptime)
    packets: int


def _ip_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class DtmfRtpStream:
    """One RTP stream (one SSRC) of a call, cut into as many pcaps as the call needs.

    Asterisk drops an RFC 4733 event whose timestamp equals the previous event's
    (it takes it for a retransmission), so every pcap of a call must continue the
    sequence numbers and timestamps of the previous one. Keep one instance per
    call and call :meth:`write_pcap` for each DTMF step, and :meth:`advance` for the
    silence in between so timestamps roughly follow the wall clock.

    Within one event all packets carry the event's start timestamp (RFC 4733
    2.5.1.2); timestamps strictly increase from one event to the next, sequence
    numbers strictly increase on every packet, the three end packets included.
    """

    def __init__(
        self,
        *,
        ssrc: int | None = None,
        first_seq: int | None = None,
        first_timestamp: int | None = None,
        payload_type: int = PT_TELEPHONE_EVENT,
        volume: int = 10,
        lead_in_packets: int = 5,
        src: tuple[str, int] = ("127.0.0.1", 40000),
        dst: tuple[str, int] = ("127.0.0.1", 40002),
    ) -> None:
        rnd = random.Random()
        self.ssrc = rnd.getrandbits(32) if ssrc is None else ssrc
        # Random but far from the 16-bit wrap, so a call's numbers only go up.
        self.seq = rnd.randrange(1000, 30000) if first_seq is None else first_seq
        self.timestamp = rnd.randrange(0, 1 << 30) if first_timestamp is None else first_timestamp
        self.payload_type = payload_type
        self.volume = volume
        # A few PCMU silence packets before the call's first digit, as a phone sends
        # audio before any DTMF: if Asterisk's strict RTP (strictrtp=yes) holds back the
        # first packets of a source it is still learning, let those be silence rather
        # than the start of the first digit.
        self.lead_in_packets = lead_in_packets
        self.src = src
        self.dst = dst
        # Pcap record time of the next packet, in seconds; SIPp only uses the
        # differences within one file, we keep it increasing across files anyway.
        self.clock = float(int(time.time()))
        self._ip_id = rnd.randrange(0, 0xFFFF)
        self._started = False

    # -- time keeping ---------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Account for `seconds` of silence (no packets) between two pcaps."""
        if seconds < 0:
            raise ValueError("cannot go back in time")
        self.clock += seconds
        self.timestamp = (self.timestamp + round(seconds * SAMPLE_RATE)) & 0xFFFFFFFF

    # -- packets --------------------------------------------------------------------

    def _rtp(self, pt: int, marker: bool, timestamp: int, payload: bytes) -> bytes:
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq, timestamp & 0xFFFFFFFF, self.ssrc
        )
        self.seq = (self.seq + 1) & 0xFFFF
        return header + payload

    def _frame(self, rtp: bytes) -> bytes:
        (sip, sport), (dip, dport) = self.src, self.dst
        saddr, daddr = socket.inet_aton(sip), socket.inet_aton(dip)
        udp_len = 8 + len(rtp)
        pseudo = saddr + daddr + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
        udp_csum = _ip_checksum(pseudo + struct.pack("!HHHH", sport, dport, udp_len, 0) + rtp) or 0xFFFF
        udp = struct.pack("!HHHH", sport, dport, udp_len, udp_csum) + rtp
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, self._ip_id, 0x4000, 64, socket.IPPROTO_UDP, 0, saddr, daddr
        )
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        ether = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
        return ether + ip + udp

    def packets(
        self, digits: str, *, gap: float = 0.3, duration: float = 0.2
    ) -> list[tuple[float, bytes]]:
        """(pcap time, Ethernet frame) for `digits`, advancing the stream.

        `duration` is each tone's length, `gap` the silence between two tones.
        Packets go out every 20 ms: per digit, round(duration / 20 ms) updates whose
        duration field grows by 160 samples (marker bit on the first), then three
        end packets (E bit) repeating the final duration.
        """
        if not digits:
            raise ValueError("no digits")
        unknown = [d for d in digits if d not in DTMF_EVENTS]
        if unknown:
            raise ValueError(f"not DTMF digits: {unknown!r}")
        if gap < 0 or duration < PTIME:
            raise ValueError("gap must be >= 0 and duration >= 20 ms")

        out: list[tuple[float, bytes]] = []

        def emit(rtp: bytes) -> None:
            out.append((self.clock, self._frame(rtp)))
            self.clock += PTIME

        if not self._started:
            self._started = True
            for i in range(self.lead_in_packets):
                emit(self._rtp(PT_PCMU, i == 0, self.timestamp, _PCMU_SILENCE))
                self.timestamp = (self.timestamp + SAMPLES_PER_PACKET) & 0xFFFFFFFF

        updates = max(1, round(duration / PTIME))
        for index, digit in enumerate(digits):
            if index:
                self.advance(gap)
            event = DTMF_EVENTS[digit]
            start = self.timestamp
            for n in range(1, updates + 1):
                payload = struct.pack("!BBH", event, self.volume & 0x3F, n * SAMPLES_PER_PACKET)
                emit(self._rtp(self.payload_type, n == 1, start, payload))
            final = struct.pack("!BBH", event, 0x80 | (self.volume & 0x3F), updates * SAMPLES_PER_PACKET)
            for _ in range(END_PACKETS):
                emit(self._rtp(self.payload_type, False, start, final))
            # The media clock ran on while the event and its end packets were sent.
            self.timestamp = (start + (updates + END_PACKETS) * SAMPLES_PER_PACKET) & 0xFFFFFFFF
        return out

    def tone_packets(self, frequency: float, seconds: float, amplitude: float = 0.5) -> list[tuple[float, bytes]]:
        """(pcap time, frame) of a PCMU sine wave: audio whose energy a test can find in a recording."""
        out: list[tuple[float, bytes]] = []
        count = max(1, round(seconds / PTIME))
        for n in range(count):
            first = n * SAMPLES_PER_PACKET
            payload = bytes(_ulaw(amplitude * math.sin(2 * math.pi * frequency * (first + i) / SAMPLE_RATE))
                            for i in range(SAMPLES_PER_PACKET))
            out.append((self.clock, self._frame(self._rtp(PT_PCMU, n == 0, self.timestamp, payload))))
            self.clock += PTIME
            self.timestamp = (self.timestamp + SAMPLES_PER_PACKET) & 0xFFFFFFFF
        self._started = True
        return out

    def write_tone_pcap(self, path: str | os.PathLike[str], frequency: float, seconds: float) -> DtmfPcap:
        return self._write(path, self.tone_packets(frequency, seconds), f"tone {frequency:g} Hz")

    def write_pcap(
        self, path: str | os.PathLike[str], digits: str, *, gap: float = 0.3, duration: float = 0.2
    ) -> DtmfPcap:
        """Write `digits` as a classic libpcap file SIPp can `play_pcap_audio`."""
        return self._write(path, self.packets(digits, gap=gap, duration=duration), digits)

    def _write(self, path: str | os.PathLike[str], frames: list[tuple[float, bytes]], what: str) -> DtmfPcap:
        chunks = [_PCAP_GLOBAL_HEADER]
        for when, frame in frames:
            sec = int(when)
            usec = round((when - sec) * 1_000_000)
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            chunks.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            chunks.append(frame)
        out = Path(path)
        out.write_bytes(b"".join(chunks))
        span = frames[-1][0] - frames[0][0] + PTIME
        return DtmfPcap(path=out, digits=what, duration=span, packets=len(frames))


def _ulaw(sample: float) -> int:
    """G.711 µ-law of a sample in [-1, 1] (the encoder's bias-and-segment form)."""
    value = max(-32635, min(32635, int(sample * 32767)))
    sign = 0x80 if value < 0 else 0
    value = abs(value) + 0x84
    exponent = max(0, value.bit_length() - 8)
    mantissa = (value >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def make_dtmf_pcap(
    path: str | os.PathLike[str],
    digits: str,
    *,
    gap: float = 0.3,
    duration: float = 0.2,
    stream: DtmfRtpStream | None = None,
) -> DtmfPcap:
    """Write one DTMF pcap; pass the call's `stream` to continue its numbering."""
    return (stream or DtmfRtpStream()).write_pcap(path, digits, gap=gap, duration=duration)


# --------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------

_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for servers the tests start)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody uses right now and that this process has not handed out yet."""
    with _ports_lock:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((host, 0))
                port: int = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free UDP port found")


def free_rtp_port(host: str = "127.0.0.1") -> int:
    """An even port p with p..p+3 free: SIPp binds p (audio) and p+2 (video), +1/+3 are RTCP.

    Taken from the kernel's ephemeral range, which stays clear of Asterisk's RTP range.
    """
    with _ports_lock:
        for _ in range(500):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((host, 0))
                port: int = s.getsockname()[1] & ~1
            span = range(port, port + 4)
            if any(p in _handed_out for p in span) or not all(_bindable(host, p) for p in span):
                continue
            _handed_out.update(span)
            return port
    raise RuntimeError("no free RTP port range found")


# --------------------------------------------------------------------------------------
# Call description
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    """Stay in the call for `seconds`.

    A remote BYE meanwhile is answered and fails the call ("remote hung up during
    step N"); where the flow may hang up, end with ExpectHangup(timeout) instead.
    """

    seconds: float


@dataclass(frozen=True)
class Dtmf:
    """Send `digits` as RFC 4733 events, `gap` seconds apart, each `duration` long.

    The step lasts as long as the replay, so the next step starts after the last tone.
    """

    digits: str
    gap: float = 0.3
    duration: float = 0.2


@dataclass(frozen=True)
class Tone:
    """Send `seconds` of a sine wave at `frequency` Hz as PCMU audio (something to record)."""

    frequency: float
    seconds: float


@dataclass(frozen=True)
class Hangup:
    """The caller hangs up: BYE, expect 200."""


@dataclass(frozen=True)
class ExpectHangup:
    """Wait up to `timeout` seconds for the remote BYE and answer it.

    If none comes, the caller hangs up itself (so no channel is left behind) and the
    call fails with "no BYE from the remote side within ...".
    """

    timeout: float = 30.0


@dataclass(frozen=True)
class ExpectRejected:
    """The call is never answered: early media (183) first when `early_media`, then the final
    `status` response within `timeout`, which the caller ACKs. Must be the only step."""

    status: int = 404
    early_media: bool = True
    timeout: float = 30.0


Step = Pause | Dtmf | Tone | Hangup | ExpectHangup | ExpectRejected

_SIP_USER = re.compile(r"^[0-9A-Za-z+*._~!$&'()=,;?/-]+$")  # '#' needs escaping in a URI; SIPp keywords use []
_BAD_NAME_CHARS = set('"\\[]<>\r\n')


@dataclass
class SippCall:
    """What the caller does. Ports and Call-ID are picked at run time unless given."""

    dialed: str
    caller_number: str = "5551234"
    caller_name: str | None = None
    steps: Sequence[Step] = ()
    local_port: int | None = None
    media_port: int | None = None
    call_id: str | None = None

    def validate(self) -> None:
        for what, value in (("dialed", self.dialed), ("caller_number", self.caller_number)):
            if not _SIP_USER.match(value):
                raise ValueError(f"{what}={value!r} is not a plain SIP URI user part")
        if self.caller_name is not None and _BAD_NAME_CHARS & set(self.caller_name):
            raise ValueError(f"caller_name={self.caller_name!r} contains one of {sorted(_BAD_NAME_CHARS)!r}")
        if any(isinstance(step, ExpectRejected) for step in self.steps):
            if len(self.steps) != 1:
                raise ValueError("ExpectRejected() must be the only step")
            return
        if not self.steps or not isinstance(self.steps[-1], (Hangup, ExpectHangup)):
            # Without a final BYE exchange SIPp would end the call and leave the Asterisk channel up.
            raise ValueError("steps must end with Hangup() or ExpectHangup()")
        for step in self.steps[:-1]:
            if isinstance(step, (Hangup, ExpectHangup)):
                raise ValueError(f"{step!r} must be the last step")
        for step in self.steps:
            if isinstance(step, Pause) and step.seconds < 0:
                raise ValueError(f"{step!r}: negative pause")
            if isinstance(step, ExpectHangup) and step.timeout <= 0:
                raise ValueError(f"{step!r}: timeout must be positive")
            if not isinstance(step, (Pause, Dtmf, Tone, Hangup, ExpectHangup)):
                raise TypeError(f"not a step: {step!r}")


# --------------------------------------------------------------------------------------
# Scenario generation
# --------------------------------------------------------------------------------------

_INVITE = """\
INVITE sip:{dialed}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: {display}<sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{dialed}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, NOTIFY
User-Agent: ivrpowers-sipp-toolkit
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP[media_ip_type] [media_ip]
s=ivrpowers
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {pt_pcmu} {pt_te}
a=rtpmap:{pt_pcmu} PCMU/8000
a=rtpmap:{pt_te} telephone-event/8000
a=fmtp:{pt_te} 0-16
a=ptime:20
a=sendrecv
"""

# In-dialog requests go to the peer's Contact ([next_url], needs rrs="true" on the 200).
_ACK = """\
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: {display}<sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{dialed}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
"""

_BYE = """\
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: {display}<sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{dialed}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
"""

# ACK of a non-2xx final response: same transaction as the INVITE (its Via, hence its branch).
_ACK_FAILURE = """\
ACK sip:{dialed}@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: {display}<sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
"""

_BYE_200 = """\
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:{caller}@[local_ip]:[local_port]>
Content-Length: 0
"""

_FAIL_PREFIX = "fail__"
# How a failure marker shows up in SIPp's warnings: test "fail__x:1.000000 == :0.000000" with check_it failed
_FAIL_RE = re.compile(r'test "' + _FAIL_PREFIX + r"(\w+?):")


def _cdata(text: str) -> str:
    return "<![CDATA[\n" + text + "\n]]>"


def _describe_step(step: Step) -> str:
    match step:
        case Pause(seconds):
            return f"Pause({seconds:g})"
        case Dtmf(digits, gap, duration):
            return f"Dtmf({digits!r}, gap={gap:g}, duration={duration:g})"
        case Tone(frequency, seconds):
            return f"Tone({frequency:g} Hz, {seconds:g} s)"
        case ExpectHangup(timeout):
            return f"ExpectHangup(timeout={timeout:g})"
        case ExpectRejected(status, early_media, timeout):
            return f"ExpectRejected({status}, early_media={early_media}, timeout={timeout:g})"
        case _:
            return f"{type(step).__name__}()"


@dataclass
class _ScenarioBuilder:
    call: SippCall
    workdir: Path
    lines: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # marker -> human explanation
    pcaps: list[DtmfPcap] = field(default_factory=list)
    stream: DtmfRtpStream = field(default_factory=DtmfRtpStream)

    def fmt(self, template: str) -> str:
        name = self.call.caller_name
        return template.format(
            dialed=self.call.dialed,
            caller=self.call.caller_number,
            display=f'"{name}" ' if name else "",
            pt_pcmu=PT_PCMU,
            pt_te=PT_TELEPHONE_EVENT,
        )

    def fail_action(self, marker: str, why: str) -> str:
        # SIPp has no "fail" element. A <test check_it> that cannot pass, run as the
        # action of a <recv>, marks the call failed while the scenario still goes on
        # to answer/send the BYE, so Asterisk is not left retransmitting to a dead port.
        # (In a <nop> the result of the test would be ignored.)
        var = _FAIL_PREFIX + marker
        self.failures[marker] = why
        return (
            "<action>"
            f'<assign assign_to="{var}" value="1"/>'
            f'<test variable="{var}" compare="equal" value="0" check_it="true"/>'
            "</action>"
        )

    def wait(self, index: int, seconds: float, what: str) -> None:
        # A <pause> cannot react to a BYE (the call would be aborted mid-pause), so
        # waiting is a <recv BYE> with a timeout that jumps to the next step.
        label = f"step{index}_done"
        ms = max(1, round(seconds * 1000))
        action = self.fail_action(f"remote_hangup_during_step_{index}", f"remote hung up during step {index}: {what}")
        self.lines.append(f'  <recv request="BYE" timeout="{ms}" ontimeout="{label}" next="remote_bye">{action}</recv>')
        self.lines.append(f'  <label id="{label}"/>')

    def build_rejected(self, step: ExpectRejected) -> str:
        ms = max(1, round(step.timeout * 1000))
        optional = "" if step.early_media else ' optional="true"'
        self.lines += [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f"<scenario name={quoteattr('ivrpowers rejected call to ' + self.call.dialed)}>",
            f'  <send retrans="500">{_cdata(self.fmt(_INVITE))}</send>',
            '  <recv response="100" optional="true"/>',
            '  <recv response="180" optional="true"/>',
            f'  <recv response="183"{optional} timeout="{ms}"/>',
            # Asterisk may send 183 again when the announcement's media starts.
            '  <recv response="183" optional="true"/>',
            '  <recv response="183" optional="true"/>',
            f'  <recv response="{step.status}" timeout="{ms}"/>',
            f"  <send>{_cdata(self.fmt(_ACK_FAILURE))}</send>",
            "</scenario>",
        ]
        return "\n".join(self.lines) + "\n"

    def build(self) -> str:
        c = self.call
        if len(c.steps) == 1 and isinstance(c.steps[0], ExpectRejected):
            return self.build_rejected(c.steps[0])
        self.lines += [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f"<scenario name={quoteattr('ivrpowers call to ' + c.dialed)}>",
            f'  <send retrans="500">{_cdata(self.fmt(_INVITE))}</send>',
            '  <recv response="100" optional="true"/>',
            '  <recv response="180" optional="true"/>',
            '  <recv response="183" optional="true"/>',
            '  <recv response="200" rrs="true"/>',
            f"  <send>{_cdata(self.fmt(_ACK))}</send>",
        ]
        for index, step in enumerate(c.steps, start=1):
            what = _describe_step(step)
            self.lines.append(f"  <!-- step {index}: {what} -->")
            match step:
                case Pause(seconds):
                    self.wait(index, seconds, what)
                    self.stream.advance(seconds)
                case Dtmf(digits, gap, duration):
                    pcap = self.stream.write_pcap(
                        self.workdir / f"dtmf_step{index}.pcap", digits, gap=gap, duration=duration
                    )
                    self.pcaps.append(pcap)
                    # A small margin: a new play_pcap_audio would cancel a replay still running.
                    wait = pcap.duration + 0.06
                    self.lines.append(
                        f"  <nop><action><exec play_pcap_audio={quoteattr(str(pcap.path))}/></action></nop>"
                    )
                    self.wait(index, wait, what)
                    self.stream.advance(wait - pcap.duration)
                case Tone(frequency, seconds):
                    pcap = self.stream.write_tone_pcap(self.workdir / f"tone_step{index}.pcap", frequency, seconds)
                    self.pcaps.append(pcap)
                    self.lines.append(
                        f"  <nop><action><exec play_pcap_audio={quoteattr(str(pcap.path))}/></action></nop>"
                    )
                    self.wait(index, pcap.duration + 0.06, what)
                    self.stream.advance(0.06)
                case Hangup():
                    self.lines.append(f'  <send retrans="500">{_cdata(self.fmt(_BYE))}</send>')
                    self.lines.append('  <recv response="200" crlf="true"/>')
                    self.lines.append('  <nop next="end"/>')
                case ExpectHangup(timeout):
                    ms = max(1, round(timeout * 1000))
                    self.lines.append(f'  <recv request="BYE" timeout="{ms}" ontimeout="no_remote_bye"/>')
                    self.lines.append(f'  <send next="end">{_cdata(self.fmt(_BYE_200))}</send>')
                    # Nobody hung up in time: hang up ourselves so Asterisk's channel goes
                    # away, and mark the call failed.
                    self.lines.append('  <label id="no_remote_bye"/>')
                    self.lines.append(f'  <send retrans="500">{_cdata(self.fmt(_BYE))}</send>')
                    action = self.fail_action(
                        "no_remote_hangup", f"no BYE from the remote side within {timeout:g} s ({what})"
                    )
                    self.lines.append(f'  <recv response="200">{action}</recv>')
                    self.lines.append('  <nop next="end"/>')
        # The remote side hung up before the steps were over: answer, then end failed.
        self.lines.append('  <label id="remote_bye"/>')
        self.lines.append(f"  <send>{_cdata(self.fmt(_BYE_200))}</send>")
        self.lines.append('  <label id="end"/>')
        self.lines.append("</scenario>")
        return "\n".join(self.lines) + "\n"


# --------------------------------------------------------------------------------------
# Running SIPp
# --------------------------------------------------------------------------------------

_EXIT_MEANING = {
    0: "all calls successful",
    1: "the call failed",
    97: "stopped by an internal command",
    99: "ended without processing a call",
    253: "RTP validation failure",
    254: "fatal error binding a socket",
    255: "fatal error, or SIPp's -timeout reached",
}


@dataclass(frozen=True)
class PreparedCall:
    """Everything needed to run SIPp for one call; the files live in `workdir`."""

    call: SippCall
    target: tuple[str, int]
    argv: list[str]
    workdir: Path
    scenario_path: Path
    message_file: Path
    error_file: Path
    call_id: str
    local_port: int
    media_port: int
    pcaps: list[DtmfPcap]
    failures: dict[str, str]
    timeout: float
    owns_workdir: bool


def prepare_call(
    call: SippCall,
    target: tuple[str, int],
    timeout: float = 60.0,
    *,
    local_ip: str = "127.0.0.1",
    workdir: str | os.PathLike[str] | None = None,
    sipp: str = SIPP_BINARY,
) -> PreparedCall:
    """Write the scenario and pcaps for `call` and build the SIPp command line."""
    call.validate()
    owns = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="sipp-call-")) if workdir is None else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    local_port = call.local_port or free_udp_port(local_ip)
    media_port = call.media_port or free_rtp_port(local_ip)
    call_id = call.call_id or f"ivrp-{uuid.uuid4().hex}@{local_ip}"

    builder = _ScenarioBuilder(call=call, workdir=wd)
    scenario = wd / "scenario.xml"
    scenario.write_text(builder.build())
    longest = (
        sum(s.seconds for s in call.steps if isinstance(s, Pause))
        + sum(p.duration for p in builder.pcaps)
        + sum(s.timeout for s in call.steps if isinstance(s, ExpectHangup))
    )
    if longest >= timeout:
        # SIPp's -timeout would end the process mid-call, without a BYE: say so now.
        if owns:
            shutil.rmtree(wd, ignore_errors=True)
        raise ValueError(
            f"the steps may take {longest:.1f} s, not less than timeout={timeout:g}: "
            "raise the timeout or lower ExpectHangup(timeout=...)"
        )
    message_file, error_file = wd / "messages.log", wd / "errors.log"
    host, port = target
    argv = [
        sipp,
        f"{host}:{port}",
        "-sf", str(scenario),
        "-m", "1",
        "-i", local_ip,
        "-p", str(local_port),
        "-mi", local_ip,
        "-mp", str(media_port),
        "-cid_str", call_id.replace("%", "%%"),
        "-trace_msg", "-message_file", str(message_file),
        "-trace_err", "-error_file", str(error_file),
        # Answer UPDATE/INFO/NOTIFY/OPTIONS in the dialog (Asterisk sends UPDATE for
        # connected-line changes when we allow it) instead of aborting on them.
        "-aa",
        "-timeout", f"{max(1, int(timeout + 0.999))}s", "-timeout_error",
        "-nostdin",
    ]  # fmt: skip
    return PreparedCall(
        call=call,
        target=(host, port),
        argv=argv,
        workdir=wd,
        scenario_path=scenario,
        message_file=message_file,
        error_file=error_file,
        call_id=call_id,
        local_port=local_port,
        media_port=media_port,
        pcaps=builder.pcaps,
        failures=builder.failures,
        timeout=timeout,
        owns_workdir=owns,
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


# SIPp writes its warnings as "<date>\t<time>\t<epoch>: text", in the error file without
# newlines between them; these are the ones our own scenarios cause on every call.
_EVENT_START = re.compile(r"(?=\d{4}-\d\d-\d\d\t\d\d:\d\d:\d\d\.\d+\t)")
_ROUTINE = re.compile(
    r"jumping to label|^There were more errors|^The following events occurred|^Resolving remote host"
    r"|^In pcap .*npkts|^max pkt length|^base port"
)


def _notable(text: str) -> str:
    """SIPp's stderr / error log without the noise every call produces."""
    lines = (line.rstrip() for chunk in _EVENT_START.split(text) for line in chunk.splitlines())
    return "\n".join(line for line in lines if line and not _ROUTINE.search(line))


_MSG_HEADER = re.compile(
    r"^-+ (?P<when>\S+ \S+)\s*$\n(?P<dir>UDP message (?:sent|received))[^\n]*\n\n(?P<first>[^\n]*)", re.M
)


def _reasons_from_messages(messages: str, target: tuple[str, int]) -> list[str]:
    """Name the commonest failures SIPp itself does not spell out."""
    received = [m["first"].strip() for m in _MSG_HEADER.finditer(messages) if m["dir"].endswith("received")]
    if not received:
        return [f"no SIP response from {target[0]}:{target[1]} (is Asterisk listening there?)"]
    for first in received:
        if re.match(r"SIP/2\.0 [3-6]\d\d", first):
            return [f"call rejected: {first}"]
    if not any(first.startswith("SIP/2.0 200") for first in received):
        return ["the call was never answered (no 200 OK to the INVITE)"]
    return []


@dataclass
class SippResult:
    """Outcome of one SIPp call. `ok` means SIPp counted the call successful."""

    returncode: int | None  # None: killed after the Python-side timeout
    call_id: str
    target: tuple[str, int]
    local_port: int
    media_port: int
    elapsed: float
    stdout: str
    stderr: str
    messages: str  # SIPp -trace_msg log
    errors: str  # SIPp -trace_err log (warnings, unexpected messages)
    workdir: Path | None  # kept on failure (or keep_files=True) for post-mortem
    failure_reasons: list[str]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def ladder(self) -> list[str]:
        """One line per SIP message: '>> INVITE sip:…' (sent) / '<< SIP/2.0 200 OK' (received)."""
        return [
            f"{m['when']} {'>>' if m['dir'].endswith('sent') else '<<'} {m['first'].strip()}"
            for m in _MSG_HEADER.finditer(self.messages)
        ]

    def describe(self, tail_lines: int = 40) -> str:
        host, port = self.target
        if self.returncode is None:
            status = "killed: no exit before the timeout"
        else:
            status = f"exit {self.returncode}: {_EXIT_MEANING.get(self.returncode, 'unknown')}"
        parts = [
            f"SIPp call {self.call_id} to {host}:{port} from local port {self.local_port} "
            f"(RTP {self.media_port}): {'OK' if self.ok else 'FAILED'} ({status}) after {self.elapsed:.1f} s"
        ]
        if self.failure_reasons:
            parts.append("failure: " + "; ".join(self.failure_reasons))
        parts.append("--- SIP ladder ---\n" + ("\n".join(self.ladder()) or "(no SIP messages)"))
        if stderr := _notable(self.stderr):
            parts.append("--- sipp stderr (tail) ---\n" + _tail(stderr, tail_lines))
        shown = set(stderr.splitlines())
        if errors := "\n".join(line for line in _notable(self.errors).splitlines() if line not in shown):
            parts.append("--- sipp errors (tail) ---\n" + _tail(errors, tail_lines))
        parts.append("--- SIP messages (tail) ---\n" + (_tail(self.messages, tail_lines * 2) or "(empty)"))
        if self.workdir is not None:
            parts.append(f"files kept in {self.workdir}")
        return "\n".join(parts)


def _result(
    prepared: PreparedCall, returncode: int | None, elapsed: float, stdout: str, stderr: str, keep_files: bool
) -> SippResult:
    messages, errors = _read(prepared.message_file), _read(prepared.error_file)
    reasons = [
        prepared.failures.get(m, m) for m in dict.fromkeys(_FAIL_RE.findall(errors + "\n" + stderr))
    ]
    if returncode is None:
        reasons.append(f"SIPp still running after {prepared.timeout:g} s (+ grace), killed")
    if returncode != 0 and not reasons:
        reasons += _reasons_from_messages(messages, prepared.target)
    if "scenario timed out after" in stderr:
        reasons.append(f"SIPp's -timeout ({prepared.timeout:g} s) ended it")
    keep = keep_files or returncode != 0 or not prepared.owns_workdir
    if not keep:
        shutil.rmtree(prepared.workdir, ignore_errors=True)
    return SippResult(
        returncode=returncode,
        call_id=prepared.call_id,
        target=prepared.target,
        local_port=prepared.local_port,
        media_port=prepared.media_port,
        elapsed=elapsed,
        stdout=stdout,
        stderr=stderr,
        messages=messages,
        errors=errors,
        workdir=prepared.workdir if keep else None,
        failure_reasons=reasons,
    )


# SIPp exits by itself at -timeout; this is only for a SIPp that hangs.
_GRACE = 10.0


def run_call(
    call: SippCall,
    target: tuple[str, int],
    timeout: float = 60.0,
    *,
    local_ip: str = "127.0.0.1",
    keep_files: bool = False,
    sipp: str = SIPP_BINARY,
) -> SippResult:
    """Place `call` and block until SIPp exits (at most `timeout` seconds)."""
    prepared = prepare_call(call, target, timeout, local_ip=local_ip, sipp=sipp)
    started = time.monotonic()
    # stdout is SIPp's statistics screen, redrawn every second: into a file, not a pipe.
    with open(prepared.workdir / "stdout.log", "w+b") as out, open(prepared.workdir / "stderr.log", "w+b") as err:
        proc = subprocess.Popen(prepared.argv, cwd=prepared.workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            returncode: int | None = proc.wait(timeout=timeout + _GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            returncode = None
        elapsed = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return _result(prepared, returncode, elapsed, stdout, stderr, keep_files)


async def run_call_async(
    call: SippCall,
    target: tuple[str, int],
    timeout: float = 60.0,
    *,
    local_ip: str = "127.0.0.1",
    keep_files: bool = False,
    sipp: str = SIPP_BINARY,
) -> SippResult:
    """Like :func:`run_call`, without blocking the event loop.

    Start it as a task to do something else while the call is up::

        task = asyncio.create_task(run_call_async(call, target))
        ...  # e.g. cut the controller's ARI connection
        result = await task

    Cancelling the task kills SIPp.
    """
    prepared = prepare_call(call, target, timeout, local_ip=local_ip, sipp=sipp)
    started = time.monotonic()
    with open(prepared.workdir / "stdout.log", "w+b") as out, open(prepared.workdir / "stderr.log", "w+b") as err:
        proc = await asyncio.create_subprocess_exec(
            *prepared.argv, cwd=prepared.workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        returncode: int | None
        try:
            returncode = await asyncio.wait_for(proc.wait(), timeout + _GRACE)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            returncode = None
        except BaseException:  # cancelled: do not leave SIPp running
            if proc.returncode is None:
                proc.kill()
                await asyncio.shield(proc.wait())
            raise
        elapsed = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return _result(prepared, returncode, elapsed, stdout, stderr, keep_files)
