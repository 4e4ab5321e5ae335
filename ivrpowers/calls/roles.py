"""Why a channel is in the Stasis app: the role and parameters in its Stasis arguments.

The dialplan sends callers in as `Stasis(app,inbound,dialed=${EXTEN},source=trunk)`; channels the
controller originates carry their own role (`leg,interaction=<call id>`...). The first argument is
the role, the others `key=value`. Channels that entered with the walking skeleton's arguments
(`Stasis(app,<dialed>)`) are still understood as inbound calls, so an upgrade adopts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ivrpowers.ari import Channel

INBOUND = "inbound"  # a caller: from the trunk, a phone or a browser; runs the flow routed to the number
LEG = "leg"  # a channel the controller originated for an interaction (transfer target, agent offer...)
# A supervisor's phone or browser, or the snoop channel it listens through (`calls.supervision`).
SUPERVISOR = "supervisor"
ROLES = frozenset({INBOUND, LEG, SUPERVISOR})


@dataclass(frozen=True)
class StasisArgs:
    role: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def dialed(self) -> str:
        return self.params.get("dialed", "")

    @property
    def source(self) -> str | None:
        return self.params.get("source")

    @property
    def interaction(self) -> str | None:
        return self.params.get("interaction")

    def encode(self) -> list[str]:
        """As ARI's `appArgs` (joined with commas) for a channel the controller originates."""
        return [self.role, *(f"{key}={value}" for key, value in self.params.items())]


def parse_stasis_args(args: Sequence[str]) -> StasisArgs:
    if not args:
        return StasisArgs(INBOUND)
    first, rest = args[0].strip(), args[1:]
    if "=" not in first and first not in ROLES and not rest:
        return StasisArgs(INBOUND, {"dialed": first})  # the walking skeleton's Stasis(app, dialed)
    params: dict[str, str] = {}
    for arg in rest:
        key, sep, value = arg.partition("=")
        if sep and key.strip():
            params[key.strip()] = value.strip()
    return StasisArgs(first, params)


def stasis_args_of(channel: Channel) -> list[str]:
    """The Stasis() arguments of a channel found by listing (no StasisStart to read them from)."""
    data = channel.dialplan.app_data if channel.dialplan else ""
    return data.split(",")[1:] if data else []
