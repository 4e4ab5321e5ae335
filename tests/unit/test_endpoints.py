"""Endpoints created at run time, the pure parts: their field sets (one source with pjsip.conf's
templates), names, passwords and digests, and what a push and a sync pass do with ARI's
answers (a fake of its dynamic configuration, behaving as Asterisk's does: see test_endpoints in
tests/integration for the real one)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ivrpowers.ari import (
    AriBadRequest,
    AriConnectionError,
    AriNotFound,
    AriUnauthorized,
    ConfigTuple,
    Endpoint,
)
from ivrpowers.asterisk.conf import render_config
from ivrpowers.config import load_settings
from ivrpowers.endpoints import sync as sync_module
from ivrpowers.endpoints.accounts import (
    InvalidName,
    ReservedName,
    check_free,
    check_name,
    new_password,
    password_digest,
    static_names,
)
from ivrpowers.endpoints.fields import AOR, AUTH, PHONE, REALM, TEMPLATES, WEBRTC, Addresses, objects
from ivrpowers.endpoints.push import push, registration, remove
from ivrpowers.endpoints.sync import EndpointSync, sync
from ivrpowers.store.endpoints import EndpointRecord

from .waiting import until

LOCAL = Addresses("127.0.0.1", "10.111.0.1")

# --- field sets --------------------------------------------------------------------------------------


def _sections(conf: str) -> dict[str, list[tuple[str, str]]]:
    """pjsip.conf's sections by header (`agent-phone](!` for a template), options in order."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in conf.splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.match(r"\[([^\]]+)\](\(!\))?", line):
            current = found.setdefault(m.group(1), [])
        elif "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            current.append((key, value))
    return found


def test_pjsip_conf_templates_are_rendered_from_the_field_sets(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, bind_address="127.0.0.9", media_address="10.9.9.9")
    sections = _sections((render_config(settings, chrooted=True) / "pjsip.conf").read_text())
    for template in TEMPLATES:
        assert sections[template.name] == [("type", template.type),
                                           *template.fields(Addresses("127.0.0.9", "10.9.9.9"))], template.name
    assert ("media_address", "127.0.0.9") in sections["agent-phone"]
    # Browsers' RTP: on the media address, since Asterisk never offers them a loopback candidate.
    assert ("media_address", "10.9.9.9") in sections["webrtc-user"]
    assert ("bind_rtp_to_media_address", "yes") in sections["webrtc-user"]
    # The demo's accounts still come from them.
    assert "[agent1](agent-phone)" in (tmp_path / "asterisk" / "etc" / "pjsip.conf").read_text()


def test_a_phone_is_its_template_plus_its_own_auth_aor_and_caller_id() -> None:
    auth, aor, endpoint = objects("ana", "phone", REALM, "MD5:" + "0" * 32, LOCAL)
    assert [(o.type, o.id) for o in (auth, aor, endpoint)] == [("auth", "ana"), ("aor", "ana"), ("endpoint", "ana")]
    assert auth.fields == [("auth_type", "digest"), ("username", "ana"), ("realm", REALM),
                           ("password_digest", "MD5:" + "0" * 32)]
    assert not [f for f in auth.fields if f[0] == "password"]
    assert aor.fields == AOR.fields(LOCAL)
    assert endpoint.fields == [*PHONE.fields(LOCAL), ("auth", "ana"), ("aors", "ana"),
                               ("callerid", '"ana" <ana>')]
    assert ("context", "from-agents") in endpoint.fields and ("trust_id_inbound", "no") in endpoint.fields


def test_a_browser_user_is_the_webrtc_template_on_the_websocket_transport() -> None:
    endpoint = objects("bob", "webrtc", REALM, "MD5:" + "1" * 32, LOCAL)[2]
    assert endpoint.fields[: len(WEBRTC.options)] == WEBRTC.fields(LOCAL)
    assert {("context", "from-webrtc"), ("transport", "transport-ws"), ("webrtc", "yes")} <= set(endpoint.fields)


def test_every_context_an_endpoint_can_have_leads_to_the_ari_app(tmp_path: Path) -> None:
    extensions = (render_config(load_settings(state_dir=tmp_path), chrooted=True) / "extensions.conf").read_text()
    for template in (PHONE, WEBRTC):
        context = dict(template.fields(Addresses("x", "y")))["context"]
        body = extensions.split(f"[{context}]", 1)[1].split("\n[", 1)[0]
        assert "Stasis(ivrpowers,inbound," in body, context
    assert dict(AUTH.fields(Addresses("x", "y"))) == {"auth_type": "userpass"}  # the demo's accounts only


def test_sorcery_conf_lets_pjsip_objects_be_created_in_memory_after_the_file(tmp_path: Path) -> None:
    conf = (render_config(load_settings(state_dir=tmp_path), chrooted=True) / "sorcery.conf").read_text()
    mappings = [tuple(p.strip() for p in line.split("=", 1)) for line in conf.splitlines()
                if "=" in line and not line.lstrip().startswith(";")]
    for kind in ("endpoint", "auth", "aor"):
        assert [m[1] for m in mappings if m[0] == kind] == [f"config,pjsip.conf,criteria=type={kind}", "memory"]
    assert "contact" not in {m[0] for m in mappings}  # registrations stay in astdb


# --- names and passwords -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ana", "agent-7", "desk_12", "0", "a" * 32])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Ana", "-ana", "_ana", "ana.b", "ana b", "ana;@x", "a/b", "a" * 33, "añа"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidName, match="lower-case letters"):
        check_name(name)


def test_names_pjsip_conf_uses_are_taken() -> None:
    taken = static_names(["provider", None])
    assert {"trunk", "agent1", "webrtc1", "transport-udp", "transport-ws", "global", "trunk-identify",
            "agent-phone", "agent-auth", "agent-aor", "webrtc-user", "provider"} <= taken
    for name in ("trunk", "agent1", "provider"):
        with pytest.raises(ReservedName):
            check_free(name, taken)
    assert check_free("ana", taken) == "ana"


def test_the_digest_is_rfc_2617s_ha1() -> None:
    # RFC 2617 section 3.5's example: HA1 of Mufasa:testrealm@host.com:Circle Of Life.
    assert password_digest("Mufasa", "testrealm@host.com", "Circle Of Life") == "MD5:939e7578ed9e3c518a452acee763bce9"


def test_passwords_are_random_and_url_safe() -> None:
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{24}", p) for p in passwords)


# --- pushing and syncing, against a fake of ARI's dynamic configuration -------------------------------


class FakeConfig:
    """ARI's dynamic configuration of res_pjsip, as Asterisk's behaves with sorcery.conf's mappings:
    objects of pjsip.conf (`static`) can be read but neither updated nor deleted (403)."""

    def __init__(self, static: Sequence[str] = ("trunk", "agent1", "webrtc1")) -> None:
        self.objects: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.static = set(static)
        self.puts: list[tuple[str, str]] = []
        self.deletes: list[tuple[str, str]] = []
        self.refuse: set[str] = set()  # ids whose fields Asterisk refuses (400)
        self.down = False
        self.contacts: dict[str, list[str]] = {}
        for name in static:
            for kind in ("endpoint", "auth", "aor"):
                self.objects[(kind, name)] = [("static", "yes")]

    def _check(self, method: str, path: str) -> None:
        if self.down:
            raise AriConnectionError(method, path, "refused")

    async def get_config_object(self, config_class: str, object_type: str, id: str) -> list[ConfigTuple]:
        self._check("GET", id)
        if (object_type, id) not in self.objects:
            raise AriNotFound(404, "GET", id, f"Object with id '{id}' not found")
        fields = self.objects[(object_type, id)] + [("contact", c) for c in self.contacts.get(id, [])]
        return [ConfigTuple(attribute=k, value=v) for k, v in fields]

    async def put_config_object(self, config_class: str, object_type: str, id: str,
                                fields: Sequence[tuple[str, str]]) -> list[ConfigTuple]:
        self._check("PUT", id)
        if id in self.refuse:
            raise AriBadRequest(400, "PUT", id, f"Creation of object '{id}' failed field value validation")
        if id in self.static:
            raise AriUnauthorized(403, "PUT", id, "Cannot update sorcery objects")
        self.puts.append((object_type, id))
        self.objects[(object_type, id)] = list(fields)
        return []

    async def delete_config_object(self, config_class: str, object_type: str, id: str) -> None:
        self._check("DELETE", id)
        if (object_type, id) not in self.objects:
            raise AriNotFound(404, "DELETE", id, "not found")
        if id in self.static:
            raise AriUnauthorized(403, "DELETE", id, f"Could not delete object with id '{id}'")
        self.deletes.append((object_type, id))
        del self.objects[(object_type, id)]

    async def list_endpoints(self, technology: str | None = None) -> list[Endpoint]:
        self._check("GET", "/endpoints")
        return [self._endpoint(id) for kind, id in self.objects if kind == "endpoint"]

    async def get_endpoint(self, technology: str, resource: str) -> Endpoint:
        self._check("GET", resource)
        if ("endpoint", resource) not in self.objects:
            raise AriNotFound(404, "GET", resource, "Endpoint not found")
        return self._endpoint(resource)

    def _endpoint(self, name: str) -> Endpoint:
        # Online while registered: as if every phone answered Asterisk's qualify.
        return Endpoint(technology="PJSIP", resource=name, state="online" if self.contacts.get(name) else "offline")


def record(name: str, kind: str = "phone") -> EndpointRecord:
    return EndpointRecord(name=name, kind=kind, realm=REALM, password_digest=password_digest(name, REALM, "pw"))


async def test_push_creates_auth_then_aor_then_endpoint_and_never_updates() -> None:
    ari = FakeConfig()
    assert await push(ari, record("ana"), LOCAL)
    assert ari.puts == [("auth", "ana"), ("aor", "ana"), ("endpoint", "ana")]
    assert not await push(ari, record("ana"), LOCAL)  # again: all there, nothing sent
    del ari.objects[("endpoint", "ana")]
    ari.contacts["ana"] = ["sip:ana@127.0.0.1:5062"]
    assert await push(ari, record("ana"), LOCAL)
    # Only the missing endpoint: the AOR with its registration is not copied over (see push.py).
    assert ari.puts[3:] == [("endpoint", "ana")]


async def test_registration_reads_the_state_and_the_aors_contacts() -> None:
    ari = FakeConfig()
    await push(ari, record("ana"), LOCAL)
    reg = await registration(ari, "ana")
    assert (reg.state, reg.contacts, reg.registered) == ("offline", [], False)
    ari.contacts["ana"] = ["sip:ana@127.0.0.1:5062"]
    reg = await registration(ari, "ana")
    assert (reg.state, reg.contacts, reg.registered) == ("online", ["sip:ana@127.0.0.1:5062"], True)
    assert (await registration(ari, "nobody")).state is None


async def test_remove_deletes_endpoint_aor_and_auth_and_leaves_pjsip_conf_alone() -> None:
    ari = FakeConfig()
    await push(ari, record("ana"), LOCAL)
    assert await remove(ari, "ana")
    assert ari.deletes == [("endpoint", "ana"), ("aor", "ana"), ("auth", "ana")]
    assert not await remove(ari, "ana")
    with pytest.raises(AriUnauthorized):
        await remove(ari, "agent1")


async def test_a_sync_pass_creates_what_asterisk_lacks_and_removes_what_the_database_dropped() -> None:
    ari = FakeConfig()
    await push(ari, record("kept"), LOCAL)
    await push(ari, record("dropped"), LOCAL)
    ari.puts.clear()
    ari.refuse.add("bad")
    records = [record("kept"), record("new"), record("web", "webrtc"), record("bad")]

    async def load() -> list[EndpointRecord]:
        return records

    result = await sync(ari, load, LOCAL, static_names())
    assert sorted(result.pushed) == ["new", "web"] and result.removed == ["dropped"] and result.failed == ["bad"]
    assert ("endpoint", "kept") not in ari.puts  # there already: left as it is
    assert dict(ari.objects[("endpoint", "web")])["context"] == "from-webrtc"
    assert {id for _, id in ari.deletes} == {"dropped"}  # never pjsip.conf's own
    ari.down = True
    with pytest.raises(AriConnectionError):
        await sync(ari, load, LOCAL, static_names())


async def test_the_database_is_read_after_asterisk_is_listed() -> None:
    # An account the CLI stores (then pushes) while a pass runs is never taken for one to remove.
    ari = FakeConfig()
    records: list[EndpointRecord] = []

    async def load() -> list[EndpointRecord]:
        # Meanwhile the CLI created "late": stored, then pushed.
        records.append(record("late"))
        await push(ari, record("late"), LOCAL)
        return records

    result = await sync(ari, load, LOCAL, static_names())
    assert result.removed == [] and ("endpoint", "late") in ari.objects


class StubClient(FakeConfig):
    """What `EndpointSync` uses of an `AriClient`: its resync."""

    def __init__(self) -> None:
        super().__init__()
        self.resync: list[Any] = []

    def on_resync(self, handler: Any) -> None:
        self.resync.append(handler)

    async def connect(self) -> None:
        for handler in self.resync:
            result = handler([], False)
            if asyncio.iscoroutine(result):
                await result


async def test_the_controller_syncs_after_each_connect_and_retries_until_the_database_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.exc import OperationalError

    monkeypatch.setattr(sync_module, "RETRY_MIN", 0.01)
    client = StubClient()
    down = OperationalError("SELECT", {}, Exception("down"))
    answers: list[Exception | list[EndpointRecord]] = [down, [record("ana")]]

    async def load() -> list[EndpointRecord]:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    syncer = EndpointSync(client, load, LOCAL)  # type: ignore[arg-type]
    syncer.install()
    await client.connect()
    await until(lambda: syncer.passes)
    assert syncer.passes == 1 and syncer.problem is None and ("endpoint", "ana") in client.objects
    await client.connect()  # a reconnect: another pass
    await until(lambda: syncer.passes == 2)
    assert syncer.passes == 2
    await syncer.close()
