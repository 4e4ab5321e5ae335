"""SIPp callers for the video bench: a voice caller (PCMA) and a video caller (the same audio, and VP8
or H.264 on plain RTP/AVP), as the bench's own endpoint (`CALLER`) or, for voice, the trunk.

From the ACK each call streams PCMA silence (SIPp's rtp_stream, 50 packets/s) and, for a video
caller, a camera: the prompt's own coded pictures as RTP (the packets per second and bit rate it
receives), replayed from a pcap. SIPp plays one pcap at a time per call (a second play_pcap stops the
first), hence rtp_stream for the audio and the digit as SIP INFO (application/dtmf-relay, as the
/call page can send it) at DIGIT_AT. What Asterisk sends back is not read by SIPp: the bench counts
it on the wire. The call ends at the IVR's BYE; one with no BYE in time fails.
"""

from __future__ import annotations

import struct
from pathlib import Path

from bench.load import BYE_TIMEOUT_MS, IN_DIALOG, INVITE, LoadPoint, SippOutcome, cdata, run_load
from bench.media import ALAW_SILENCE, CALLER_AUDIO_SECONDS, DIGIT, DIGIT_AT
from ivrpowers.media.records import decode_records

CALLER = "benchcam"  # the endpoint the bench makes (identified by this SIP user name): see video_load
# Dynamic payload types of the offer; the replayed camera's packets carry the same.
VIDEO_PT = {"vp8": 96, "h264": 97}
RTPMAP = {
    "vp8": "a=rtpmap:96 VP8/90000",
    "h264": "a=rtpmap:97 H264/90000\na=fmtp:97 profile-level-id=42e01f;packetization-mode=1",
}
VIDEO_CLOCK = 90_000

_VIDEO_SDP = """\
m=video [media_port+2] RTP/AVP {pt}
{rtpmap}
a=sendrecv
"""

_INFO = """\
INFO [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 INFO
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={digit}
Duration=120
"""

_OK = """\
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:{caller}@[local_ip]:[local_port]>
Content-Length: 0
"""


def scenario(number: str, caller: str, silence: Path, video: tuple[str, Path | None] | None) -> str:
    """The SIPp scenario of `caller` (the SIP user in From). `silence`: a raw A-law file streamed in a
    loop; `video`: (codec, camera pcap or None: no picture sent) for a video caller, None for voice."""
    invite = INVITE.format(number=number, caller=caller)
    media = [f'<exec rtp_stream="{silence},-1,8"/>']
    if video is not None:
        codec, camera = video
        invite += _VIDEO_SDP.format(pt=VIDEO_PT[codec], rtpmap=RTPMAP[codec])
        if camera is not None:
            media.append(f'<exec play_pcap_video="{camera}"/>')
    # SIPp has no "fail" element: a <test check_it> that cannot pass marks the call failed.
    fail = ('<action><assign assign_to="nobye" value="1"/>'
            '<test variable="nobye" compare="equal" value="0" check_it="true"/></action>')
    in_dialog = {"caller": caller, "number": number}
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<scenario name="ivrpowers video bench caller">',
        f'  <send retrans="500">{cdata(invite)}</send>',
        '  <recv response="100" optional="true"/>',
        '  <recv response="180" optional="true"/>',
        '  <recv response="183" optional="true"/>',
        '  <recv response="200" rrs="true"/>',
        f"  <send>{cdata(IN_DIALOG.format(method='ACK', cseq=1, **in_dialog))}</send>",
        f"  <nop><action>{''.join(media)}</action></nop>",
        f'  <pause milliseconds="{round(DIGIT_AT * 1000)}"/>',
        f'  <send retrans="500">{cdata(_INFO.format(digit=DIGIT, **in_dialog))}</send>',
        '  <recv response="200"/>',
        f'  <recv request="BYE" timeout="{BYE_TIMEOUT_MS}" ontimeout="nobye"/>',
        f'  <send next="end">{cdata(_OK.format(caller=caller))}</send>',
        '  <label id="nobye"/>',
        f'  <send retrans="500">{cdata(IN_DIALOG.format(method="BYE", cseq=3, **in_dialog))}</send>',
        f'  <recv response="200">{fail}</recv>',
        '  <label id="end"/>',
        "</scenario>",
        "",
    ])


def write_silence(path: Path, seconds: float = 1.0) -> Path:
    """Raw A-law silence for rtp_stream (which loops it)."""
    path.write_bytes(bytes([ALAW_SILENCE]) * round(seconds * 8000))
    return path


def camera_packets(variant: Path, codec: str, fps: int,
                   seconds: float = CALLER_AUDIO_SECONDS) -> list[tuple[float, bytes]]:
    """(seconds from the ACK, RTP packet): the prompt file `variant` (`.vp8`/`.h264`, one record per
    RTP payload, the marker ending a picture) sent as a camera would, one picture every 1/fps s,
    looped for `seconds`."""
    records = decode_records(variant.read_bytes(), where=str(variant))
    pictures: list[list[tuple[bool, bytes]]] = [[]]
    for rec in records:
        if rec.payload:
            pictures[-1].append((rec.marker, rec.payload))
        if rec.marker and pictures[-1]:
            pictures.append([])
    pictures = [p for p in pictures if p]
    if not pictures:
        raise ValueError(f"{variant}: no picture in it")
    ssrc, seq, out = 0x0CA3E8A5, 2000, []
    count = round(seconds * fps)
    for n in range(count):
        when, ts = n / fps, (n * VIDEO_CLOCK // fps) & 0xFFFFFFFF
        for marker, payload in pictures[n % len(pictures)]:
            header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | VIDEO_PT[codec], seq & 0xFFFF, ts, ssrc)
            out.append((when, header + payload))
            seq += 1
    return out


def run_calls(target: tuple[str, int], number: str, caller: str, point: LoadPoint, silence: Path,
              video: tuple[str, Path | None] | None, workdir: Path) -> SippOutcome:
    """Place `point.calls` calls to `number` at `point.concurrency` / 10 s a second; return when SIPp
    exits (bounded)."""
    return run_load(target, number, point, silence, workdir, scenario(number, caller, silence, video))
