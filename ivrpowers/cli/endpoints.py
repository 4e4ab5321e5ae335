"""`ivrpowers endpoint ...`: SIP phones and browser users, created and deleted without an Asterisk reload.

The database is the record; Asterisk gets an account at once over ARI when it answers, and from the
controller each time it connects otherwise (`ivrpowers.endpoints.sync`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import CliError, Invalid, NotFound, one_line
from ivrpowers.config import Settings
from ivrpowers.endpoints.accounts import (
    InvalidName,
    ReservedName,
    check_free,
    check_name,
    new_password,
    password_digest,
    static_names,
)
from ivrpowers.endpoints.fields import REALM, Addresses
from ivrpowers.store.db import Database
from ivrpowers.store.endpoints import EndpointExists, EndpointRecord, EndpointRepository

if TYPE_CHECKING:  # imported when used: `ivrpowers --help` does not pay for the ARI client
    from ivrpowers.ari import AriRest
    from ivrpowers.endpoints.push import Registration

# Accounts asked about at once by `endpoint list`.
_CONCURRENCY = 16


@click.group()
def endpoint() -> None:
    """SIP phones and browser users, created at run time (no Asterisk reload)."""


def _ari(settings: Settings) -> AriRest:
    from ivrpowers.ari import AriRest

    return AriRest(settings.ari_base_url, settings.ari_user, settings.ari_secret, settings.ari_app,
                   request_timeout=5.0)


def _name(name: str) -> str:
    try:
        return check_name(name)
    except InvalidName as exc:
        raise Invalid(str(exc)) from exc


def _server(settings: Settings, kind: str) -> str:
    if kind == "webrtc":
        return settings.sip_websocket
    return f"sip:{settings.bind_address}:{settings.sip_port}"


def _warn(exc: Exception, then: str) -> None:
    """Asterisk could not be asked, or refused: what that means for the command, on stderr."""
    from ivrpowers.ari import AriConnectionError

    what = "does not answer" if isinstance(exc, AriConnectionError) else "refused"
    click.echo(f"warning: Asterisk {what} ({one_line(str(exc))}): {then}", err=True)


@endpoint.command()
@click.argument("name")
@click.option("--webrtc", is_flag=True, help="A browser user (SIP over websocket, WebRTC) instead of a SIP phone.")
@json_option
@click.pass_context
def create(ctx: click.Context, name: str, webrtc: bool, as_json: bool) -> None:
    """Create NAME, a SIP phone (or browser user) with a generated password, shown this once only.

    NAME: lower-case letters, digits, - and _ (at most 32); the SIP user name and the caller id of its calls.
    """
    from ivrpowers.ari import AriConnectionError, AriError
    from ivrpowers.endpoints.push import push, remove

    settings = settings_from(ctx)
    try:
        check_free(_name(name), static_names([settings.outbound_trunk]))
    except ReservedName as exc:
        raise CliError(str(exc), "choose another name") from exc
    kind = "webrtc" if webrtc else "phone"
    password = new_password()

    async def work(db: Database) -> tuple[EndpointRecord, bool]:
        repo = EndpointRepository(db)
        try:
            record = await repo.add(name, kind, REALM, password_digest(name, REALM, password))
        except EndpointExists:
            raise CliError(f"there is already an endpoint named {name!r}",
                           "see `ivrpowers endpoint list`; delete it first to make it anew") from None
        async with _ari(settings) as ari:
            try:
                await push(ari, record, Addresses.of(settings))
            except AriConnectionError as exc:
                _warn(exc, f"{name} is stored, and the controller gives it to Asterisk when it next connects")
                return record, False
            except AriError as exc:  # Asterisk answers and will not: keep nothing
                await repo.delete(name)
                try:
                    await remove(ari, name)
                except AriError:
                    pass
                raise CliError(f"Asterisk refused endpoint {name!r}: {exc.message}",
                               "is Asterisk running with this version's configuration? restart it: "
                               "`ivrpowers asterisk stop`, `ivrpowers asterisk start`") from exc
        return record, True

    record, pushed = with_db(settings, work)
    server = _server(settings, kind)
    if as_json:
        emit_json({"name": name, "kind": kind, "created": record.created_at.isoformat(), "username": name,
                   "password": password, "realm": REALM, "server": server, "pushed": pushed})
        return
    what = "browser user" if webrtc else "SIP phone"
    click.echo(f"{name}: {what} created; user name {name}, password {password}")
    click.echo(f"  server {server}, realm {REALM}. The password is shown this once: only its digest is kept.")


@endpoint.command(name="list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Endpoints created here, with their state in Asterisk: online (a registered phone answers), offline."""
    from ivrpowers.ari import AriError
    from ivrpowers.endpoints.push import registration

    settings = settings_from(ctx)

    async def work(db: Database) -> tuple[list[EndpointRecord], dict[str, Registration] | None]:
        records = await EndpointRepository(db).all()
        limit = asyncio.Semaphore(_CONCURRENCY)

        async def ask(ari: AriRest, name: str) -> tuple[str, Registration]:
            async with limit:
                return name, await registration(ari, name)

        async with _ari(settings) as ari:
            try:
                return records, dict(await asyncio.gather(*(ask(ari, r.name) for r in records)))
            except AriError as exc:
                _warn(exc, "states unknown")
                return records, None

    records, found = with_db(settings, work)
    if as_json:
        emit_json([_listed(r, found) for r in records])
        return
    click.echo(f"{'NAME':<24} {'KIND':<7} {'CREATED (UTC)':<19}  {'STATE':<16} CONTACTS")
    for r in records:
        reg = found.get(r.name) if found is not None else None
        state = "?" if reg is None else reg.state or "not in Asterisk"
        click.echo(f"{r.name:<24} {r.kind:<7} {r.created_at.isoformat()[:19].replace('T', ' '):<19}  "
                   f"{state:<16} {' '.join(reg.contacts) if reg and reg.contacts else '-'}")


def _listed(record: EndpointRecord, found: dict[str, Registration] | None) -> dict[str, object]:
    """`endpoint list --json`: Asterisk's view is null throughout when it could not be asked."""
    reg = found.get(record.name) if found is not None else None
    return {"name": record.name, "kind": record.kind, "created": record.created_at.isoformat(),
            "in_asterisk": None if reg is None else reg.state is not None,
            "state": reg.state if reg else None, "registered": reg.registered if reg else None,
            "contacts": reg.contacts if reg else None}


@endpoint.command()
@click.argument("name")
@json_option
@click.pass_context
def delete(ctx: click.Context, name: str, as_json: bool) -> None:
    """Delete NAME: from the database, and from Asterisk at once (its registration goes with it)."""
    from ivrpowers.ari import AriError
    from ivrpowers.endpoints.push import remove

    settings = settings_from(ctx)
    _name(name)

    async def work(db: Database) -> tuple[str, bool | None]:
        repo = EndpointRepository(db)
        record = await repo.get(name)
        if record is None or not await repo.delete(name):
            raise NotFound(f"no endpoint named {name!r}", "see `ivrpowers endpoint list`")
        async with _ari(settings) as ari:
            try:
                return record.kind, await remove(ari, name)
            except AriError as exc:
                _warn(exc, f"the controller removes {name} from it when it next connects")
                return record.kind, None

    kind, removed = with_db(settings, work)
    if as_json:
        emit_json({"name": name, "kind": kind, "removed_from_asterisk": removed})
        return
    where = " and from Asterisk" if removed else ""
    click.echo(f"{name} deleted ({kind}): removed from the database{where}")
