"""Settings precedence (defaults < state/ivrpowers.toml < IVRPOWERS_* env) and generated secrets."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from ivrpowers.config import SECRET_NAMES, ensure_state_dir, load_secrets, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("IVRPOWERS_"):
            monkeypatch.delenv(key)


def test_defaults_bind_loopback_and_use_sqlite_in_the_state_dir(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path)
    assert s.bind_address == "127.0.0.1"
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'ivrpowers.db'}"
    assert s.ari_base_url == "http://127.0.0.1:8088/ari"


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ivrpowers.toml").write_text('sip_port = 5080\nweb_port = 9000\ndb_url = "sqlite+aiosqlite:///x.db"\n')
    monkeypatch.setenv("IVRPOWERS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("IVRPOWERS_WEB_PORT", "9100")
    monkeypatch.setenv("IVRPOWERS_DB_URL", "postgresql+asyncpg://u@127.0.0.1/db")
    s = load_settings()
    assert (s.sip_port, s.web_port) == (5080, 9100)
    assert s.database_url == "postgresql+asyncpg://u@127.0.0.1/db"


def test_secrets_are_generated_once_private_and_distinct(tmp_path: Path) -> None:
    first = load_secrets(tmp_path)
    assert set(first) == set(SECRET_NAMES)
    assert len(set(first.values())) == len(SECRET_NAMES) and all(len(v) >= 20 for v in first.values())
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700  # logs and call records live here too
    assert load_secrets(tmp_path) == first
    other = load_secrets(tmp_path / "elsewhere")
    assert not set(other.values()) & set(first.values())


def test_ari_and_ami_credentials_default_to_the_generated_ones(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path)
    secrets = load_secrets(tmp_path)
    assert s.ari_secret == secrets["ari_password"] and s.ami_password == secrets["ami_secret"]


def test_explicit_arguments_beat_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVRPOWERS_STATE_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("IVRPOWERS_SIP_PORT", "5999")
    s = load_settings(state_dir=tmp_path / "given", sip_port=6000)
    assert s.state_dir == tmp_path / "given" and s.sip_port == 6000


def test_asterisk_id_is_generated_once_kept_in_the_state_dir_and_id_safe(tmp_path: Path) -> None:
    first = load_settings(state_dir=tmp_path).asterisk_id
    assert re.fullmatch(r"ast-[0-9a-f]{8}", first), first
    assert load_settings(state_dir=tmp_path).asterisk_id == first  # kept
    assert stat.S_IMODE((tmp_path / "identity.json").stat().st_mode) == 0o600
    assert load_settings(state_dir=tmp_path / "other").asterisk_id != first


def test_asterisk_id_from_the_environment_the_file_or_an_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ivrpowers.toml").write_text('asterisk_id = "from-file"\n')
    assert load_settings(state_dir=tmp_path).asterisk_id == "from-file"
    monkeypatch.setenv("IVRPOWERS_ASTERISK_ID", "ast-east-1")
    assert load_settings(state_dir=tmp_path).asterisk_id == "ast-east-1"
    assert load_settings(state_dir=tmp_path, asterisk_id="given").asterisk_id == "given"
    assert not (tmp_path / "identity.json").exists()  # nothing generated when one is given


@pytest.mark.parametrize("bad", ["", "a.b", "a/b", "a,b", "-lead", "x" * 33, "sp ace"])
def test_an_asterisk_id_that_could_not_prefix_channel_ids_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError):
        load_settings(state_dir=tmp_path, asterisk_id=bad)


def test_ensure_state_dir_makes_everything_already_there_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "asterisk" / "log").mkdir(parents=True)
    for path in (state / "ivrpowers.db", state / "asterisk" / "log" / "messages.log"):
        path.write_text("x")
        path.chmod(0o644)
    (state / "asterisk").chmod(0o755)
    (state / "link").symlink_to("/etc/hostname")
    ensure_state_dir(state)
    for path in state.rglob("*"):
        if not path.is_symlink():
            assert stat.S_IMODE(path.lstat().st_mode) & 0o077 == 0, path
    assert stat.S_IMODE(Path("/etc/hostname").stat().st_mode) & 0o044  # a symlink's target is left alone
