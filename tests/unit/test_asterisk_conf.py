"""The shipped Asterisk configuration: no secrets, loopback binds, no way to dial out."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from ivrpowers.asterisk.conf import render_config
from ivrpowers.config import load_secrets, load_settings
from ivrpowers.resources import asterisk_templates

ALLOWED_APPS = {"Stasis", "Hangup", "NoOp"}


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    return render_config(load_settings(state_dir=tmp_path), chrooted=True)


def test_templates_hold_no_secret() -> None:
    for template in asterisk_templates().glob("*.conf"):
        for line in template.read_text().splitlines():
            if re.match(r"\s*(password|secret)\s*=", line):
                assert re.search(r"=\s*@[A-Z_]+@\s*$", line), f"{template.name}: literal secret in {line!r}"


def test_rendering_fills_every_placeholder_with_the_generated_secrets(rendered: Path, tmp_path: Path) -> None:
    secrets = load_secrets(tmp_path)
    text = "".join(p.read_text() for p in rendered.glob("*.conf"))
    assert not re.search(r"@[A-Z_]+@", text)
    for name in ("ari_password", "ami_secret", "agent_password", "webrtc_password"):
        assert secrets[name] in text
    assert all(p.stat().st_mode & 0o077 == 0 for p in rendered.glob("*.conf"))


def test_every_listener_binds_the_configured_address(rendered: Path) -> None:
    http = (rendered / "http.conf").read_text()
    assert "bindaddr = 127.0.0.1" in http
    assert "bindaddr = 127.0.0.1" in (rendered / "manager.conf").read_text()
    pjsip = (rendered / "pjsip.conf").read_text()
    binds = re.findall(r"^bind\s*=\s*(\S+)", pjsip, re.M)
    assert binds and all(b.startswith("127.0.0.1") for b in binds), binds
    assert "permit = 127.0.0.1/255.255.255.255" in (rendered / "manager.conf").read_text()


def test_no_dialplan_context_can_reach_anything_but_the_ari_app(rendered: Path) -> None:
    apps = set()
    for line in (rendered / "extensions.conf").read_text().splitlines():
        line = line.split(";", 1)[0].strip()
        m = re.match(r"(?:exten\s*=>\s*[^,]+,\s*|same\s*=>\s*)[^,]+,\s*(\w+)", line)
        if m:
            apps.add(m.group(1))
    assert apps and apps <= ALLOWED_APPS, apps


def _contexts(conf: str) -> dict[str, list[str]]:
    """Context name -> its lines (comments and blanks dropped)."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in conf.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.match(r"\[([^\]]+)\]", line):
            current = found.setdefault(m.group(1), [])
        elif line:
            current.append(line)
    return found


@pytest.mark.parametrize(("context", "source"), [("from-trunk", "trunk"), ("from-agents", "phone"),
                                                 ("from-webrtc", "browser")])
def test_each_context_passes_the_role_and_its_source_to_stasis(rendered: Path, context: str, source: str) -> None:
    lines = _contexts((rendered / "extensions.conf").read_text())[context]
    stasis = [line for line in lines if "Stasis(" in line]
    assert stasis == [f"exten => _[0-9a-zA-Z*#+]!,1,Stasis(ivrpowers,inbound,dialed=${{EXTEN}},source={source})"]
    # The hangup extension would otherwise match the pattern and enter Stasis again.
    assert "exten => h,1,NoOp()" in lines


def test_endpoints_in_pjsip_conf_point_at_existing_contexts(rendered: Path) -> None:
    contexts = set(_contexts((rendered / "extensions.conf").read_text()))
    used = set(re.findall(r"^context\s*=\s*(\S+)", (rendered / "pjsip.conf").read_text(), re.M))
    assert used and used <= contexts, used - contexts


def _section(conf: str, name: str) -> dict[str, str]:
    """Options of the first section called `name` (templates' own options, not inherited ones)."""
    options: dict[str, str] = {}
    inside = False
    for raw in conf.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            if inside:
                break
            inside = line.split("]")[0] == f"[{name}"
        elif inside and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            options[key] = value
    return options


def test_the_trunk_is_known_by_its_address_alone_and_only_it_is_trusted_with_caller_ids(rendered: Path) -> None:
    pjsip = (rendered / "pjsip.conf").read_text()
    assert _section(pjsip, "trunk")["identify_by"] == "ip"
    assert _section(pjsip, "trunk")["trust_id_inbound"] == "yes"
    for template in ("agent-phone", "webrtc-user"):
        assert _section(pjsip, template)["identify_by"] == "username"
        assert _section(pjsip, template)["trust_id_inbound"] == "no"
    assert re.findall(r"^trust_id_inbound\s*=\s*yes", pjsip, re.M) == ["trust_id_inbound = yes"]
    assert _section(pjsip, "global")["endpoint_identifier_order"] == "username,ip"
    assert "anonymous" not in (rendered / "modules.conf").read_text()


def test_ami_account_may_list_contacts_hear_phone_reachability_and_nothing_more(rendered: Path) -> None:
    account = _section((rendered / "manager.conf").read_text(), "ivrpowers")
    assert account["read"] == "system"  # PeerStatus' and ContactStatus' class...
    filters = sorted(key for key in account if key.startswith("eventfilter"))
    assert filters == ["eventfilter(action(include),name(ContactStatus))",  # ...and only they get through
                       "eventfilter(action(include),name(PeerStatus))"]
    assert account["write"] == "system"  # PJSIPShowContacts' class; never command or originate


def test_failed_authentications_go_to_the_security_log(rendered: Path) -> None:
    assert re.search(r"^load => res_security_log\.so", (rendered / "modules.conf").read_text(), re.M)
    assert re.search(r"^security\.log => security$", (rendered / "logger.conf").read_text(), re.M)


def test_asterisk_id_is_the_systemname(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, asterisk_id="ast-test1")
    conf = (render_config(settings, chrooted=True) / "asterisk.conf").read_text()
    assert _section(conf, "options")["systemname"] == "ast-test1"
    generated = load_settings(state_dir=tmp_path / "b")
    conf = (render_config(generated, chrooted=True) / "asterisk.conf").read_text()
    assert _section(conf, "options")["systemname"] == generated.asterisk_id


def test_rendered_state_is_private(rendered: Path, tmp_path: Path) -> None:
    for path in tmp_path.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
