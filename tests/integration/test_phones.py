"""Agent phones register with digest auth (generated password); AMI sees their contacts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ivrpowers.ami import AmiClient, AmiError

from .conftest import AsteriskUnderTest
from .sipp import free_udp_port

pytestmark = pytest.mark.integration

REGISTER = """<?xml version="1.0" encoding="UTF-8"?>
<scenario name="register {user}">
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@[remote_ip]>;tag=[pid]reg[call_number]
To: <sip:{user}@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:{user}@[local_ip]:[local_port]>
Max-Forwards: 70
Expires: {expires}
User-Agent: ivrpowers-test-phone
Content-Length: 0
]]></send>
  <recv response="{first}" auth="true"/>
{second}
</scenario>
"""

AUTHENTICATED = """  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@[remote_ip]>;tag=[pid]reg[call_number]
To: <sip:{user}@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 REGISTER
Contact: <sip:{user}@[local_ip]:[local_port]>
[authentication]
Max-Forwards: 70
Expires: {expires}
User-Agent: ivrpowers-test-phone
Content-Length: 0
]]></send>
  <recv response="{final}"/>"""


def register(asterisk: AsteriskUnderTest, tmp_path: Path, user: str, password: str, *,
             first: int = 401, final: int | None = 200, expires: int = 120,
             port: int | None = None) -> tuple[bool, int, str]:
    """REGISTER as `user` from `port`; True when the exchange went as described (first, final reply)."""
    port = port or free_udp_port()
    second = AUTHENTICATED.format(user=user, expires=expires, final=final) if final else ""
    scenario = tmp_path / f"register-{user}-{port}.xml"
    scenario.write_text(REGISTER.format(user=user, expires=expires, first=first, second=second))
    host, sip_port = asterisk.sip_target
    out = subprocess.run(
        ["sipp", f"{host}:{sip_port}", "-sf", str(scenario), "-m", "1", "-i", host, "-p", str(port),
         "-au", user, "-ap", password, "-timeout", "15", "-nostdin", "-trace_msg",
         "-message_file", str(tmp_path / f"msg-{port}.log")],
        capture_output=True, text=True, timeout=30,
    )
    return out.returncode == 0, port, (tmp_path / f"msg-{port}.log").read_text(errors="replace")


async def contacts(asterisk: AsteriskUnderTest):  # type: ignore[no-untyped-def]
    s = asterisk.settings
    async with AmiClient(s.bind_address, s.ami_port, s.ami_user, s.ami_password) as ami:
        return await ami.contacts()


async def test_ami_lists_endpoints_and_refuses_a_wrong_secret(asterisk: AsteriskUnderTest) -> None:
    s = asterisk.settings
    async with AmiClient(s.bind_address, s.ami_port, s.ami_user, s.ami_password) as ami:
        endpoints = await ami.action("PJSIPShowEndpoints")
        assert {"agent1", "webrtc1", "trunk"} <= {m.get("ObjectName") for m in endpoints}
    with pytest.raises(AmiError, match="refused"):
        await AmiClient(s.bind_address, s.ami_port, s.ami_user, "not-the-secret").connect(timeout=10)


async def test_agent_phone_registers_with_its_generated_password(asterisk: AsteriskUnderTest, tmp_path: Path) -> None:
    password = asterisk.settings.secrets()["agent_password"]
    ok, port, log = register(asterisk, tmp_path, "agent1", password)
    assert ok, log
    found = [c for c in await contacts(asterisk) if c.endpoint == "agent1"]
    assert len(found) == 1 and f":{port}" in found[0].uri, found
    assert found[0].user_agent == "ivrpowers-test-phone"
    assert found[0].expires_in is not None and 0 < found[0].expires_in <= 120
    listed = subprocess.run(
        [sys.executable, "-m", "ivrpowers", "asterisk", "contacts"],
        env={**os.environ, **asterisk.env}, capture_output=True, text=True, check=True,
    ).stdout
    assert listed.splitlines()[0].split()[:3] == ["ENDPOINT", "STATUS", "EXPIRES"], listed  # a header
    assert "agent1" in listed and f":{port}" in listed, listed

    ok, _, log = register(asterisk, tmp_path, "agent1", password, expires=0, port=port)  # unregister
    assert ok, log
    assert not [c for c in await contacts(asterisk) if c.endpoint == "agent1"]


async def test_wrong_password_and_unknown_users_do_not_register(asterisk: AsteriskUnderTest, tmp_path: Path) -> None:
    ok, _, log = register(asterisk, tmp_path, "agent1", "guessed-password", final=401)
    assert ok, log  # challenged again, never accepted
    # An unknown user from the trunk's own address is not taken for the trunk and let in.
    ok, _, log = register(asterisk, tmp_path, "mallory", "x", first=403, final=None)
    assert ok, log
    assert not [c for c in await contacts(asterisk) if c.endpoint in ("agent1", "mallory", "trunk")]


ANSWER_OPTIONS = """<?xml version="1.0" encoding="UTF-8"?>
<scenario name="a phone answering Asterisk's qualify">
  <recv request="OPTIONS"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]opt[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:agent1@[local_ip]:[local_port]>
Content-Length: 0
]]></send>
</scenario>
"""


def test_a_registered_phone_stays_reachable_across_an_asterisk_restart(tmp_path: Path) -> None:
    from .conftest import running_asterisk

    with running_asterisk(tmp_path / "state", 31000) as own:
        password = own.settings.secrets()["agent_password"]
        ok, port, log = register(own, tmp_path, "agent1", password, expires=600)
        assert ok, log
        # The phone's port is held until its SIPp comes back: during the restart another test's
        # process once took it (SIPp: errno 98, address already in use).
        held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        held.bind((own.settings.bind_address, port))
        env = {**os.environ, **own.env}

        def ivrpowers(*args: str) -> object:
            ran = subprocess.run([sys.executable, "-m", "ivrpowers", *args, "--json"], env=env,
                                 capture_output=True, text=True, timeout=120)
            assert ran.returncode == 0, ran.stderr
            return json.loads(ran.stdout)

        assert ivrpowers("asterisk", "stop") == {"was_running": True}
        started = ivrpowers("asterisk", "start")
        assert isinstance(started, dict) and started["running"] and started["ari_ready"], started
        assert set(started) == {"running", "pid", "version", "ari_ready"}
        built = ivrpowers("asterisk", "build")
        assert isinstance(built, dict) and set(built) == {"version", "path", "chrooted"}
        # No new REGISTER: Asterisk must still know where agent1 is, and send to it (its qualify).
        scenario = tmp_path / "answer-options.xml"
        scenario.write_text(ANSWER_OPTIONS)
        held.close()
        phone = subprocess.run(
            ["sipp", "-sf", str(scenario), "-i", own.settings.bind_address, "-p", str(port), "-m", "1",
             "-timeout", "60", "-nostdin", "-trace_msg", "-message_file", str(tmp_path / "options.log")],
            capture_output=True, text=True, timeout=90,
        )
        assert phone.returncode == 0, (tmp_path / "options.log").read_text(errors="replace")[-2000:]
        listed = ivrpowers("asterisk", "contacts")
        assert isinstance(listed, list)
        mine = [c for c in listed if c["endpoint"] == "agent1"]
        assert len(mine) == 1 and f":{port}" in mine[0]["uri"], listed
        assert set(mine[0]) == {"endpoint", "status", "expires_in", "uri", "user_agent"}


def test_asterisk_cli_fails_on_a_command_asterisk_refuses(asterisk: AsteriskUnderTest) -> None:
    env = {**os.environ, **asterisk.env}
    ran = subprocess.run([sys.executable, "-m", "ivrpowers", "asterisk", "cli", "core", "show", "nonsense"],
                         env=env, capture_output=True, text=True)
    assert ran.returncode == 1 and ran.stderr.startswith("error: Asterisk refused"), ran.stderr
    assert ran.stderr.count("\n") == 1
    ran = subprocess.run([sys.executable, "-m", "ivrpowers", "asterisk", "cli", "core", "show", "version"],
                         env=env, capture_output=True, text=True)
    assert ran.returncode == 0 and "Asterisk 22" in ran.stdout
    status = subprocess.run([sys.executable, "-m", "ivrpowers", "asterisk", "status", "--json"],
                            env=env, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout)["running"] is True and json.loads(status.stdout)["ari_ready"] is True
