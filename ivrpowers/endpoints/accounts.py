"""Names and passwords of the endpoints created at run time.

A name is the SIP user name, the PJSIP object id (ARI URL segment, astdb key prefix) and the account's
caller id: a plain slug. A password is generated, shown once, and never stored: Asterisk and the
database keep only its digest, MD5(user:realm:password), which is what SIP digest authentication
checks (RFC 2617's HA1; Asterisk 22's `password_digest = MD5:<hex>`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from ivrpowers.endpoints.fields import TEMPLATES
from ivrpowers.resources import asterisk_templates

MAX_NAME = 32
NAME = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_NAME - 1}}}$")


class InvalidName(ValueError):
    """Not a name an endpoint can have (a usage error)."""


class ReservedName(ValueError):
    """A name pjsip.conf already uses (the trunk, the demo's accounts, a transport, a template)."""


def check_name(name: str) -> str:
    """`name` if it is a valid endpoint name, else InvalidName saying what is allowed."""
    if not NAME.match(name):
        raise InvalidName(f"{name!r} is not a valid endpoint name: use lower-case letters, digits, - and _, "
                          f"starting with a letter or digit, at most {MAX_NAME}")
    return name


def static_names(extra: Iterable[str | None] = ()) -> frozenset[str]:
    """Every name pjsip.conf gives a section (trunk, agent1, webrtc1, transports...), its templates,
    and `extra` (the configured outbound trunk): an endpoint created at run time takes none of them."""
    sections = re.findall(r"^\[([^\]]+)\]", (asterisk_templates() / "pjsip.conf").read_text(), re.M)
    return frozenset([*sections, *(t.name for t in TEMPLATES), *(e for e in extra if e)])


def check_free(name: str, reserved: frozenset[str]) -> str:
    if name in reserved:
        raise ReservedName(f"{name!r} is already an endpoint or section of pjsip.conf")
    return name


def new_password() -> str:
    """24 URL-safe characters (144 random bits): what a phone's settings take without escaping."""
    return secrets.token_urlsafe(18)


def password_digest(user: str, realm: str, password: str) -> str:
    """`MD5:` and the hex MD5 of user:realm:password, as Asterisk's `password_digest` takes it."""
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()
    return f"MD5:{ha1}"


# The accounts pjsip.conf gives the demo, whose generated passwords secrets.json keeps in plain.
STATIC_PASSWORDS = {"agent1": "agent_password", "webrtc1": "webrtc_password"}


def password_matches(name: str, password: str, *, digest: str | None, realm: str,
                     secrets: dict[str, str]) -> bool:
    """Whether `password` is the account's: against its stored digest (accounts made at run time) or,
    for the demo's pjsip.conf accounts, the generated secret. Constant time either way."""
    if digest is not None:
        return hmac.compare_digest(password_digest(name, realm, password).encode(), digest.encode())
    secret = secrets.get(STATIC_PASSWORDS.get(name, ""), "")
    return bool(secret) and hmac.compare_digest(password.encode(), secret.encode())
