"""Render the packaged Asterisk templates into the state directory, with the generated secrets filled in."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ivrpowers.config import Settings, ensure_state_dir
from ivrpowers.endpoints.fields import Addresses, render_templates
from ivrpowers.resources import asterisk_templates

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def asterisk_state(settings: Settings) -> Path:
    return settings.state_dir.resolve() / "asterisk"


# Where a chrooted Asterisk keeps astdb: a mount point of its own for <state>/asterisk/db.
CHROOT_ASTDB_DIR = "/var/lib/asterisk-db"


def _directories(settings: Settings, chrooted: bool) -> str:
    if chrooted:
        # Inside the rootfs the packaged paths are right (the launcher bind-mounts the state dirs
        # there), but for astdb's, whose packaged directory also holds the sounds.
        return f"[directories]\nastdbdir => {CHROOT_ASTDB_DIR}"
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
        "ASTERISK_ID": settings.asterisk_id,
        "DIRECTORIES": _directories(settings, chrooted),
        "ENDPOINT_TEMPLATES": render_templates(Addresses.of(settings)),
    }
    state = asterisk_state(settings)
    out = state / "etc"
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)  # it holds the secrets
    for template in sorted(asterisk_templates().glob("*.conf")):
        def fill(match: re.Match[str], name: str = template.name) -> str:
            key = match.group(1)
            if key not in values:
                raise KeyError(f"{name}: unknown placeholder @{key}@")
            return values[key]

        target = out / template.name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_PLACEHOLDER.sub(fill, template.read_text()))
        target.chmod(0o600)  # an older rendering may have left it readable
    for sub in ("run", "log", "spool", "db", "recording", "ovl"):
        (state / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    ensure_state_dir(settings.state_dir)  # and whatever an earlier, more permissive run left
    return out

