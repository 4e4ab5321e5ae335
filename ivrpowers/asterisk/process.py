"""Start, stop and query the project's Asterisk.

A host `asterisk` binary runs directly with the rendered configuration. The cached Debian sid rootfs
runs in private mount and PID namespaces, chrooted into an overlay whose upper layer is a tmpfs, so
the rootfs stays pristine and every start is clean. Only the host's network namespace is shared,
and every listener binds the configured loopback address.
"""

from __future__ import annotations

import base64
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivrpowers.asterisk.conf import CHROOT_ASTDB_DIR, asterisk_state, render_config
from ivrpowers.asterisk.rootfs import find_installation
from ivrpowers.config import Settings
from ivrpowers.media.library import media_root

log = logging.getLogger("ivrpowers.asterisk")

# The overlay keeps the rootfs read-only in effect: Asterisk's writes land in a tmpfs that vanishes
# with the mount namespace. What Asterisk keeps at run time and must outlive a restart is bound from
# the state directory instead: its configuration, logs, spool (voicemail, call files) and recordings,
# and its database (astdb: phones' registrations, device states), which asterisk.conf's astdbdir
# puts in a directory of its own (CHROOT_ASTDB_DIR) because /var/lib/asterisk also holds the sounds.
# The media library (`ivrpowers media import`) appears at the same absolute path inside as outside,
# so a prompt's `sound:` path is the same for a chrooted Asterisk and a host one.
_CHROOT_SCRIPT = r"""
mount -t tmpfs tmpfs "$STATE/ovl"
mkdir "$STATE/ovl/upper" "$STATE/ovl/work" "$STATE/ovl/merged"
M=$STATE/ovl/merged
mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$STATE/ovl/upper,workdir=$STATE/ovl/work" "$M"
mkdir -p "$M/run/asterisk" "$M/var/spool/asterisk" "$M/var/log/asterisk" "$M@ASTDB_DIR@"
mount --bind "$STATE/etc" "$M/etc/asterisk"
mount --bind "$STATE/run" "$M/run/asterisk"
mount --bind "$STATE/log" "$M/var/log/asterisk"
mount --bind "$STATE/spool" "$M/var/spool/asterisk"
mount --bind "$STATE/db" "$M@ASTDB_DIR@"
mkdir -p "$M/var/spool/asterisk/recording"
mount --bind "$STATE/recording" "$M/var/spool/asterisk/recording"
mkdir -p "$M$MEDIA"
mount --bind "$MEDIA" "$M$MEDIA"
mount -t proc proc "$M/proc"
echo "nameserver 127.0.0.1" > "$M/etc/resolv.conf"
exec chroot "$M" /usr/sbin/asterisk -f -n -C /etc/asterisk/asterisk.conf
""".replace("@ASTDB_DIR@", CHROOT_ASTDB_DIR)


class AsteriskError(RuntimeError):
    """Asterisk could not do what was asked; the message is one line."""


class AsteriskNotRunning(AsteriskError):
    pass


@dataclass
class Status:
    running: bool
    pid: int | None
    version: str | None = None
    ari_ready: bool = False


def _pid_file(settings: Settings) -> Path:
    return asterisk_state(settings) / "launcher.pid"


def _write_pid(settings: Settings, pid: int) -> None:
    fd = os.open(_pid_file(settings), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{pid}\n")


def _read_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pid_file(settings).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _die_with_parent() -> None:
    # Asterisk started for `ivrpowers run` or a test session must not outlive it, even on SIGKILL.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _check_ports_free(settings: Settings) -> None:
    checks = [
        (socket.SOCK_STREAM, settings.http_port, "HTTP/ARI"),
        (socket.SOCK_STREAM, settings.ami_port, "AMI"),
        (socket.SOCK_DGRAM, settings.sip_port, "SIP"),
    ]
    for kind, port, what in checks:
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((settings.bind_address, port))
            except OSError as exc:
                raise AsteriskError(
                    f"{what} port {settings.bind_address}:{port} is in use ({exc.strerror}); "
                    "another Asterisk may be running: `ivrpowers asterisk stop`, or set another port"
                ) from exc


def _ari_info(settings: Settings, timeout: float = 1.0) -> dict[str, Any] | None:
    token = base64.b64encode(f"{settings.ari_user}:{settings.ari_secret}".encode()).decode()
    req = urllib.request.Request(
        f"{settings.ari_base_url}/asterisk/info", headers={"Authorization": f"Basic {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            info: dict[str, Any] = json.load(resp)
            return info
    except (urllib.error.URLError, OSError, ValueError):
        return None


def start(settings: Settings, *, attached: bool = False, timeout: float = 30.0) -> Status:
    """Start Asterisk unless this state directory's one is running; return once ARI answers.

    `attached`: the Asterisk dies with the calling process (used by `ivrpowers run` and tests).
    """
    if _read_pid(settings) is not None:
        if _ari_info(settings):
            return status(settings)
        stop(settings)
    inst = find_installation()
    log.info("Asterisk %s (%s)", inst.version(), f"rootfs {inst.rootfs}" if inst.chrooted else inst.binary)
    _check_ports_free(settings)
    etc = render_config(settings, chrooted=inst.chrooted)
    state = asterisk_state(settings)
    if inst.chrooted:
        argv = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
                "sh", "-euc", _CHROOT_SCRIPT]
        env = {**os.environ, "STATE": str(state), "ROOT": str(inst.rootfs), "MEDIA": str(media_root(settings))}
    else:
        argv = [str(inst.binary), "-f", "-n", "-C", str(etc / "asterisk.conf")]
        env = dict(os.environ)
    console = os.open(state / "log" / "console.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    # umask: Asterisk's logs, spool and database are private to their owner like the rest of the state.
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=_die_with_parent if attached else None, umask=0o077,
    )
    os.close(console)
    _write_pid(settings, proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            console_log = state / "log" / "console.log"
            lines = [line for line in console_log.read_text(errors="replace").splitlines() if line.strip()]
            last = next((line for line in reversed(lines) if "ERROR" in line), lines[-1] if lines else "")
            raise AsteriskError(f"Asterisk exited with status {proc.returncode}: {last.strip()[:300]} "
                                f"(the whole story: {console_log})")
        if info := _ari_info(settings):
            version = info.get("system", {}).get("version", "?")
            log.info("Asterisk %s ready: ARI on %s (pid %d)", version, settings.ari_base_url, proc.pid)
            return Status(running=True, pid=proc.pid, version=version, ari_ready=True)
        time.sleep(0.1)
    stop(settings)
    raise AsteriskError(f"Asterisk did not answer on {settings.ari_base_url} within {timeout:.0f}s")


def _asterisk_pid(launcher: int) -> int:
    """The host PID of Asterisk itself: the launcher's child when chrooted, else the launcher."""
    try:
        children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    except FileNotFoundError:
        return launcher
    return int(children[0]) if children else launcher


def cli(settings: Settings, command: str, timeout: float = 10.0) -> str:
    """Run an Asterisk CLI command through the remote console and return its output."""
    pid = _read_pid(settings)
    if pid is None:
        raise AsteriskNotRunning("Asterisk is not running (`ivrpowers asterisk start`)")
    inst = find_installation(build=False)
    if inst.chrooted:
        argv = ["nsenter", "-t", str(_asterisk_pid(pid)), "-m", "-r", "-w",
                str(inst.binary), "-C", "/etc/asterisk/asterisk.conf", "-rx", command]
    else:
        argv = [str(inst.binary), "-C", str(asterisk_state(settings) / "etc" / "asterisk.conf"), "-rx", command]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise AsteriskError(f"`{command}` failed: {out.stderr.strip() or out.stdout.strip()}")
    # asterisk -rx exits 0 whatever the command did: its refusals are recognised by their first line.
    first = next((line.strip() for line in out.stdout.splitlines() if line.strip()), "")
    if first.startswith(("No such command", "Usage: ")):
        raise AsteriskError(f"Asterisk refused `{command}`: {first}")
    return out.stdout


def stop(settings: Settings, timeout: float = 10.0) -> bool:
    """Stop this state directory's Asterisk; True if one was running."""
    pid = _read_pid(settings)
    if pid is None:
        _pid_file(settings).unlink(missing_ok=True)
        return False
    try:
        cli(settings, "core stop now", timeout=5)
    except (AsteriskError, subprocess.TimeoutExpired, OSError) as exc:
        log.warning("graceful stop failed (%s); terminating", exc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _read_pid(settings) is not None:
        _reap(pid)
        time.sleep(0.1)
    if _read_pid(settings) is not None:
        os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    _pid_file(settings).unlink(missing_ok=True)
    log.info("Asterisk stopped")
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(settings: Settings) -> Status:
    pid = _read_pid(settings)
    if pid is None:
        return Status(running=False, pid=None)
    info = _ari_info(settings)
    version = info.get("system", {}).get("version") if info else None
    return Status(running=True, pid=pid, version=version, ari_ready=info is not None)

