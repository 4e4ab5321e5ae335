"""One load point: a single SIPp process placing calls at a steady rate to one number.

Every call: INVITE offering PCMA + telephone-event, ACK, then the caller's pcap (silence and one digit,
see `media.py`) while it waits for the IVR's BYE. A call that gets no BYE in time hangs up itself and
counts as failed in SIPp's statistics.
"""

from __future__ import annotations

import csv
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SIPP = "/usr/bin/sipp"
CALL_SECONDS = 10.0  # what a call lasts: prompt, digit, marker, hangup
BYE_TIMEOUT_MS = 30_000

CALLER = "5550000"  # the SIP user in From (`{caller}` in the templates, which the video bench shares)
INVITE = """\
INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, NOTIFY
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP4 [media_ip]
s=bench
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""

IN_DIALOG = """\
{method} [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
"""

_OK = """\
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:5550000@[local_ip]:[local_port]>
Content-Length: 0
"""


def cdata(text: str) -> str:
    return "<![CDATA[\n" + text + "\n]]>"


def scenario(number: str, pcap: Path) -> str:
    # SIPp has no "fail" element: a <test check_it> that cannot pass marks the call failed.
    fail = (
        '<action><assign assign_to="nobye" value="1"/>'
        '<test variable="nobye" compare="equal" value="0" check_it="true"/></action>'
    )
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<scenario name="ivrpowers call-load bench">',
        f'  <send retrans="500">{cdata(INVITE.format(number=number, caller=CALLER))}</send>',
        '  <recv response="100" optional="true"/>',
        '  <recv response="180" optional="true"/>',
        '  <recv response="183" optional="true"/>',
        '  <recv response="200" rrs="true"/>',
        f"  <send>{cdata(IN_DIALOG.format(method='ACK', cseq=1, number=number, caller=CALLER))}</send>",
        f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>',
        f'  <recv request="BYE" timeout="{BYE_TIMEOUT_MS}" ontimeout="nobye"/>',
        f'  <send next="end">{cdata(_OK)}</send>',
        '  <label id="nobye"/>',
        f'  <send retrans="500">{cdata(IN_DIALOG.format(method="BYE", cseq=2, number=number, caller=CALLER))}</send>',
        f'  <recv response="200">{fail}</recv>',
        '  <label id="end"/>',
        "</scenario>",
        "",
    ])  # fmt: skip


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_media_port() -> int:
    """An even port p with p..p+3 free: SIPp binds p (audio) and p+2 (video); +1 and +3 are RTCP."""
    for _ in range(200):
        base = free_udp_port() & ~1
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + 4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free media port range")


@dataclass(frozen=True)
class LoadPoint:
    concurrency: int
    calls: int

    @property
    def per_10s(self) -> int:
        """Calls started per 10 s: one call lasts ~10 s, so this is the concurrency reached."""
        return self.concurrency

    @property
    def placing_seconds(self) -> float:
        return self.calls * CALL_SECONDS / self.concurrency


@dataclass
class SippOutcome:
    returncode: int | None  # None: killed at the deadline
    successful: int
    failed: int
    elapsed: float
    workdir: Path


def run_load(target: tuple[str, int], number: str, point: LoadPoint, pcap: Path, workdir: Path,
             scenario_xml: str | None = None) -> SippOutcome:
    """Place `point.calls` calls to `number` (with `scenario_xml`, else the call bench's own scenario);
    return when SIPp exits (bounded)."""
    workdir.mkdir(parents=True, exist_ok=True)
    scen = workdir / "scenario.xml"
    scen.write_text(scenario_xml if scenario_xml is not None else scenario(number, pcap))
    limit = point.placing_seconds + CALL_SECONDS + BYE_TIMEOUT_MS / 1000 + 30
    host, port = target
    if not host.startswith("127."):
        raise ValueError(f"the bench only calls loopback addresses, not {host}")
    argv = [
        SIPP, f"{host}:{port}", "-sf", str(scen),
        "-i", "127.0.0.1", "-p", str(free_udp_port()),
        "-mi", "127.0.0.1", "-mp", str(free_media_port()),
        "-r", str(point.per_10s), "-rp", "10000", "-l", str(point.concurrency), "-m", str(point.calls),
        "-aa", "-nostdin", "-timeout", f"{int(limit)}s", "-timeout_error",
        "-trace_stat", "-stf", str(workdir / "stats.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-max_socket", str(max(1000, point.concurrency * 4)),
    ]  # fmt: skip
    started = time.monotonic()
    with open(workdir / "stdout.log", "wb") as out:
        proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        code: int | None = None
        try:
            code = proc.wait(timeout=limit + 15)
        except subprocess.TimeoutExpired:
            pass
        finally:  # also when the bench itself is stopped: no SIPp left behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    successful, failed = _final_counts(workdir / "stats.csv")
    return SippOutcome(code, successful, failed, time.monotonic() - started, workdir)


def _final_counts(stats: Path) -> tuple[int, int]:
    try:
        rows = list(csv.DictReader(stats.read_text().splitlines(), delimiter=";"))
    except FileNotFoundError:
        return 0, 0
    if not rows:
        return 0, 0
    last = rows[-1]
    return int(last.get("SuccessfulCall(C)", 0) or 0), int(last.get("FailedCall(C)", 0) or 0)
