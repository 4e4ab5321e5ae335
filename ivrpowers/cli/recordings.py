"""`ivrpowers recording ...`: messages and other recordings made by flows' record nodes."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import Invalid, NotFound
from ivrpowers.media.call_recordings import VIDEO_NAME, CallRecordings, recordings_root
from ivrpowers.store.cdrs import MAX_LIMIT, AmbiguousCall, CdrRepository, NoSuchCall, PrefixTooShort
from ivrpowers.store.db import Database


@click.group()
def recording() -> None:
    """Recordings made by calls (voicemail), linked to their CDRs."""


@recording.command(name="list")
@click.option("--call", "call_ref", metavar="CALL_ID", help="Only this call's (its id, or the start of it).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIMIT))
@json_option
@click.pass_context
def list_(ctx: click.Context, call_ref: str | None, limit: int, as_json: bool) -> None:
    """Recordings, newest first: name, call, caller, seconds, bytes."""

    async def work(db: Database) -> list[dict[str, Any]]:
        repo = CdrRepository(db)
        call_id = None
        if call_ref is not None:
            try:
                call_id = (await repo.find(call_ref)).id
            except (PrefixTooShort, AmbiguousCall) as exc:
                raise Invalid(str(exc)) from exc
            except NoSuchCall as exc:
                raise NotFound(str(exc), "see `ivrpowers cdr list`") from exc
        return await repo.recordings(call_id, limit)

    found = with_db(settings_from(ctx), work)
    if as_json:
        emit_json(found)
        return
    click.echo(f"{'NAME':<60} {'AT (UTC)':<19} {'CALLER':<14} {'SECS':>5} {'BYTES':>9}")
    for r in found:
        click.echo(f"{r['name']:<60} {r['at'][:19].replace('T', ' '):<19} {r['caller'] or '-':<14} "
                   f"{r['duration'] or 0:>5.0f} {r['size'] or 0:>9}")


@recording.command()
@click.argument("name")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Where to write it (a WAV, or an MP4 for a video recording); - for stdout.")
@click.pass_context
def get(ctx: click.Context, name: str, output: str) -> None:
    """Fetch a recording's file: a call's video recording (NAME ending -video.mp4, an MP4 of both
    pictures and the conversation's sound) from this controller, the others (WAV) from Asterisk."""
    from ivrpowers.ari import AriNotFound, AriRest

    settings = settings_from(ctx)
    # A call's video recording (`<call id>-video.mp4`) is the controller's; the rest are Asterisk's.
    local = CallRecordings(recordings_root(settings)).path(name)

    async def fetch() -> bytes:
        if local is not None:
            return await asyncio.to_thread(local.read_bytes)
        if VIDEO_NAME.match(name):  # ours by its name, but not here
            raise NotFound(f"this controller has no video recording {name!r}", "see `ivrpowers recording list`")
        async with AriRest(settings.ari_base_url, settings.ari_user, settings.ari_secret, settings.ari_app) as ari:
            try:
                return await ari.stored_recording_file(name)
            except AriNotFound as exc:
                raise NotFound(f"Asterisk has no recording {name!r}", "see `ivrpowers recording list`") from exc

    data = asyncio.run(fetch())
    if output == "-":
        sys.stdout.buffer.write(data)
    else:
        with open(output, "wb") as fh:
            fh.write(data)
        click.echo(f"{output}: {len(data)} bytes", err=True)
