"""The SIP messages a SIPp phone (a UAS: an agent's phone, a called customer) sends in the
integration tests' scenarios."""

from __future__ import annotations


def reply(user: str, status: str, *, tag: bool = True, cseq: str = "[last_CSeq:]", body: str = "") -> str:
    """The phone's answer to the request it last received; only the INVITE's 200 (with `body`, an
    SDP) is sent again until acknowledged. The tag names the call: one SIPp takes several."""
    headers = (f"SIP/2.0 {status}\n[last_Via:]\n[last_From:]\n[last_To:]"
               f"{';tag=[pid]p[call_number]' if tag else ''}\n[last_Call-ID:]\n{cseq}\n"
               f"Contact: <sip:{user}@[local_ip]:[local_port]>\n")
    if body:
        headers += "Content-Type: application/sdp\nContent-Length: [len]\n\n" + body
    else:
        headers += "Content-Length: 0\n"
    retrans = ' retrans="500"' if body else ""
    return f"  <send{retrans}><![CDATA[\n{headers}]]></send>"


SDP = """v=0
o=- 2 2 IN IP4 [media_ip]
s=agent
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
"""
