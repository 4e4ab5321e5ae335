"""Who is who when several controllers and several Asterisk servers share one database.

An Asterisk is known by its `systemname` (generated at setup, `Settings.asterisk_id`); Asterisk prefixes
its channel ids with it, and calls are keyed by (asterisk id, channel id). A controller gets a fresh
id per process: a restarted controller is a new owner, and the old one is known dead once it
stopped cleanly or its heartbeat went stale.
"""

from __future__ import annotations

import os
import secrets
import socket
import uuid

_NAMESPACE = uuid.UUID("6f1c0d3e-5b7a-4f43-9a52-3f0e7c1d2b84")


def call_id_for(asterisk_id: str, channel_id: str) -> str:
    """The call id of the interaction that a channel started.

    Derived, not random: the controller that adopts a call after its owner died computes the same
    id, so the owner's writes that reach the database late merge into the same record.
    """
    return str(uuid.uuid5(_NAMESPACE, f"{asterisk_id}\x00{channel_id}"))


def new_controller_id() -> str:
    host = socket.gethostname().split(".")[0][:24] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"
