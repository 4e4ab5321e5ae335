"""A throwaway PostgreSQL cluster on a spare loopback port (Debian's postgresql, no system service)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ivrpowers.config import PROJECT_ROOT

from .sipp import free_tcp_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        # Tests run without `make` still get a real PostgreSQL: install Debian's package.
        subprocess.run([str(PROJECT_ROOT / "scripts" / "install-debian-deps")], check=True)
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found after installing Debian's postgresql")
    return found[-1]


class Cluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ivrpowers-pg-"))
        self.port = free_tcp_port()
        shutil.chown(self.dir, "postgres")
        self.dir.chmod(0o700)

    def _as_postgres(self, *argv: str) -> None:
        # initdb and postgres refuse to run as root.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> str:
        self._as_postgres(_bin("initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.resume()
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def pause(self) -> None:
        """Stop the server (an outage); `resume` brings it back with its data."""
        self._as_postgres(_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        self._as_postgres(
            _bin("pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
        )

    def create_database(self, name: str) -> str:
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc", f'CREATE DATABASE "{name}"'],
            check=True, stdout=subprocess.DEVNULL,
        )
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._as_postgres(_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
