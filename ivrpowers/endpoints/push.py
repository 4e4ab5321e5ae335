"""Endpoints in a running Asterisk, over ARI's dynamic configuration: no reload, no file written.

Each account is three PJSIP objects, auth, AOR and endpoint, of the same id (`fields.objects`).
Asterisk keeps them in memory (sorcery.conf), so they are gone after a restart: the CLI pushes an
account when it creates it, and the controller pushes them all each time it connects (`sync.py`).

Pushing only ever creates what is missing, never updates: Asterisk updates an object by copying it
through its fields first, and an AOR's copy takes its registered contacts along as permanent ones
(a phone would stay "registered" forever). So a push is safe to repeat, on a live Asterisk too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ivrpowers.ari import AriNotFound, ConfigTuple, Endpoint
from ivrpowers.endpoints.fields import Addresses, ConfigObject, Kind, objects
from ivrpowers.store.endpoints import EndpointRecord

CONFIG_CLASS = "res_pjsip"
TECHNOLOGY = "PJSIP"


class ConfigApi(Protocol):
    """What of ARI this needs (`ivrpowers.ari.AriRest` has it; unit tests fake it)."""

    async def get_config_object(self, config_class: str, object_type: str, id: str) -> list[ConfigTuple]: ...

    async def put_config_object(
        self, config_class: str, object_type: str, id: str, fields: Sequence[tuple[str, str]]
    ) -> list[ConfigTuple]: ...

    async def delete_config_object(self, config_class: str, object_type: str, id: str) -> None: ...

    async def list_endpoints(self, technology: str | None = None) -> list[Endpoint]: ...

    async def get_endpoint(self, technology: str, resource: str) -> Endpoint: ...


def record_objects(record: EndpointRecord, addresses: Addresses) -> list[ConfigObject]:
    kind: Kind = "webrtc" if record.kind == "webrtc" else "phone"
    return objects(record.name, kind, record.realm, record.password_digest, addresses)


async def push(ari: ConfigApi, record: EndpointRecord, addresses: Addresses) -> bool:
    """Create whichever of the account's objects Asterisk lacks; True if it lacked any.

    In order, auth and AOR before the endpoint that names them, so an endpoint that exists is whole.
    """
    created = False
    for obj in record_objects(record, addresses):
        try:
            await ari.get_config_object(CONFIG_CLASS, obj.type, obj.id)
            continue
        except AriNotFound:
            pass
        await ari.put_config_object(CONFIG_CLASS, obj.type, obj.id, obj.fields)
        created = True
    return created


async def remove(ari: ConfigApi, name: str) -> bool:
    """Delete the account's endpoint, AOR (its registrations go with it) and auth; True if Asterisk
    had any of them. An object of pjsip.conf cannot be deleted this way: `AriUnauthorized` (403)."""
    found = False
    for object_type in ("endpoint", "aor", "auth"):
        try:
            await ari.delete_config_object(CONFIG_CLASS, object_type, name)
            found = True
        except AriNotFound:
            pass
    return found


@dataclass(frozen=True)
class Registration:
    """What Asterisk says of an account now. `state` is None when Asterisk does not have it."""

    state: str | None  # online (a contact is reachable), offline, unknown
    contacts: list[str]  # the URIs phones registered from

    @property
    def registered(self) -> bool:
        return bool(self.contacts)


async def registration(ari: ConfigApi, name: str) -> Registration:
    """The account's endpoint state and registered contacts (from its AOR), as Asterisk sees them."""
    try:
        endpoint = await ari.get_endpoint(TECHNOLOGY, name)
        aor = await ari.get_config_object(CONFIG_CLASS, "aor", name)
    except AriNotFound:
        return Registration(None, [])
    return Registration(endpoint.state, [t.value for t in aor if t.attribute == "contact" and t.value])
