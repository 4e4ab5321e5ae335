"""Files that ship inside the package: Asterisk configuration, migrations, the demo, fail2ban.

They are found through the installed package, never through a checkout, so an install from a wheel
(`pip install .`) runs exactly like a clone. pyproject.toml's package-data lists them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(*parts: str) -> Path:
    """A file or directory inside the installed `ivrpowers` package, as a filesystem path.

    Alembic and the configuration renderer need real directories; pip installs a wheel as plain
    files (never zipped), so the package's resources are files on disk.
    """
    path = Path(str(files("ivrpowers").joinpath(*parts)))
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed ivrpowers package: reinstall it")
    return path


def asterisk_templates() -> Path:
    """The directory of Asterisk configuration templates (`*.conf` with @PLACEHOLDERS@)."""
    return package_path("asterisk", "templates")


def fail2ban_config() -> Path:
    """The fail2ban filter and jail for Asterisk's security log (`filter.conf`, `jail.conf`)."""
    return package_path("asterisk", "fail2ban")


def migrations() -> Path:
    """Alembic's script directory."""
    return package_path("store", "migrations")


def demo_flow() -> Path:
    """The commented example flow that `ivrpowers run --demo` publishes on number 100."""
    return package_path("demo", "demo.yaml")


def demo_sipp_scenario() -> Path:
    """A SIPp scenario that calls the demo and presses 1."""
    return package_path("demo", "demo-press-1.xml")
