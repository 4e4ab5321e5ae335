"""Settings: defaults, then `<state>/ivrpowers.toml`, then `IVRPOWERS_*` environment variables.

Secrets (ARI password, AMI secret, trunk/agent passwords) are generated on first use into
`<state>/secrets.json`; the Asterisk configuration is rendered from them, so by default the
controller's ARI and AMI credentials are exactly what Asterisk was configured with.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field

APP_NAME = "ivrpowers"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseModel):
    state_dir: Path = Field(default_factory=lambda: Path.cwd() / "state")
    db_url: str | None = None  # None: SQLite file in the state directory
    bind_address: str = "127.0.0.1"
    http_port: int = 8088  # Asterisk HTTP: ARI and SIP over websocket
    sip_port: int = 5060
    ami_port: int = 5038
    rtp_start: int = 10000
    rtp_end: int = 10999
    web_port: int = 8080  # the controller's own web app
    trunk_match: str = "127.0.0.1"  # who the inbound "PSTN trunk" is, by source IP
    ari_url: str | None = None  # None: derived from bind_address/http_port
    ari_user: str = APP_NAME
    ari_password: str | None = None  # None: the generated secret
    ami_user: str = APP_NAME
    ami_secret: str | None = None
    ari_app: str = APP_NAME
    unknown_number_media: list[str] = ["sound:invalid"]

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite+aiosqlite:///{self.state_dir / 'ivrpowers.db'}"

    @property
    def ari_base_url(self) -> str:
        return self.ari_url or f"http://{self.bind_address}:{self.http_port}/ari"

    def secrets(self) -> dict[str, str]:
        return load_secrets(self.state_dir)

    @property
    def ari_secret(self) -> str:
        return self.ari_password or self.secrets()["ari_password"]

    @property
    def ami_password(self) -> str:
        return self.ami_secret or self.secrets()["ami_secret"]


# Environment variable -> settings field. Every setting can come from the environment.
_ENV = {f"IVRPOWERS_{name.upper()}": name for name in Settings.model_fields}


def load_settings(**overrides: object) -> Settings:
    """Settings from the defaults, the config file, the environment, then `overrides` (which win)."""
    values: dict[str, object] = {}
    state_dir = Path(overrides.get("state_dir") or os.environ.get("IVRPOWERS_STATE_DIR") or Path.cwd() / "state")
    config_file = Path(os.environ.get("IVRPOWERS_CONFIG") or state_dir / "ivrpowers.toml")
    if config_file.exists():
        with config_file.open("rb") as fh:
            values.update(tomllib.load(fh))
    for env, field in _ENV.items():
        if env in os.environ:
            raw = os.environ[env]
            values[field] = json.loads(raw) if field == "unknown_number_media" else raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["state_dir"] = state_dir
    return Settings.model_validate(values)


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state directory private to its owner: it holds secrets, logs and call records."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    return state_dir


SECRET_NAMES = ("ari_password", "ami_secret", "agent_password", "webrtc_password", "api_token")


def load_secrets(state_dir: Path) -> dict[str, str]:
    """Read the generated secrets, creating any that are missing (0600, never in the repository)."""
    path = state_dir / "secrets.json"
    current: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in SECRET_NAMES if not current.get(name)]
    if missing:
        for name in missing:
            current[name] = secrets.token_urlsafe(18)
        ensure_state_dir(state_dir)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    return current
