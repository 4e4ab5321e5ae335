"""Self-tests of the SIPp toolkit (tests/integration/sipp.py); no Asterisk needed.

The pcap generator is checked by parsing its files back with struct; the generated
scenarios are checked by real SIPp calls into a small SIPp UAS written here, whose
SDP points the caller's RTP at a plain UDP socket of the test, so we see exactly
what SIPp put on the wire.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest

try:  # tests/integration as a package (conftest.py uses relative imports)
    from . import sipp as toolkit
except ImportError:  # rootdir-relative "prepend" import of a plain directory
    import sipp as toolkit  # type: ignore[no-redef]

Dtmf, ExpectHangup, Hangup, Pause = toolkit.Dtmf, toolkit.ExpectHangup, toolkit.Hangup, toolkit.Pause

# --------------------------------------------------------------------------------------
# Reading pcaps and RTP back
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rtp:
    marker: bool
    pt: int
    seq: int
    ts: int
    ssrc: int
    payload: bytes

    @property
    def event(self) -> int:
        return self.payload[0]

    @property
    def end(self) -> bool:
        return bool(self.payload[1] & 0x80)

    @property
    def volume(self) -> int:
        return self.payload[1] & 0x3F

    @property
    def duration(self) -> int:
        return int.from_bytes(self.payload[2:4], "big")


def parse_rtp(data: bytes) -> Rtp:
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    assert b0 == 0x80, "RTP v2, no padding/extension/CSRC"
    return Rtp(bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc, data[12:])


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class PcapRecord:
    time: float
    udp_payload: bytes
    sport: int
    dport: int


def read_pcap(path: Path) -> list[PcapRecord]:
    """Parse a classic libpcap file of Ethernet/IPv4/UDP frames, checking every header."""
    data = path.read_bytes()
    magic, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, zone, sigfigs, linktype) == (0xA1B2C3D4, 2, 4, 0, 0, 1)
    assert snaplen >= 65535
    records, offset = [], 24
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[offset : offset + 16])
        assert incl == orig, "SIPp refuses truncated packets"
        assert usec < 1_000_000
        frame = data[offset + 16 : offset + 16 + incl]
        assert len(frame) == incl
        offset += 16 + incl
        assert frame[12:14] == b"\x08\x00", "IPv4 ethertype"
        ip = frame[14:34]
        assert ip[0] == 0x45 and ip[9] == socket.IPPROTO_UDP
        assert struct.unpack("!H", ip[2:4])[0] == len(frame) - 14
        assert _checksum(ip) == 0, "IPv4 header checksum"
        udp = frame[34:]
        sport, dport, ulen, ucsum = struct.unpack("!HHHH", udp[:8])
        assert ulen == len(udp), "SIPp takes the packet length from the UDP header"
        pseudo = ip[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_UDP, ulen)
        assert ucsum != 0 and _checksum(pseudo + udp) == 0, "UDP checksum"
        records.append(PcapRecord(sec + usec / 1e6, udp[8:], sport, dport))
    return records


def digit_groups(packets: list[Rtp]) -> list[list[Rtp]]:
    """Split telephone-event packets into events (a new event starts with the marker bit)."""
    groups: list[list[Rtp]] = []
    for p in packets:
        if p.pt != toolkit.PT_TELEPHONE_EVENT:
            continue
        if p.marker or not groups:
            groups.append([])
        groups[-1].append(p)
    return groups


def events_of(packets: list[Rtp]) -> str:
    code_to_digit = {v: k for k, v in toolkit.DTMF_EVENTS.items()}
    return "".join(code_to_digit[g[0].event] for g in digit_groups(packets))


def check_event_structure(packets: list[Rtp], digits: str, updates: int) -> None:
    groups = digit_groups(packets)
    assert events_of(packets) == digits
    for group, digit in zip(groups, digits, strict=True):
        assert len(group) == updates + 3
        assert {p.event for p in group} == {toolkit.DTMF_EVENTS[digit]}
        assert [p.marker for p in group] == [True] + [False] * (updates + 2)
        assert [p.end for p in group] == [False] * updates + [True] * 3, "E bit on the last 3 packets only"
        assert {p.ts for p in group} == {group[0].ts}, "one timestamp per event (RFC 4733 2.5.1.2)"
        assert [p.duration for p in group[:updates]] == [160 * n for n in range(1, updates + 1)]
        assert [p.duration for p in group[updates:]] == [160 * updates] * 3
        assert {p.volume for p in group} == {10}
    starts = [g[0].ts for g in groups]
    assert starts == sorted(set(starts)), "event timestamps strictly increase"


def check_numbering(packets: list[Rtp]) -> None:
    assert len({p.ssrc for p in packets}) == 1
    seqs = [p.seq for p in packets]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "sequence numbers +1 on every packet"
    stamps = [p.ts for p in packets]
    assert stamps == sorted(stamps)


# --------------------------------------------------------------------------------------
# Pcap generator
# --------------------------------------------------------------------------------------


def test_pcap_every_digit(tmp_path: Path) -> None:
    digits = "0123456789*#ABCD"
    stream = toolkit.DtmfRtpStream(lead_in_packets=0, first_seq=100, first_timestamp=8000)
    info = toolkit.make_dtmf_pcap(tmp_path / "all.pcap", digits, gap=0.1, duration=0.1, stream=stream)
    records = read_pcap(info.path)
    packets = [parse_rtp(r.udp_payload) for r in records]

    assert info.packets == len(records) == len(digits) * (5 + 3)
    assert {p.pt for p in packets} == {101}
    assert {(r.sport, r.dport) for r in records} == {(40000, 40002)}
    check_event_structure(packets, digits, updates=5)
    check_numbering(packets)
    assert packets[0].seq == 100 and packets[0].ts == 8000

    # Consecutive events: previous start + its 8 packets of media clock + the gap.
    starts = [g[0].ts for g in digit_groups(packets)]
    assert {b - a for a, b in pairwise(starts)} == {8 * 160 + 800}

    # Pcap times pace SIPp's replay: 20 ms apart inside an event, +gap between events.
    deltas = [round(b.time - a.time, 3) for a, b in pairwise(records)]
    assert set(deltas) == {0.02, 0.12}
    assert deltas.count(0.12) == len(digits) - 1
    assert info.duration == pytest.approx(records[-1].time - records[0].time + 0.02, abs=1e-5)


def test_pcaps_of_one_call_continue_numbering(tmp_path: Path) -> None:
    stream = toolkit.DtmfRtpStream()  # default: 5 PCMU packets of lead-in
    first = stream.write_pcap(tmp_path / "a.pcap", "1")
    stream.advance(3.0)  # e.g. a Pause(3) step between the two Dtmf steps
    second = stream.write_pcap(tmp_path / "b.pcap", "23", gap=0.5, duration=0.06)
    third = stream.write_pcap(tmp_path / "c.pcap", "1")  # same digit again, new timestamps

    per_file = [[parse_rtp(r.udp_payload) for r in read_pcap(p.path)] for p in (first, second, third)]
    packets = [p for f in per_file for p in f]
    check_numbering(packets)

    lead_in, rest = per_file[0][:5], per_file[0][5:]
    assert [p.pt for p in lead_in] == [0] * 5 and lead_in[0].marker
    assert all(p.payload == b"\xff" * 160 for p in lead_in)
    assert all(p.pt == 101 for p in rest + per_file[1] + per_file[2]), "lead-in only once per call"
    assert [p.ts for p in lead_in] == [lead_in[0].ts + 160 * i for i in range(5)]
    assert rest[0].ts == lead_in[-1].ts + 160

    check_event_structure(rest, "1", updates=10)
    check_event_structure(per_file[1], "23", updates=3)
    check_event_structure(per_file[2], "1", updates=10)
    assert events_of(packets) == "1231"
    starts = [g[0].ts for g in digit_groups(packets)]
    assert starts == sorted(set(starts))
    assert starts[1] - starts[0] == 13 * 160 + 3 * 8000, "advance() moves the media clock"
    assert starts[2] - starts[1] == 6 * 160 + 4000

    # Pcap record times also keep increasing from file to file.
    times = [[r.time for r in read_pcap(p.path)] for p in (first, second, third)]
    assert times[0][-1] < times[1][0] < times[1][-1] < times[2][0]
    assert second.duration == pytest.approx(2 * 0.12 + 0.5, abs=1e-5)


def test_pcap_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not DTMF"):
        toolkit.make_dtmf_pcap(tmp_path / "x.pcap", "1x")
    with pytest.raises(ValueError):
        toolkit.make_dtmf_pcap(tmp_path / "x.pcap", "")


def test_call_validation() -> None:
    with pytest.raises(ValueError, match="must end with"):
        toolkit.SippCall(dialed="100", steps=[Pause(1)]).validate()
    with pytest.raises(ValueError, match="last step"):
        toolkit.SippCall(dialed="100", steps=[Hangup(), ExpectHangup()]).validate()
    with pytest.raises(ValueError, match="caller_name"):
        toolkit.SippCall(dialed="100", caller_name='Al"ice', steps=[Hangup()]).validate()
    with pytest.raises(ValueError, match="dialed"):
        toolkit.SippCall(dialed="1 00", steps=[Hangup()]).validate()
    # SIPp's -timeout must not cut a call short: ExpectHangup's wait counts too.
    with pytest.raises(ValueError, match="timeout=20"):
        toolkit.prepare_call(
            toolkit.SippCall(dialed="100", steps=[Pause(1), ExpectHangup(30)]), ("127.0.0.1", 5060), 20
        )


def test_free_ports_are_distinct() -> None:
    ports = {toolkit.free_udp_port() for _ in range(20)}
    assert len(ports) == 20
    rtp = toolkit.free_rtp_port()
    assert rtp % 2 == 0 and not {rtp, rtp + 1, rtp + 2, rtp + 3} & ports


def test_scenario_file(tmp_path: Path) -> None:
    call = toolkit.SippCall(
        dialed="100", caller_number="5551234", caller_name="Alice",
        steps=[Pause(1.5), Dtmf("1"), Pause(4.0), ExpectHangup(10)],
    )  # fmt: skip
    prepared = toolkit.prepare_call(call, ("127.0.0.1", 15060), timeout=30, workdir=tmp_path)
    xml = prepared.scenario_path.read_text()
    assert 'From: "Alice" <sip:5551234@[local_ip]:[local_port]>' in xml
    assert "INVITE sip:100@[remote_ip]:[remote_port] SIP/2.0" in xml
    assert "m=audio [media_port] RTP/AVP 0 101" in xml and "a=rtpmap:101 telephone-event/8000" in xml
    assert [p.path.name for p in prepared.pcaps] == ["dtmf_step2.pcap"]
    argv = prepared.argv
    assert argv[1] == "127.0.0.1:15060"
    assert argv[argv.index("-p") + 1] == str(prepared.local_port)
    assert argv[argv.index("-mp") + 1] == str(prepared.media_port)
    assert argv[argv.index("-cid_str") + 1] == prepared.call_id
    assert argv[argv.index("-timeout") + 1] == "30s"


# --------------------------------------------------------------------------------------
# Real SIPp calls against a SIPp UAS
# --------------------------------------------------------------------------------------

needs_sipp = pytest.mark.skipif(
    not (os.path.exists(toolkit.SIPP_BINARY) and os.geteuid() == 0),
    reason="needs sipp, and root for play_pcap_audio's raw socket",
)

_UAS_200 = """\
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP4 127.0.0.1
s=uas
c=IN IP4 127.0.0.1
t=0 0
m=audio {sink_port} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
"""

# In-dialog request from the UAS: to the caller's Contact, From/To swapped (taken from the ACK).
_UAS_REQUEST = """\
{method} [$contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From:[$to]
To:[$from]
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: <sip:[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
"""

_UAS_BYE_200 = """\
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
"""


_UAS_REJECT = """\
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
"""


def cdata(text: str) -> str:
    return f"<![CDATA[\n{text}\n]]>"


def uas_scenario(
    sink_port: int, *, bye_after: float | None, update_after: float | None = None, reject: bool = False
) -> str:
    """Answer with SDP pointing at `sink_port`; optionally send UPDATE, then BYE or await it."""
    if reject:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<scenario name="busy uas">\n'
            f'  <recv request="INVITE"/>\n  <send>{cdata(_UAS_REJECT)}</send>\n  <recv request="ACK"/>\n</scenario>\n'
        )

    # SIPp refuses variables referenced only once: capture the dialog only if we use it.
    sends_requests = bye_after is not None or update_after is not None
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<scenario name="test uas">',
        '  <recv request="INVITE"><action>'
        '<ereg regexp="sip:[^&gt;;]*" search_in="hdr" header="Contact:" assign_to="contact"/>'
        "</action></recv>"
        if sends_requests
        else '  <recv request="INVITE"/>',
        f"  <send>{cdata(_UAS_200.format(sink_port=sink_port))}</send>",
        '  <recv request="ACK"><action>'
        '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>'
        '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="to"/>'
        "</action></recv>"
        if sends_requests
        else '  <recv request="ACK"/>',
    ]
    if update_after is not None:
        lines.append(f'  <pause milliseconds="{round(update_after * 1000)}"/>')
        lines.append(f'  <send retrans="500">{cdata(_UAS_REQUEST.format(method="UPDATE", cseq=1))}</send>')
        lines.append('  <recv response="200"/>')
    if bye_after is None:
        lines.append('  <recv request="BYE"/>')
        lines.append(f"  <send>{cdata(_UAS_BYE_200)}</send>")
    else:
        lines.append(f'  <pause milliseconds="{round(bye_after * 1000)}"/>')
        lines.append(f'  <send retrans="500">{cdata(_UAS_REQUEST.format(method="BYE", cseq=2))}</send>')
        lines.append('  <recv response="200"/>')
    lines.append("</scenario>")
    return "\n".join(lines) + "\n"


@dataclass
class RtpSink:
    """A UDP socket standing in for the far end's RTP port; records what arrives."""

    sock: socket.socket
    received: list[tuple[float, tuple[str, int], bytes]] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls) -> RtpSink:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", toolkit.free_udp_port()))
        sock.settimeout(0.05)
        sink = cls(sock)
        sink._thread = threading.Thread(target=sink._run, daemon=True)
        sink._thread.start()
        return sink

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), addr, data))

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.sock.close()

    def rtp(self) -> list[Rtp]:
        return [parse_rtp(data) for _, _, data in self.received]


@dataclass
class Uas:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    sink: RtpSink

    @classmethod
    def start(
        cls, workdir: Path, *, bye_after: float | None, update_after: float | None = None, reject: bool = False
    ) -> Uas:
        workdir.mkdir(parents=True, exist_ok=True)
        sink = RtpSink.start()
        scenario = workdir / "uas.xml"
        scenario.write_text(uas_scenario(sink.port, bye_after=bye_after, update_after=update_after, reject=reject))
        port = toolkit.free_udp_port()
        argv = [
            toolkit.SIPP_BINARY, "-sf", str(scenario), "-m", "1",
            "-i", "127.0.0.1", "-p", str(port),
            "-mi", "127.0.0.1", "-mp", str(toolkit.free_rtp_port()),
            "-trace_msg", "-message_file", str(workdir / "uas_messages.log"),
            "-timeout", "20s", "-timeout_error", "-nostdin",
        ]  # fmt: skip
        # SIPp keeps its own copy of the log's descriptor: ours closes once it is started.
        with open(workdir / "uas_stderr.log", "wb") as stderr:
            proc = subprocess.Popen(
                argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )
        # Wait until the UAS listens, so the INVITE is not lost to a closed port.
        deadline = time.monotonic() + 5
        while _udp_port_free(port):
            assert proc.poll() is None, (workdir / "uas_stderr.log").read_text()
            assert time.monotonic() < deadline, "SIPp UAS did not start"
            time.sleep(0.02)
        return cls(proc, port, workdir, sink)

    @property
    def target(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def finish(self) -> int:
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.sink.close()

    def messages(self) -> str:
        return (self.workdir / "uas_messages.log").read_text(errors="replace")


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@needs_sipp
def test_call_with_dtmf_then_caller_hangs_up(tmp_path: Path) -> None:
    uas = Uas.start(tmp_path / "uas", bye_after=None)
    call = toolkit.SippCall(
        dialed="100", caller_number="5551234", caller_name="Alice",
        steps=[Pause(0.3), Dtmf("1#", gap=0.2, duration=0.1), Pause(0.3), Dtmf("1"), Hangup()],
    )  # fmt: skip
    try:
        result = toolkit.run_call(call, target=uas.target, timeout=20, keep_files=True)
    finally:
        uas_rc = uas.finish()
    assert result.ok, result.describe()
    assert uas_rc == 0, uas.messages()
    assert result.failure_reasons == []
    assert result.call_id.startswith("ivrp-") and f"Call-ID: {result.call_id}" in uas.messages()
    assert f'From: "Alice" <sip:5551234@127.0.0.1:{result.local_port}>' in uas.messages()
    assert "INVITE sip:100@127.0.0.1" in uas.messages()
    ladder = [line.split(" ", 2)[2] for line in result.ladder()]
    assert ladder[0].startswith(">> INVITE") and ladder[-2].startswith(">> BYE") and ladder[-1] == "<< SIP/2.0 200 OK"

    # What SIPp put on the wire: the RTP bytes of our pcaps, unchanged, in order...
    assert result.workdir is not None
    sent = [r.udp_payload for pcap in ("dtmf_step2.pcap", "dtmf_step4.pcap") for r in read_pcap(result.workdir / pcap)]
    got = [data for _, _, data in uas.sink.received]
    assert got == sent
    # ...from our SDP's media port on -mi (the pcap said 127.0.0.1:40000)...
    assert {addr for _, addr, _ in uas.sink.received} == {("127.0.0.1", result.media_port)}
    packets = uas.sink.rtp()
    assert events_of(packets) == "1#1"
    check_numbering(packets)
    # ...in real time: the first pcap (5 lead-in + 2 x 8 packets, 0.2 s gap) lasts ~0.6 s.
    times = [t for t, _, _ in uas.sink.received[: 5 + 16]]
    assert 0.45 < times[-1] - times[0] < 1.0
    shutil.rmtree(result.workdir)


@needs_sipp
async def test_remote_hangs_up_async_with_update(tmp_path: Path) -> None:
    uas = Uas.start(tmp_path / "uas", bye_after=1.5, update_after=0.2)
    call = toolkit.SippCall(dialed="200", caller_number="5550000", steps=[Pause(0.5), Dtmf("9"), ExpectHangup(10)])
    try:
        task = asyncio.create_task(toolkit.run_call_async(call, target=uas.target, timeout=20))
        ticks = 0
        while not task.done():  # the event loop stays free while the call runs
            ticks += 1
            await asyncio.sleep(0.05)
        result = await task
    finally:
        uas_rc = await asyncio.to_thread(uas.finish)
    assert result.ok, result.describe()
    assert ticks > 10
    assert uas_rc == 0, uas.messages()
    assert result.workdir is None, "files of a successful call are removed"
    ladder = [line.split(" ", 2)[2] for line in result.ladder()]
    # The mid-call UPDATE (as Asterisk sends for connected-line changes) was answered
    # by -aa without disturbing the scenario, then the remote BYE was.
    update = next(i for i, line in enumerate(ladder) if line.startswith("<< UPDATE"))
    assert ladder[update + 1] == ">> SIP/2.0 200 OK"
    assert ladder[-2].startswith("<< BYE") and ladder[-1] == ">> SIP/2.0 200 OK"
    assert events_of(uas.sink.rtp()) == "9"


@needs_sipp
async def test_failures_are_clear_and_clean(tmp_path: Path) -> None:
    # 1. The remote side hangs up in the middle of a Pause: the call fails, saying so,
    #    and the BYE is still answered (the UAS gets its 200 and succeeds).
    early = Uas.start(tmp_path / "early", bye_after=0.5)
    early_call = toolkit.SippCall(dialed="300", steps=[Pause(0.2), Pause(5.0), Hangup()])
    # 2. Nobody hangs up: ExpectHangup times out, the caller hangs up itself.
    never = Uas.start(tmp_path / "never", bye_after=None)
    never_call = toolkit.SippCall(dialed="301", steps=[Pause(0.2), ExpectHangup(timeout=1.0)])
    # 3. The call is rejected; 4. nobody listens at all.
    busy = Uas.start(tmp_path / "busy", bye_after=None, reject=True)
    dead_target = ("127.0.0.1", toolkit.free_udp_port())
    try:
        started = time.monotonic()
        early_result, never_result, busy_result, dead_result = await asyncio.gather(
            toolkit.run_call_async(early_call, target=early.target, timeout=20),
            toolkit.run_call_async(never_call, target=never.target, timeout=20),
            toolkit.run_call_async(toolkit.SippCall(dialed="302", steps=[Hangup()]), target=busy.target, timeout=20),
            toolkit.run_call_async(toolkit.SippCall(dialed="303", steps=[Hangup()]), target=dead_target, timeout=2),
        )
        elapsed = time.monotonic() - started
    finally:
        early_rc = await asyncio.to_thread(early.finish)
        never_rc = await asyncio.to_thread(never.finish)
        busy_rc = await asyncio.to_thread(busy.finish)
    assert elapsed < 4, "failures are quick, not SIPp's global timeout"

    assert not early_result.ok and early_result.returncode == 1
    assert early_result.failure_reasons == ["remote hung up during step 2: Pause(5)"]
    assert "remote hung up during step 2" in early_result.describe()
    assert early_rc == 0, early.messages()

    assert not never_result.ok and never_result.returncode == 1
    assert never_result.failure_reasons == ["no BYE from the remote side within 1 s (ExpectHangup(timeout=1))"]
    assert never_rc == 0, never.messages()
    ladder = [line.split(" ", 2)[2] for line in never_result.ladder()]
    assert ladder[-2].startswith(">> BYE") and ladder[-1] == "<< SIP/2.0 200 OK"

    assert not busy_result.ok and busy_result.failure_reasons == ["call rejected: SIP/2.0 486 Busy Here"]
    assert busy_rc == 0, "SIPp ACKed the 486"

    assert not dead_result.ok
    assert dead_result.failure_reasons == [
        f"no SIP response from 127.0.0.1:{dead_target[1]} (is Asterisk listening there?)",
        "SIPp's -timeout (2 s) ended it",
    ]

    for result in (early_result, never_result, busy_result, dead_result):
        assert result.workdir is not None and (result.workdir / "scenario.xml").exists()
        assert str(result.workdir) in result.describe()
        shutil.rmtree(result.workdir)
