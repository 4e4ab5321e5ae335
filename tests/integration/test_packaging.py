"""`pip install .` into a fresh venv outside the checkout runs the product: migrations, the demo
flow and the Asterisk configuration come from the installed package, not from a clone.

The venv gets its dependencies from PyPI (pip's cache makes later runs quick).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from ivrpowers.config import PROJECT_ROOT

from .sipp import Dtmf, Hangup, Pause, SippCall, free_tcp_port, free_udp_port, run_call

pytestmark = pytest.mark.integration


@dataclass
class Installed:
    venv: Path
    workdir: Path  # neither the checkout nor the venv: where the commands run
    env: dict[str, str]

    def ivrpowers(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(self.venv / "bin" / "ivrpowers"), *args], cwd=self.workdir, env=self.env,
                             capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise AssertionError(f"ivrpowers {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out

    def python(self, code: str) -> str:
        return subprocess.run([str(self.venv / "bin" / "python"), "-c", code], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel-install")
    # The source tree as an sdist would hold it: only what pyproject.toml builds from.
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, src / name)
    shutil.copytree(PROJECT_ROOT / "ivrpowers", src / "ivrpowers",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          str(src)], check=True, capture_output=True, text=True, timeout=900)
    assert _warnings(pip.stdout + pip.stderr) == [], pip.stderr  # a clean install says nothing
    shutil.rmtree(src)  # nothing may be read from the source any more
    workdir = root / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVRPOWERS_", "PYTHON", "VIRTUAL_ENV"))}
    env |= {
        "IVRPOWERS_STATE_DIR": str(workdir / "state"),
        "IVRPOWERS_HTTP_PORT": str(free_tcp_port()),
        "IVRPOWERS_AMI_PORT": str(free_tcp_port()),
        "IVRPOWERS_SIP_PORT": str(free_udp_port()),
        "IVRPOWERS_WEB_PORT": str(free_tcp_port()),
        "IVRPOWERS_RTP_START": "28000",
        "IVRPOWERS_RTP_END": "28999",
    }
    yield Installed(venv, workdir, env)


def test_the_package_comes_from_the_venv_with_its_data_files(installed: Installed) -> None:
    where = installed.python(
        "import json, ivrpowers, ivrpowers.resources as r; print(json.dumps([ivrpowers.__file__, str(r.demo_flow()),"
        " str(r.migrations()), sorted(p.name for p in r.asterisk_templates().glob('*.conf')),"
        " sorted(p.name for p in r.fail2ban_config().iterdir())]))"
    )
    package, demo, migrations, templates, fail2ban = json.loads(where)
    for path in (package, demo, migrations):
        assert Path(path).is_relative_to(installed.venv), path
    assert templates == sorted(p.name for p in (PROJECT_ROOT / "ivrpowers/asterisk/templates").glob("*.conf"))
    assert fail2ban == ["filter.conf", "jail.conf"]


def test_db_upgrade_and_flow_validate_from_another_directory(installed: Installed) -> None:
    installed.ivrpowers("db", "upgrade")
    heads = ScriptDirectory.from_config(_alembic(PROJECT_ROOT / "ivrpowers" / "store" / "migrations")).get_heads()
    with sqlite3.connect(installed.workdir / "state" / "ivrpowers.db") as db:
        assert [row[0] for row in db.execute("SELECT version_num FROM alembic_version")] == heads
    demo = installed.python("from ivrpowers.resources import demo_flow; print(demo_flow())")
    assert installed.ivrpowers("flow", "validate", demo).returncode == 0


def _alembic(script_location: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return cfg


def _health(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return dict(json.load(resp))
    except urllib.error.HTTPError as exc:
        return dict(json.load(exc))
    except OSError:
        return {}


def test_run_start_asterisk_demo_takes_a_call(installed: Installed, tmp_path: Path) -> None:
    """The README's promise, from the fresh venv: Asterisk, controller and demo on 100, then a call."""
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(installed.venv / "bin" / "ivrpowers"), "run", "--start-asterisk", "--demo"],
                                cwd=installed.workdir, env=installed.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        web_port = int(installed.env["IVRPOWERS_WEB_PORT"])
        deadline = time.monotonic() + 120
        while not _health(web_port).get("ari_connected"):
            assert proc.poll() is None, f"ivrpowers run exited {proc.returncode}:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no healthy controller:\n{log.read_text()[-4000:]}"
            time.sleep(0.2)
        call = SippCall(dialed="100", caller_number="5550900", steps=[Pause(1.0), Dtmf("1"), Pause(3.0), Hangup()])
        result = run_call(call, target=("127.0.0.1", int(installed.env["IVRPOWERS_SIP_PORT"])), timeout=40)
        assert result.ok, result.describe()
        deadline = time.monotonic() + 30
        while True:
            calls = json.loads(installed.ivrpowers("cdr", "list", "--json").stdout)
            mine = [c for c in calls if c["caller"] == "5550900" and c["ended_at"]]
            if mine:
                break
            assert time.monotonic() < deadline, f"no CDR for the call: {calls}\n{log.read_text()[-4000:]}"
            time.sleep(0.2)
        assert mine[0]["flow"] == "demo" and any(e["type"] == "dtmf_received" for e in mine[0]["events"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert installed.ivrpowers("asterisk", "status", check=False).returncode == 4  # stopped by Ctrl-C too


def _warnings(pip_output: str) -> list[str]:
    # This machine's own pip configuration names an extra index directory that may not exist; pip
    # warns about that for every package. That is the machine's, not the project's.
    return [line for line in pip_output.splitlines()
            if ("warning" in line.lower() or "!!" in line) and "is ignored: it is neither" not in line]


def test_the_editable_install_make_uses_prints_no_warning(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # As the Makefile does: a current pip is also the one that shows what the build backend says.
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"],
                   check=True, capture_output=True, timeout=600)
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                          "--no-deps", "-e", str(PROJECT_ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert _warnings(out.stdout + out.stderr) == [], out.stdout + out.stderr
