"""Settings precedence (defaults < state/ivrpowers.toml < IVRPOWERS_* env) and generated secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ivrpowers.config import SECRET_NAMES, load_secrets, load_settings


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
