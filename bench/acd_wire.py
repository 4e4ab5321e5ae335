"""What the loopback captures of the ACD bench say about each agent cycle, on one clock (kernel
timestamps): the agent's BYE, Asterisk's 200 OK to it, the next offer's INVITE to the same phone,
and in between the ARI traffic that links them (the event telling the controller the agent's leg is
gone, the controller's requests, the originate), read from the websockets and HTTP on the ARI port.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from bench.ari_wire import AriMessage, read_ari, request_line
from bench.capture import udp_packets

__all__ = ["AriMessage", "Cycle", "attach_ari", "read_ari", "read_cycles"]

_CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)", re.M | re.I)
_CSEQ = re.compile(r"^CSeq\s*:\s*\d+\s+(\w+)", re.M | re.I)
# The controller names an offer's leg `<caller's call id>-q<hex>` (calls/acd_offers.py).
_QUEUE_LEG = re.compile(r"-q[0-9a-f]+$")


@dataclass
class Cycle:
    """One agent hangup and what followed it (None: not seen)."""

    bye: float  # the agent's BYE leaving the phone
    bye_ok: float | None = None  # Asterisk's 200 OK to it
    invite: float | None = None  # the next offer's INVITE reaching the phone
    waiting: int = 0  # callers in the queue at the hangup (answered by the flow, not yet talking)
    # ARI, the first message of each after the BYE (see `attach_ari`).
    hangup_request: float | None = None  # Asterisk: ChannelHangupRequest for the agent's leg
    stasis_end: float | None = None  # Asterisk: StasisEnd for it (what the controller acts on)
    bridge_delete: float | None = None  # the controller destroys the conversation's bridge
    bridge_delete_answer: float | None = None
    originate: float | None = None  # the controller's POST /channels for the next offer
    originate_answer: float | None = None
    requests: list[tuple[float, str]] = field(default_factory=list)  # every request in between

    @property
    def gap(self) -> float | None:
        return None if self.invite is None else self.invite - self.bye


@dataclass
class _Leg:
    answered: float | None = None
    ended: float | None = None


def read_cycles(path: Path, sip_port: int, phone_port: int) -> list[Cycle]:
    """The agent's cycles, in order, from the SIP capture (first transmissions only)."""
    cycles: dict[str, Cycle] = {}
    invites: dict[str, float] = {}
    callers: dict[str, _Leg] = {}
    for when, sport, dport, payload in udp_packets(path):
        text = payload.decode("latin-1")
        first = text.partition("\r\n")[0]
        cid_match, cseq_match = _CALL_ID.search(text), _CSEQ.search(text)
        if not cid_match or not cseq_match:
            continue
        cid, cseq = cid_match.group(1), cseq_match.group(1)
        if sport == phone_port and dport == sip_port:
            if first.startswith("BYE ") and cid not in cycles:
                cycles[cid] = Cycle(when)
        elif sport == sip_port and dport == phone_port:
            if first.startswith("INVITE "):
                invites.setdefault(cid, when)
            elif first.startswith("SIP/2.0 200") and cseq == "BYE" and cid in cycles:
                cycle = cycles[cid]
                cycle.bye_ok = cycle.bye_ok or when
        elif dport == sip_port and first.startswith("INVITE "):
            callers.setdefault(cid, _Leg())
        elif sport == sip_port and cid in callers:
            leg = callers[cid]
            if first.startswith("SIP/2.0 200") and cseq == "INVITE" and leg.answered is None:
                leg.answered = when
            elif first.startswith("BYE ") and leg.ended is None:
                leg.ended = when
    offers = sorted(invites.values())
    out = sorted(cycles.values(), key=lambda c: c.bye)
    for cycle in out:
        cycle.invite = next((t for t in offers if t > cycle.bye), None)
        up = sum(
            1
            for leg in callers.values()
            if leg.answered is not None and leg.answered < cycle.bye and (leg.ended or 1e18) > cycle.bye
        )
        cycle.waiting = max(0, up - 1)  # one of them is the caller this agent just talked to
    return out


def attach_ari(cycles: list[Cycle], messages: list[AriMessage]) -> None:
    """For each cycle, the ARI messages between the BYE and the next INVITE."""
    times = [m.when for m in messages]
    for cycle in cycles:
        if cycle.invite is None:
            continue
        answers: dict[str, str] = {}  # request id -> the Cycle attribute its answer goes to
        for message in messages[bisect.bisect_right(times, cycle.bye) :]:
            if message.when > cycle.invite + 0.05:
                break
            body = message.body
            if not message.to_asterisk:
                kind, channel = body.get("type"), body.get("channel")
                leg = isinstance(channel, dict) and _QUEUE_LEG.search(str(channel.get("id", "")))
                if leg and kind == "ChannelHangupRequest" and cycle.hangup_request is None:
                    cycle.hangup_request = message.when
                elif leg and kind == "StasisEnd" and cycle.stasis_end is None:
                    cycle.stasis_end = message.when
                elif kind == "RESTResponse" and (attr := answers.pop(str(body.get("request_id")), None)):
                    setattr(cycle, attr, message.when)
                continue
            request = request_line(body)
            if request is None or message.when > cycle.invite:
                continue
            cycle.requests.append((message.when, request))
            if request.startswith("DELETE bridges/") and cycle.bridge_delete is None:
                cycle.bridge_delete = message.when
                answers[str(body.get("request_id"))] = "bridge_delete_answer"
            elif request == "POST channels" and cycle.originate is None:
                cycle.originate = message.when
                answers[str(body.get("request_id"))] = "originate_answer"
