"""The shipped Asterisk configuration: no secrets, loopback binds, no way to dial out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivrpowers.asterisk.conf import TEMPLATE_DIR, render_config
from ivrpowers.config import load_secrets, load_settings

ALLOWED_APPS = {"Stasis", "Hangup", "NoOp"}


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    return render_config(load_settings(state_dir=tmp_path), chrooted=True)


def test_templates_hold_no_secret() -> None:
    for template in TEMPLATE_DIR.glob("*.conf"):
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
    assert "Stasis(ivrpowers,${EXTEN})" in (rendered / "extensions.conf").read_text()
