"""The bench's own Asterisk and the three IVRs it serves, all on loopback.

- A, native dialplan: added at run time with the Asterisk CLI (the shipped dialplan only leads to Stasis).
- B, the minimal raw ARI app (`bench/raw_ari.py`) in its own process, under its own ARI app name.
- C, ivrpowers itself: a real `ivrpowers run` with SQLite in the bench's state directory, running
  `bench/flow.yaml` (published, routed), CDRs and timeline written.
Each IVR answers its own number; the sounds are the bench's (`media.py`), in Asterisk's recording
directory so that the product's flow can name them (`recording:`) without touching the rootfs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.load import free_udp_port
from bench.media import write_sounds
from bench.procs import die_with_parent
from ivrpowers.asterisk import process
from ivrpowers.asterisk.conf import asterisk_state
from ivrpowers.asterisk.rootfs import find_installation
from ivrpowers.config import Settings, load_settings

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
NUMBERS = {"A": "8101", "B": "8102", "C": "8103"}
RAW_APP = "bench-raw"
RTP_START, RTP_END = 28000, 29999  # clear of the product's default range and of the integration tests'


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of all its descendants, the living and the reaped: an app's whole cost
    (ivrpowers applies its CDR batches in a child process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    total = cpu_seconds(pid) + reaped
    for child in _descendants(pid):
        try:
            total += cpu_seconds(child)
        except FileNotFoundError:  # gone between the listing and the read
            pass
    return total


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
        for child in children:
            out += [child, *_descendants(child)]
    return out


def _asterisk_pid(launcher: int) -> int:
    """Asterisk itself: the launcher, or (chrooted) its descendant named asterisk."""
    for pid in [launcher, *_descendants(launcher)]:
        if Path(f"/proc/{pid}/comm").read_text().strip() == "asterisk":
            return pid
    raise RuntimeError(f"no asterisk process under pid {launcher}")


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Bench:
    """Everything the bench started; `close()` stops it all."""

    state: Path
    settings: Settings
    env: dict[str, str]
    asterisk_pid: int
    raw_app: subprocess.Popen[bytes] | None = None
    controller: subprocess.Popen[bytes] | None = None

    @property
    def sip_target(self) -> tuple[str, int]:
        return (self.settings.bind_address, self.settings.sip_port)

    def app_pid(self, target: str) -> int | None:
        proc = {"B": self.raw_app, "C": self.controller}.get(target)
        return proc.pid if proc is not None else None

    def cli(self, command: str) -> str:
        return process.cli(self.settings, command)

    def ari_get(self, path: str) -> object:
        token = base64.b64encode(f"{self.settings.ari_user}:{self.settings.ari_secret}".encode()).decode()
        req = urllib.request.Request(self.settings.ari_base_url + path, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    def wait_app(self, name: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
            try:
                apps = self.ari_get("/applications")
            except (urllib.error.URLError, OSError):
                apps = []
            if isinstance(apps, list) and any(a.get("name") == name for a in apps):
                return
            time.sleep(0.1)
        raise RuntimeError(f"ARI app {name} did not connect within {timeout:.0f}s:\n{log.read_text()[-3000:]}")

    def close(self) -> dict[str, int] | None:
        """Stop everything; the CDR count the controller left (None if it could not be read)."""
        cdrs = None
        for proc in (self.controller, self.raw_app):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.controller is not None:
            cdrs = count_cdrs(self.state / "ivrpowers.db")
        process.stop(self.settings)
        return cdrs


def count_cdrs(db: Path) -> dict[str, int] | None:
    try:
        with sqlite3.connect(db) as conn:
            total, ended = conn.execute("SELECT count(*), count(ended_at) FROM calls").fetchone()
            events = conn.execute("SELECT count(*) FROM call_events").fetchone()[0]
    except sqlite3.Error:
        return None
    return {"calls": int(total), "ended": int(ended), "timeline_events": int(events)}


def start(state: Path) -> Bench:
    """Start the bench's Asterisk (its own ports and state directory) with the three IVRs."""
    env = {
        "IVRPOWERS_STATE_DIR": str(state),
        "IVRPOWERS_BIND_ADDRESS": "127.0.0.1",
        "IVRPOWERS_TRUNK_MATCH": "127.0.0.1",
        "IVRPOWERS_HTTP_PORT": str(_free_tcp_port()),
        "IVRPOWERS_AMI_PORT": str(_free_tcp_port()),
        "IVRPOWERS_SIP_PORT": str(free_udp_port()),
        "IVRPOWERS_WEB_PORT": str(_free_tcp_port()),
        "IVRPOWERS_RTP_START": str(RTP_START),
        "IVRPOWERS_RTP_END": str(RTP_END),
    }
    settings = load_settings(**{k.removeprefix("IVRPOWERS_").lower(): v for k, v in env.items()})
    status = process.start(settings, attached=True)
    if status.pid is None:
        raise RuntimeError("Asterisk did not start")
    bench = Bench(state, settings, env, _asterisk_pid(status.pid))
    try:
        sounds = _install_sounds(settings)
        _add_native_ivr(bench, sounds)
        _start_raw_app(bench)
        _start_controller(bench)
    except BaseException:
        bench.close()
        raise
    return bench


def _install_sounds(settings: Settings) -> str:
    """Write the sounds into Asterisk's recording directory; return that directory as Asterisk sees it."""
    state = asterisk_state(settings)
    if find_installation(build=False).chrooted:
        # Bind-mounted there by the launcher (see ivrpowers/asterisk/process.py).
        write_sounds(state / "recording")
        return "/var/spool/asterisk/recording"
    write_sounds(state / "spool" / "recording")
    return str(state / "spool" / "recording")


def _trunk_context(bench: Bench) -> str:
    found = re.search(r"^\s*context\s*:\s*(\S+)", bench.cli("pjsip show endpoint trunk"), re.M)
    if not found:
        raise RuntimeError("could not read the trunk endpoint's context")
    return found.group(1)


def _add_native_ivr(bench: Bench, sounds: str) -> None:
    # The product's Asterisk loads no dialplan applications beyond Stasis: Playback is the bench's own.
    if "app_playback.so" not in bench.cli("module show like app_playback"):
        bench.cli("module load app_playback.so")
    trunk = _trunk_context(bench)
    lines = [
        (trunk, f"{NUMBERS['A']},1,Goto(bench-native,s,1)"),
        ("bench-native", "s,1,Answer()"),
        ("bench-native", f"s,2,Background({sounds}/bench-prompt)"),
        ("bench-native", "s,3,WaitExten(5)"),
        ("bench-native", "s,4,Hangup()"),
        ("bench-native", f"_[0-9*#],1,Playback({sounds}/bench-marker)"),
        ("bench-native", "_[0-9*#],2,Hangup()"),
        (trunk, f"{NUMBERS['B']},1,Stasis({RAW_APP})"),
        (trunk, f"{NUMBERS['B']},2,Hangup()"),
    ]
    for context, extension in lines:
        bench.cli(f"dialplan add extension {extension} into {context} replace")
    shown = bench.cli(f"dialplan show {NUMBERS['A']}@{trunk}")
    if "bench-native" not in shown:
        raise RuntimeError(f"the native IVR was not added:\n{shown}")


def _start_raw_app(bench: Bench) -> None:
    s = bench.settings
    log = bench.state / "raw_ari.log"
    argv = [
        sys.executable,
        "-m",
        "bench.raw_ari",
        "--url",
        s.ari_base_url,
        "--user",
        s.ari_user,
        "--app",
        RAW_APP,
        "--prompt",
        "recording:bench-prompt",
        "--marker",
        "recording:bench-marker",
    ]
    env = {**os.environ, "BENCH_ARI_PASSWORD": s.ari_secret, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as fh:
        bench.raw_app = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
    bench.wait_app(RAW_APP, bench.raw_app, log)


def _start_controller(bench: Bench) -> None:
    env = {**os.environ, **bench.env, "PYTHONUNBUFFERED": "1"}
    env.pop("IVRPOWERS_DB_URL", None)  # SQLite in the bench's state directory

    def ivrpowers(*args: str) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "ivrpowers", *args], env=env, capture_output=True, text=True, timeout=120
        )
        if out.returncode != 0:
            raise RuntimeError(f"ivrpowers {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")

    ivrpowers("db", "upgrade")
    ivrpowers("flow", "import", str(BENCH_DIR / "flow.yaml"), "--publish")
    ivrpowers("route", "set", NUMBERS["C"], "bench")
    log = bench.state / "controller.log"
    with log.open("wb") as fh:
        bench.controller = subprocess.Popen(
            [sys.executable, "-m", "ivrpowers", "run"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    bench.wait_app(bench.settings.ari_app, bench.controller, log)
