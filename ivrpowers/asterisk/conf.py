"""Render `asterisk-conf/` into the state directory, with the generated secrets filled in."""

from __future__ import annotations

import re
from pathlib import Path

from ivrpowers.config import PROJECT_ROOT, Settings, ensure_state_dir

TEMPLATE_DIR = PROJECT_ROOT / "asterisk-conf"
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def asterisk_state(settings: Settings) -> Path:
    return settings.state_dir.resolve() / "asterisk"


def _directories(settings: Settings, chrooted: bool) -> str:
    if chrooted:
        # Inside the rootfs the packaged paths are right; the launcher bind-mounts the state dirs there.
        return ""
    state = asterisk_state(settings)
    return "\n".join(
        [
            "[directories]",
            f"astetcdir => {state / 'etc'}",
            f"astrundir => {state / 'run'}",
            f"astlogdir => {state / 'log'}",
            f"astspooldir => {state / 'spool'}",
            f"astdbdir => {state / 'db'}",
        ]
    )


def render_config(settings: Settings, *, chrooted: bool) -> Path:
    """Write the rendered configuration to `<state>/asterisk/etc` and return that directory."""
    secrets = settings.secrets()
    values = {
        "BIND": settings.bind_address,
        "HTTP_PORT": str(settings.http_port),
        "SIP_PORT": str(settings.sip_port),
        "AMI_PORT": str(settings.ami_port),
        "WEB_PORT": str(settings.web_port),
        "RTP_START": str(settings.rtp_start),
        "RTP_END": str(settings.rtp_end),
        "TRUNK_MATCH": settings.trunk_match,
        "ARI_APP": settings.ari_app,
        "ARI_USER": settings.ari_user,
        "ARI_PASSWORD": settings.ari_secret,
        "AMI_USER": settings.ami_user,
        "AMI_SECRET": settings.ami_password,
        "AGENT_PASSWORD": secrets["agent_password"],
        "WEBRTC_PASSWORD": secrets["webrtc_password"],
        "DIRECTORIES": _directories(settings, chrooted),
    }
    ensure_state_dir(settings.state_dir)
    state = asterisk_state(settings)
    out = state / "etc"
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)  # it holds the secrets
    for template in sorted(TEMPLATE_DIR.glob("*.conf")):
        def fill(match: re.Match[str], name: str = template.name) -> str:
            key = match.group(1)
            if key not in values:
                raise KeyError(f"{name}: unknown placeholder @{key}@")
            return values[key]

        target = out / template.name
        target.write_text(_PLACEHOLDER.sub(fill, template.read_text()))
        target.chmod(0o600)
    for sub in ("run", "log", "spool", "db", "recording", "ovl"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    return out

