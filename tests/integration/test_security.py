"""Security on the real Asterisk: who can get in, what a caller may claim, what AMI may do, what is
logged for fail2ban, and who may read the state directory.

SIPp sends from other loopback addresses (127.0.0.2, 127.0.0.3) to play a host that is not the trunk.
"""

from __future__ import annotations

import itertools
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from ivrpowers.ami import AmiClient, AmiError
from ivrpowers.resources import fail2ban_config
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database

from .conftest import AsteriskUnderTest, ControllerUnderTest
from .sipp import free_rtp_port, free_udp_port

pytestmark = pytest.mark.integration

_numbers = itertools.count(1)


def unrouted_number() -> str:
    """A dialed number of its own for each call (no route: early media, then 404), to find its CDR."""
    return f"9{uuid.uuid4().int % 10**6:06d}{next(_numbers)}"


_SDP = """
v=0
o=- 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000"""

_INVITE = """  <send retrans="500"><![CDATA[
INVITE sip:{dialed}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@[remote_ip]>;tag=[pid]sec[call_number]
To: <sip:{dialed}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:{user}@[local_ip]:[local_port]>
{headers}Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]
{sdp}
]]></send>
  <recv response="100" optional="true"/>"""

# ACK of a non-2xx final response: the INVITE's own transaction (its Via, hence its branch).
_ACK = """  <send><![CDATA[
ACK sip:{dialed}@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: <sip:{user}@[remote_ip]>;tag=[pid]sec[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0
]]></send>"""

_REGISTER = """  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@[remote_ip]>;tag=[pid]reg[call_number]
To: <sip:{user}@[remote_ip]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:{user}@[local_ip]:[local_port]>
{headers}Max-Forwards: 70
Expires: 60
Content-Length: 0
]]></send>"""


def _scenario(*parts: str) -> str:
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<scenario name="security probe">\n'
    return head + "\n".join(parts) + "\n</scenario>\n"


def refused_invite(user: str, dialed: str, pai: str | None) -> str:
    """An INVITE that must be refused outright: 401 or 403, nothing else first (no 183, no 200)."""
    fields = {"user": user, "dialed": dialed, "cseq": 1, "sdp": _SDP,
              "headers": f"P-Asserted-Identity: <sip:{pai}@[remote_ip]>\n" if pai else ""}
    return _scenario(
        _INVITE.format(**fields),
        '  <recv response="401" optional="true" next="refused"/>',
        '  <recv response="403"/>',
        '  <label id="refused"/>',
        _ACK.format(**fields),
    )


def unrouted_invite(user: str, dialed: str, pai: str | None, *, digest: bool) -> str:
    """An INVITE (digest-authenticated if `digest`) to an unrouted number: early media, then 404."""
    fields = {"user": user, "dialed": dialed, "cseq": 1, "sdp": _SDP,
              "headers": f"P-Asserted-Identity: <sip:{pai}@[remote_ip]>\n" if pai else ""}
    parts = []
    if digest:
        parts += [_INVITE.format(**fields), '  <recv response="401" auth="true"/>', _ACK.format(**fields)]
        fields = {**fields, "cseq": 2, "headers": fields["headers"] + "[authentication]\n"}
    parts += [
        _INVITE.format(**fields),
        '  <recv response="180" optional="true"/>',
        '  <recv response="183" optional="true"/>',
        '  <recv response="183" optional="true"/>',
        '  <recv response="404"/>',
        _ACK.format(**fields),
    ]
    return _scenario(*parts)


def failed_register(user: str, *, unknown: bool) -> str:
    """A REGISTER with a wrong password (challenged twice), or as an account that does not exist."""
    fields = {"user": user, "cseq": 1, "headers": ""}
    if unknown:
        return _scenario(_REGISTER.format(**fields), '  <recv response="401" optional="true" next="done"/>',
                         '  <recv response="403"/>', '  <label id="done"/>')
    return _scenario(
        _REGISTER.format(**fields), '  <recv response="401" auth="true"/>',
        _REGISTER.format(**{**fields, "cseq": 2, "headers": "[authentication]\n"}), '  <recv response="401"/>',
    )


def sipp(asterisk: AsteriskUnderTest, workdir: Path, scenario: str, *, local_ip: str = "127.0.0.1",
         call_id: str | None = None, password: tuple[str, str] | None = None) -> str:
    """Run one SIPp exchange from `local_ip`; its SIP message log (the test fails if SIPp does)."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex[:8]
    xml, messages = workdir / f"{name}.xml", workdir / f"{name}.log"
    xml.write_text(scenario)
    host, port = asterisk.sip_target
    argv = ["sipp", f"{host}:{port}", "-sf", str(xml), "-m", "1", "-i", local_ip,
            "-p", str(free_udp_port(local_ip)), "-mi", local_ip, "-mp", str(free_rtp_port(local_ip)),
            "-cid_str", (call_id or f"sec-{name}@{local_ip}").replace("%", "%%"),
            "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_msg", "-message_file", str(messages)]
    if password:
        argv += ["-au", password[0], "-ap", password[1]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=40, cwd=workdir, check=False)
    log = messages.read_text(errors="replace") if messages.exists() else ""
    assert out.returncode == 0, f"SIPp exit {out.returncode}\n{out.stderr[-2000:]}\n{log[-4000:]}"
    return log


async def wait_cdr_dialed(controller: ControllerUnderTest, dialed: str, timeout: float = 30.0) -> dict[str, Any]:
    return await controller.wait_record(lambda r: r.dialed == dialed and r.ended_at is not None,
                                        f"finished CDR for a call to {dialed}", timeout, recent=500)


async def all_callers(controller: ControllerUnderTest) -> set[str]:
    db = Database(controller.db_url)
    try:
        return {r.caller_number or "" for r in await CdrRepository(db).latest(10_000)}
    finally:
        await db.close()


# --- who may come in, claiming what ---------------------------------------------------------------


@pytest.mark.parametrize("source", ["127.0.0.2", "127.0.0.3"])
def test_claiming_the_trunk_from_another_address_is_refused(
    asterisk: AsteriskUnderTest, tmp_path: Path, source: str
) -> None:
    # Before: the trunk endpoint was matched by the user in From, and the call went to the IVR.
    log = sipp(asterisk, tmp_path, refused_invite("trunk", "100", pai="6660001"), local_ip=source)
    assert "SIP/2.0 200" not in log and "SIP/2.0 183" not in log


@pytest.mark.parametrize("controller", ["sqlite"], indirect=True)
async def test_caller_ids_are_believed_from_the_trunk_only(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    agent_password = asterisk.settings.secrets()["agent_password"]
    # A spoofed identity from elsewhere: refused before any channel exists, so before any CDR.
    sipp(asterisk, tmp_path, refused_invite("trunk", unrouted_number(), pai="6660002"), local_ip="127.0.0.2")
    # An authenticated phone asserting someone else's number: the call goes on under its own callerid.
    from_phone = unrouted_number()
    sipp(asterisk, tmp_path, unrouted_invite("agent1", from_phone, pai="6660003", digest=True),
         password=("agent1", agent_password))
    # The trunk's assertion is believed (the control: without it the two above would prove nothing).
    from_trunk = unrouted_number()
    sipp(asterisk, tmp_path, unrouted_invite("5557001", from_trunk, pai="7770001", digest=False))

    trunk_cdr = await wait_cdr_dialed(controller, from_trunk)
    assert trunk_cdr["caller"] == "7770001"
    phone_cdr = await wait_cdr_dialed(controller, from_phone)
    assert phone_cdr["caller"] == "1001" and phone_cdr["caller_name"] == "Agent One"
    assert not {"6660002", "6660003"} & await all_callers(controller)
    # Calls carry their Asterisk's id: its systemname prefixes the channel ids Asterisk makes.
    for cdr in (trunk_cdr, phone_cdr):
        assert cdr["channel_id"].startswith(f"{asterisk.settings.asterisk_id}-"), cdr["channel_id"]
    assert (trunk_cdr["source"], phone_cdr["source"]) == ("trunk", "phone")


# --- AMI ------------------------------------------------------------------------------------------


async def test_ami_account_lists_contacts_and_may_not_originate_or_run_commands(asterisk: AsteriskUnderTest) -> None:
    s = asterisk.settings
    async with AmiClient(s.bind_address, s.ami_port, s.ami_user, s.ami_password) as ami:
        assert isinstance(await ami.contacts(), list)
        with pytest.raises(AmiError, match="Permission denied"):
            await ami.action("Originate", Channel="Local/100@from-trunk", Application="NoOp", Data="x")
        with pytest.raises(AmiError, match="Permission denied"):
            await ami.action("Command", Command="core show version")


# --- the security log and fail2ban ----------------------------------------------------------------


def _security_log(asterisk: AsteriskUnderTest) -> Path:
    return asterisk.settings.state_dir.resolve() / "asterisk" / "log" / "security.log"


def _wait_for_lines(path: Path, needles: list[str], timeout: float = 15.0) -> None:
    """Asterisk's logger writes from its own thread: wait until every needle is in the file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if all(n in text for n in needles):
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} lacks {needles}:\n{text[-3000:]}")


def test_failed_authentications_are_logged_and_the_fail2ban_filter_names_the_offender(
    asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    assert shutil.which("fail2ban-regex"), "fail2ban-regex missing: run scripts/install-debian-deps (fail2ban)"
    tag = uuid.uuid4().hex[:10]
    wrong_password = f"pw-{tag}@127.0.0.3"
    claims_trunk = f"trunk-{tag}@127.0.0.2"
    unknown_user = f"who-{tag}@127.0.0.3"
    # The Call-ID is the caller's to write, quotes included: it must not get someone else banned.
    framing = f'frame-{tag}",LocalAddress="IPV4/UDP/127.0.0.1/5060",RemoteAddress="IPV4/UDP/10.66.66.66/5060'
    sipp(asterisk, tmp_path, failed_register("agent1", unknown=False), local_ip="127.0.0.3",
         call_id=wrong_password, password=("agent1", "not-the-password"))
    sipp(asterisk, tmp_path, refused_invite("trunk", "100", pai=None), local_ip="127.0.0.2", call_id=claims_trunk)
    sipp(asterisk, tmp_path, failed_register(f"nobody{tag}", unknown=True), local_ip="127.0.0.3", call_id=unknown_user)
    sipp(asterisk, tmp_path, failed_register(f"nobody{tag}", unknown=True), local_ip="127.0.0.2", call_id=framing)

    log = _security_log(asterisk)
    _wait_for_lines(log, [f'SessionID="{c}"' for c in (wrong_password, claims_trunk, unknown_user, framing)])
    out = subprocess.run(
        ["fail2ban-regex", "-o", "<ip>|<msg>", str(log), str(fail2ban_config() / "filter.conf")],
        capture_output=True, text=True, check=True,
    ).stdout
    matched = [line.split("|", 1) for line in out.splitlines() if "|" in line]
    offender = {session: ip for ip, msg in matched for session in
                (wrong_password, claims_trunk, unknown_user, framing) if f'SessionID="{session}"' in msg}
    assert offender.get(wrong_password) == "127.0.0.3"  # ChallengeResponseFailed
    assert offender.get(claims_trunk) == "127.0.0.2"  # InvalidAccountID: no endpoint for it there
    assert offender.get(unknown_user) == "127.0.0.3"  # InvalidAccountID
    assert offender.get(framing) == "127.0.0.2"
    assert "10.66.66.66" not in {ip for ip, _ in matched}


# --- the state directory --------------------------------------------------------------------------


@pytest.mark.parametrize("controller", ["sqlite"], indirect=True)
def test_every_file_in_the_state_dir_is_private(
    asterisk: AsteriskUnderTest, controller: ControllerUnderTest, tmp_path: Path
) -> None:
    # A real `ivrpowers db upgrade` (SQLite in the state directory), after Asterisk wrote its logs
    # (the failed logins above fill security.log) and the controller its CDR spool.
    env = {k: v for k, v in controller.env.items() if k != "IVRPOWERS_DB_URL"}
    subprocess.run([sys.executable, "-m", "ivrpowers", "db", "upgrade"], env=env, check=True, capture_output=True)
    state = asterisk.settings.state_dir.resolve()
    written = {p.relative_to(state).as_posix() for p in state.rglob("*")}
    assert {"ivrpowers.db", "secrets.json", "identity.json", "asterisk/etc/pjsip.conf",
            "asterisk/log/messages.log", "asterisk/log/security.log"} <= written, sorted(written)
    shared = {
        p.relative_to(state).as_posix(): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in [state, *state.rglob("*")]
        if not p.is_symlink() and stat.S_IMODE(p.lstat().st_mode) & 0o077
    }
    assert not shared, shared
