"""ARI on the wire: the websocket frames and HTTP requests on Asterisk's ARI port, read from a loopback
capture (kernel timestamps, the SIP capture's clock), for the benches that break a delay into its steps.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.capture import CallTrace, ip_packets
from bench.report import ms


@dataclass(frozen=True)
class AriMessage:
    when: float  # the packet that completed it
    to_asterisk: bool
    body: dict[str, Any]  # a websocket text frame's JSON, or {"http": start line} for plain HTTP


def tcp_segments(path: Path) -> Iterator[tuple[float, int, int, bytes]]:
    """(kernel timestamp, source port, destination port, payload) of each IPv4 TCP segment with data."""
    for when, sport, dport, data, ip, end in ip_packets(path, 6):
        total = struct.unpack_from("!H", data, ip + 2)[0]
        tcp = ip + (data[ip] & 0x0F) * 4
        payload = data[tcp + (data[tcp + 12] >> 4) * 4 : min(end, ip + total)]
        if payload:
            yield when, sport, dport, payload


class _Stream:
    """One direction of one TCP connection: HTTP until an upgrade, websocket frames after it.

    A websocket the capture joined mid-frame is read from the first segment that starts a frame
    holding JSON: until then each segment is tried on its own (a frame's header read from the
    middle of another would otherwise swallow the rest of the stream)."""

    def __init__(self, first: bytes) -> None:
        self.buf = b""
        self.websocket = not re.match(rb"(GET|POST|PUT|DELETE|HTTP/1\.[01]) ", first)
        self.synced = not self.websocket

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        self.buf = self.buf + data if self.synced else data
        while self.buf:
            message = self._websocket_frame() if self.websocket else self._http_message()
            if message is None:
                return
            if message:
                yield message

    def _http_message(self) -> dict[str, Any] | None:
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self.buf[:head_end].decode("latin-1")
        length = re.search(r"^Content-Length:\s*(\d+)", head, re.M | re.I)
        size = head_end + 4 + (int(length.group(1)) if length else 0)
        if len(self.buf) < size:
            return None
        self.buf = self.buf[size:]
        start = head.partition("\r\n")[0]
        if start.startswith("HTTP/1.1 101") or re.search(r"^Upgrade:\s*websocket", head, re.M | re.I):
            self.websocket = True
        return {"http": start}

    def _websocket_frame(self) -> dict[str, Any] | None:
        buf = self.buf
        if len(buf) < 2:
            return None
        opcode, masked, size, at = buf[0] & 0x0F, buf[1] & 0x80, buf[1] & 0x7F, 2
        if buf[0] & 0x70 or opcode not in (0, 1, 2, 8, 9, 10):
            self.buf = b""  # joined mid-frame (the capture started late): wait for a fresh segment
            return {}
        if size == 126:
            if len(buf) < 4:
                return None
            size, at = struct.unpack_from("!H", buf, 2)[0], 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size, at = struct.unpack_from("!Q", buf, 2)[0], 10
        key = buf[at : at + 4] if masked else b""
        at += 4 if masked else 0
        if len(buf) < at + size:
            return None
        payload, self.buf = buf[at : at + size], buf[at + size :]
        if masked:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        if opcode != 1:
            return {}
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            if not self.synced:
                self.buf = b""
            return {}
        self.synced = True
        return body if isinstance(body, dict) else {}


def read_ari(path: Path, ari_port: int) -> list[AriMessage]:
    streams: dict[tuple[int, int], _Stream] = {}
    out: list[AriMessage] = []
    for when, sport, dport, payload in tcp_segments(path):
        stream = streams.get((sport, dport))
        if stream is None:
            stream = streams[(sport, dport)] = _Stream(payload)
        for body in stream.feed(payload):
            out.append(AriMessage(when, dport == ari_port, body))
    return out


def request_line(body: dict[str, Any]) -> str | None:
    """The "METHOD uri" of a request to Asterisk (over a websocket or HTTP), else None."""
    if body.get("type") == "RESTRequest":
        return f"{body.get('method')} {body.get('uri')}"
    http = body.get("http")
    if isinstance(http, str) and not http.startswith("HTTP/"):
        return " ".join(http.split()[:2]).replace("/ari/", "", 1).split("?")[0]
    return None


def attach_setup(calls: list[CallTrace], messages: list[AriMessage]) -> None:
    """Each call's StasisStart (Asterisk to the app) and the app's answer request, so that its setup
    splits into Asterisk's part before the app, the app's, and Asterisk's after the answer request.

    An event names a channel, not a SIP Call-ID: a call's StasisStart is the one between its INVITE
    and its 200 OK whose channel's answer request is in between too (calls arrive tens of ms apart);
    a call left with more than one such event, or none, is left without its steps."""
    starts = [
        (m.when, str(m.body["channel"].get("id")))
        for m in messages
        if not m.to_asterisk and m.body.get("type") == "StasisStart" and isinstance(m.body.get("channel"), dict)
    ]
    answers: dict[str, float] = {}
    for m in messages:
        line = request_line(m.body) if m.to_asterisk else None
        if line and line.startswith("POST channels/") and line.endswith("/answer"):
            answers.setdefault(line.split("/")[1], m.when)
    times = [when for when, _ in starts]
    fits: dict[int, list[tuple[float, str]]] = {}
    for i, call in enumerate(calls):
        if call.ok is not None:
            among = starts[bisect.bisect_left(times, call.invite) : bisect.bisect_right(times, call.ok)]
            fits[i] = [(start, ch) for start, ch in among if ch in answers and start <= answers[ch] <= call.ok]
    # Overlapping calls: a call with one candidate takes it, which may leave another with one.
    while sure := {i: found[0] for i, found in fits.items() if len(found) == 1}:
        taken = {ch for _, ch in sure.values()}
        for i, (start, ch) in sure.items():
            calls[i].channel, calls[i].stasis_start, calls[i].answer_request = ch, start, answers[ch]
            del fits[i]
        fits = {i: [f for f in found if f[1] not in taken] for i, found in fits.items()}


def attach_dtmf(calls: list[CallTrace], messages: list[AriMessage]) -> None:
    """Each call's digit as the app sees it (the first ChannelDtmfReceived on its channel after the
    digit's End packet) and the app's request to play the marker (its first `play` on the channel
    after that event), so that the digit's delay splits like the setup. Needs `attach_setup` first
    (the channel); a call whose events are not all on the wire is left without them."""
    by_channel: dict[str, CallTrace] = {
        c.channel: c for c in calls if c.channel is not None and c.digit_end is not None
    }
    for m in messages:
        if not m.to_asterisk:
            channel = m.body.get("channel")
            call = by_channel.get(str(channel.get("id"))) if isinstance(channel, dict) else None
            if (
                call is not None
                and m.body.get("type") == "ChannelDtmfReceived"
                and call.dtmf_event is None
                and call.digit_end is not None
                and m.when >= call.digit_end
            ):
                call.dtmf_event = m.when
            continue
        line = request_line(m.body)
        if line and line.startswith("POST channels/") and line.split("/")[2:3] == ["play"]:
            call = by_channel.get(line.split("/")[1])
            if call is not None and call.dtmf_event is not None and call.marker_request is None:
                call.marker_request = m.when


def _steps(pairs: dict[str, list[tuple[float | None, float | None]]]) -> dict[str, Any]:
    """p50 and p99 (ms) of each step (a list of (from, to) per call), over the calls that have all
    their steps' times."""
    whole = [
        [to - since for since, to in call]
        for call in zip(*pairs.values(), strict=True)
        if all(since is not None and to is not None for since, to in call)
    ]
    return {name: ms([call[i] for call in whole]) for i, name in enumerate(pairs)} | {"calls": len(whole)}


def dtmf_steps(calls: list[CallTrace]) -> dict[str, Any]:
    """An ARI app's digit, step by step (ms, p50 and p99): the digit's End -> ChannelDtmfReceived
    (Asterisk, `to_app`), that event -> the marker's play request (the app, `in_app`), the request ->
    the marker's first packet (Asterisk, `play`)."""
    return _steps({
        "to_app": [(c.digit_end, c.dtmf_event) for c in calls],
        "in_app": [(c.dtmf_event, c.marker_request) for c in calls],
        "play": [(c.marker_request, c.marker) for c in calls],
    })  # fmt: skip


def setup_steps(calls: list[CallTrace]) -> dict[str, Any]:
    """An ARI app's setup, step by step (ms, p50 and p99): INVITE -> StasisStart (Asterisk, `to_app`),
    StasisStart -> the answer request (the app, `in_app`), the answer request -> 200 OK (Asterisk,
    `answer`); over the calls `attach_setup` could follow."""
    return _steps({
        "to_app": [(c.invite, c.stasis_start) for c in calls],
        "in_app": [(c.stasis_start, c.answer_request) for c in calls],
        "answer": [(c.answer_request, c.ok) for c in calls],
    })  # fmt: skip
