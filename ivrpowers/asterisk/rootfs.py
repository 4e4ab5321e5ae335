"""Where the Asterisk binary comes from.

Debian bookworm ships no Asterisk and sid's modules need a newer libc than the host has, so unless an
`asterisk` binary is already on PATH we build a Debian sid root filesystem holding Debian's Asterisk
packages once, cache it outside the clone (every clone reuses it), and run Asterisk chrooted into it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ivrpowers.asterisk")

PACKAGES = "asterisk,asterisk-core-sounds-en-gsm,asterisk-moh-opsound-gsm"


class RootfsError(RuntimeError):
    """The Asterisk rootfs could not be built; the message is one line."""


def cache_dir() -> Path:
    base = os.environ.get("IVRPOWERS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ivrpowers"
    )
    return Path(base)


@dataclass(frozen=True)
class Installation:
    """An Asterisk we can run: a host binary, or a chroot rootfs holding one."""

    binary: Path  # the path as seen by the running Asterisk (inside the rootfs when chrooted)
    rootfs: Path | None = None

    @property
    def chrooted(self) -> bool:
        return self.rootfs is not None

    def version(self) -> str:
        if self.rootfs is not None:
            out = subprocess.run(
                ["chroot", str(self.rootfs), "dpkg-query", "-W", "-f", "${Version}", "asterisk"],
                capture_output=True, text=True, check=False,
            )
            return out.stdout.strip() or "unknown"
        out = subprocess.run([str(self.binary), "-V"], capture_output=True, text=True, check=False)
        return out.stdout.strip() or "unknown"


def find_installation(*, build: bool = True) -> Installation:
    """A host `asterisk` on PATH wins; otherwise the cached sid rootfs, built on first use."""
    host = os.environ.get("IVRPOWERS_ASTERISK_BINARY") or shutil.which("asterisk")
    if host and not os.environ.get("IVRPOWERS_FORCE_ROOTFS"):
        return Installation(binary=Path(host))
    rootfs = cache_dir() / "asterisk-sid-rootfs"
    if not (rootfs / "usr/sbin/asterisk").exists():
        if not build:
            raise RootfsError(f"no asterisk on PATH and no rootfs at {rootfs}: run `ivrpowers asterisk build`")
        build_rootfs(rootfs)
    return Installation(binary=Path("/usr/sbin/asterisk"), rootfs=rootfs)


def _host_mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split(":", 1)[1].split()[0]
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and len(parts) > 1:
                return parts[1]
    return "http://deb.debian.org/debian"


def build_rootfs(rootfs: Path) -> None:
    """Build the sid rootfs with mmdebstrap; atomic, and safe against two clones building at once."""
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    with open(rootfs.parent / ".rootfs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (rootfs / "usr/sbin/asterisk").exists():
            return
        if not shutil.which("mmdebstrap"):
            raise RootfsError("mmdebstrap is missing: run `make deps` (apt-get install mmdebstrap)")
        tmp = rootfs.with_name(rootfs.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("building the Asterisk rootfs (Debian sid) in %s, about a minute", rootfs)
        # On a terminal mmdebstrap shows its progress; piped, it stays quiet unless it fails.
        interactive = sys.stderr.isatty()
        built = subprocess.run(
            [
                "mmdebstrap", "--variant=essential", f"--include={PACKAGES}",
                *([] if interactive else ["--quiet"]),
                "--aptopt=Acquire::Check-Valid-Until \"false\"",  # the mirror is a frozen snapshot
                "--aptopt=Acquire::Retries \"3\"",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "sid", str(tmp), _host_mirror(),
            ],
            check=False, stdout=None if interactive else subprocess.PIPE,
            stderr=None if interactive else subprocess.PIPE, text=True,
        )
        if built.returncode != 0:
            said = [line for line in (built.stderr or "").splitlines() if line.strip()]
            why = next((line for line in reversed(said) if line.startswith("E:")), said[-1] if said else "")
            raise RootfsError(f"building the Asterisk rootfs failed (mmdebstrap exit {built.returncode})"
                              + (f": {why.strip()}" if why else ""))
        # Debian's package lacks the recording spool: without it ARI recording answers 500.
        for sub in ("var/spool/asterisk/recording", "run/asterisk"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        tmp.rename(rootfs)
