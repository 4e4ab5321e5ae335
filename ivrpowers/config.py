"""Settings: defaults, then `<state>/ivrpowers.toml`, then `IVRPOWERS_*` environment variables.

The state directory itself is found by `find_state_dir`, the same way from any working directory.

Secrets (ARI password, AMI secret, trunk/agent passwords) are generated on first use into
`<state>/secrets.json`; the Asterisk configuration is rendered from them, so by default the
controller's ARI and AMI credentials are exactly what Asterisk was configured with. The Asterisk's
id is generated the same way into `<state>/identity.json`.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field

APP_NAME = "ivrpowers"
# The checkout, for the tests and the bench only: the product finds its files in the installed
# package (ivrpowers.resources), which need not be a checkout at all.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# An Asterisk id prefixes every channel id that Asterisk makes (its `systemname`): keep it short and
# free of the characters that separate ids (`.`, `/`, `,`, `:`...).
ASTERISK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
# `*`, `'self'`, or space-separated origins (scheme://host[:port], `*.` allowed at the host's start).
_ORIGIN = r"[a-z][a-z0-9+.-]*://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?"
EMBED_ORIGINS = rf"^(\*|'self'|'none'|{_ORIGIN}( +{_ORIGIN})*)$"


class Settings(BaseModel):
    state_dir: Path = Field(default_factory=lambda: default_state_dir())
    state_dir_found_by: str = "the default"  # what chose state_dir (for messages): see find_state_dir
    db_url: str | None = None  # None: SQLite file in the state directory
    bind_address: str = "127.0.0.1"
    http_port: int = 8088  # Asterisk HTTP: ARI and SIP over websocket
    sip_port: int = 5060
    ami_port: int = 5038
    rtp_start: int = 10000
    rtp_end: int = 10999
    web_port: int = 8080  # the controller's own web app
    # Where browsers send their RTP (the ICE host candidate Asterisk offers them). Asterisk never
    # offers a loopback address, so this cannot be 127.x; None: this machine's own address on its
    # default route (`browser_media_address`). SIP phones and the trunk keep `bind_address`.
    media_address: str | None = None
    trunk_match: str = "127.0.0.1"  # who the inbound "PSTN trunk" is, by source IP
    ari_url: str | None = None  # None: derived from bind_address/http_port
    ari_user: str = APP_NAME
    ari_password: str | None = None  # None: the generated secret
    ami_user: str = APP_NAME
    ami_secret: str | None = None
    ari_app: str = APP_NAME
    unknown_number_media: list[str] = ["sound:invalid"]
    timezone: str = "UTC"  # IANA name: the flows' clock (business hours) when a flow sets none
    # `{{ secrets.NAME }}` in flows' http nodes: `[flow_secrets]` in the file, IVRPOWERS_FLOW_SECRET_NAME.
    flow_secrets: dict[str, str] = {}
    # Outside numbers a flow's transfer may dial: none unless both are set. `outbound_trunk` is a PJSIP
    # endpoint the operator configured; a number must fully match one of the `outbound_allow` regexes.
    outbound_trunk: str | None = None
    outbound_allow: list[str] = []
    # Who may show the /call page in a frame (CSP frame-ancestors): `*` any site, `'self'`, or origins
    # separated by spaces (`https://www.example.com https://shop.example.com`). The agent desktop and
    # the wallboard are never framed.
    embed_origins: str = Field(default="*", pattern=EMBED_ORIGINS)

    def number_allowed(self, number: str) -> bool:
        """May a flow transfer a caller to this outside number?"""
        import re

        return bool(self.outbound_trunk) and any(re.fullmatch(p, number) for p in self.outbound_allow)
    # IVRPOWERS_ASTERISK_ID (or `asterisk_id` in the file) fixes the id; unset: generated once.
    asterisk_id_override: str | None = Field(default=None, pattern=ASTERISK_ID_PATTERN)

    @property
    def sqlite_path(self) -> Path | None:
        """The embedded database's file, or None when `db_url` names another database."""
        return None if self.db_url else self.state_dir / "ivrpowers.db"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def browser_media_address(self) -> str:
        return self.media_address or own_address() or self.bind_address

    @property
    def sip_websocket(self) -> str:
        """Where browsers reach Asterisk's SIP (over Asterisk's HTTP server)."""
        return f"ws://{self.bind_address}:{self.http_port}/ws"

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

    @property
    def asterisk_id(self) -> str:
        """This Asterisk's id (its `systemname`, the prefix of its channel ids), e.g. `ast-1f2e3d4c`."""
        return self.asterisk_id_override or load_identity(self.state_dir)["asterisk_id"]


# Names in the config file and in load_settings() arguments that differ from the field's.
_ALIASES = {"asterisk_id": "asterisk_id_override"}
_PUBLIC = {field: name for name, field in _ALIASES.items()}
# Environment variable -> settings field. Every setting can come from the environment.
_ENV = {f"IVRPOWERS_{_PUBLIC.get(name, name).upper()}": name for name in Settings.model_fields
        if name not in ("state_dir_found_by", "flow_secrets")}
FLOW_SECRET_ENV = "IVRPOWERS_FLOW_SECRET_"


def _unalias(values: dict[str, object]) -> dict[str, object]:
    return {_ALIASES.get(key, key): value for key, value in values.items()}


def own_address() -> str | None:
    """This machine's address on its default route (IPv4), or None without one. A UDP socket's
    connect only picks the source address: nothing is sent."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: any routed address would do
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def user_config_file() -> Path:
    """The user's config file, which may say where the state directory is (`state_dir = "..."`)."""
    if given := os.environ.get("IVRPOWERS_USER_CONFIG"):
        return Path(given)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "ivrpowers" / "config.toml"


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "ivrpowers"


def find_state_dir(given: object = None) -> tuple[Path, str]:
    """The state directory and how it was found, the same from any working directory.

    In order: an explicit path (`--state-dir`), IVRPOWERS_STATE_DIR, `state_dir` in the user's config
    file (`~/.config/ivrpowers/config.toml`), then the default `~/.local/state/ivrpowers`
    (XDG_STATE_HOME and XDG_CONFIG_HOME move those two).
    """
    if given:
        return Path(str(given)).expanduser().absolute(), "--state-dir"
    if env := os.environ.get("IVRPOWERS_STATE_DIR"):
        return Path(env).expanduser().absolute(), "IVRPOWERS_STATE_DIR"
    config = user_config_file()
    if config.is_file():
        try:
            with config.open("rb") as fh:
                found = tomllib.load(fh).get("state_dir")
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{config}: {exc}") from exc
        if isinstance(found, str) and found:
            path = Path(found).expanduser()
            return (path if path.is_absolute() else config.parent / path).absolute(), str(config)
    return default_state_dir(), "the default"


def load_settings(**overrides: object) -> Settings:
    """Settings from the defaults, the config file, the environment, then `overrides` (which win)."""
    values: dict[str, object] = {}
    state_dir, found_by = find_state_dir(overrides.get("state_dir"))
    config_file = Path(os.environ.get("IVRPOWERS_CONFIG") or state_dir / "ivrpowers.toml")
    if config_file.exists():
        with config_file.open("rb") as fh:
            values.update(_unalias(tomllib.load(fh)))
    for env, field in _ENV.items():
        if env in os.environ:
            raw = os.environ[env]
            values[field] = json.loads(raw) if field in ("unknown_number_media", "outbound_allow") else raw
    env_secrets = {k.removeprefix(FLOW_SECRET_ENV).lower(): v for k, v in os.environ.items()
                   if k.startswith(FLOW_SECRET_ENV) and len(k) > len(FLOW_SECRET_ENV)}
    if env_secrets:
        filed = values.get("flow_secrets")
        values["flow_secrets"] = {**(filed if isinstance(filed, dict) else {}), **env_secrets}
    values.update(_unalias({k: v for k, v in overrides.items() if v is not None}))
    values["state_dir"] = state_dir
    values["state_dir_found_by"] = found_by
    return Settings.model_validate(values)


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state directory private to its owner: it holds secrets, logs and call records.

    Files already in it lose any group and other permission (a state directory from an older
    version, or files written under a permissive umask): nothing in it is anyone else's business.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    for root, dirs, files in os.walk(state_dir):
        for name in (*dirs, *files):
            make_private(Path(root) / name)
    return state_dir


def make_private(path: Path) -> None:
    """Drop group and other permissions from `path` (not following a symlink; never failing)."""
    try:
        st = path.lstat()
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
            path.chmod(stat.S_IMODE(st.st_mode) & ~0o077)
    except OSError:  # gone meanwhile, or not ours: the directory's own 0700 still guards it
        pass


# session_key signs the tokens agents get when they sign in to the /agent page.
SECRET_NAMES = ("ari_password", "ami_secret", "agent_password", "agent2_password", "webrtc_password", "api_token",
                "session_key", "webagent_password")


def load_secrets(state_dir: Path) -> dict[str, str]:
    """Read the generated secrets, creating any that are missing (0600, never in the repository)."""
    path = state_dir / "secrets.json"
    current: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in SECRET_NAMES if not current.get(name)]
    if missing:
        for name in missing:
            current[name] = secrets.token_urlsafe(18)
        ensure_state_dir(state_dir)
        _write_private(path, current)
    return current


def new_asterisk_id() -> str:
    return f"ast-{secrets.token_hex(4)}"


def load_identity(state_dir: Path) -> dict[str, str]:
    """This installation's identity (`asterisk_id`), generated the first time and kept after.

    Two processes starting at once on a new state directory agree on one id: the file is created
    exclusively, and the loser reads the winner's.
    """
    path = state_dir / "identity.json"
    if not path.exists():
        ensure_state_dir(state_dir)
        tmp = path.with_name(f".identity.{os.getpid()}.tmp")
        _write_private(tmp, {"asterisk_id": new_asterisk_id()})
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    identity: dict[str, str] = json.loads(path.read_text())
    return identity


def _write_private(path: Path, content: dict[str, str]) -> None:
    """Write `content` as JSON readable by the owner only, replacing `path` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(content, indent=2) + "\n")
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a leftover tmp file
    tmp.replace(path)
