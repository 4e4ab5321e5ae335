"""`ivrpowers db ...`: schema migrations, and pruning what is old enough to go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from, with_db
from ivrpowers.cli.errors import Invalid
from ivrpowers.config import ensure_state_dir
from ivrpowers.store.cdr_search import parse_when
from ivrpowers.store.db import Database
from ivrpowers.store.retention import DeleteRecording, Pruned
from ivrpowers.store.retention import prune as run_prune

if TYPE_CHECKING:
    from ivrpowers.ari import AriRest
    from ivrpowers.media.call_recordings import CallRecordings


@click.group()
def db() -> None:
    """Database schema, and pruning old records."""


@db.command()
@click.option("--revision", default="head", show_default=True)
@json_option
@click.pass_context
def upgrade(ctx: click.Context, revision: str, as_json: bool) -> None:
    """Migrate the database (IVRPOWERS_DB_URL, or SQLite in the state directory) to REVISION."""
    from ivrpowers.store.migrate import upgrade as run_upgrade

    settings = settings_from(ctx)
    ensure_state_dir(settings.state_dir)
    run_upgrade(settings.database_url, revision)
    if as_json:
        emit_json({"revision": revision, "state_dir": str(settings.state_dir)})
        return
    click.echo(f"database at {revision} ({settings.state_dir})")


@db.command()
@click.option("--before", required=True, metavar="WHEN", help="What ended before this goes: a date (2026-09-01, "
              "its start in the configured time zone) or a time ago (90d); at least a day ago.")
@click.option("--recordings", "with_recordings", is_flag=True,
              help="Also the calls that have recordings, their files deleted first (else those calls are kept).")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@json_option
@click.pass_context
def prune(ctx: click.Context, before: str, with_recordings: bool, dry_run: bool, as_json: bool) -> None:
    """Delete calls that ended before WHEN with their timelines, the ACD's events and agents' state
    changes, and closed chats with their transcripts (safe while the controller runs)."""
    settings = settings_from(ctx)
    now = datetime.now(UTC)
    try:
        cutoff = parse_when(before, settings.timezone, now)
    except ValueError as exc:
        raise Invalid(f"--before: {exc}") from None
    if cutoff > now - timedelta(days=1):
        raise Invalid(f"--before {before}: at least a day ago (what ended since may still be read or written)")

    async def work(db: Database) -> Pruned:
        if not with_recordings:
            return await run_prune(db, cutoff, dry_run=dry_run)
        from ivrpowers.ari import AriRest  # aiohttp: not loaded by every CLI command
        from ivrpowers.media.call_recordings import CallRecordings, recordings_root

        # One ARI client for every recording (it connects only when a request is made).
        async with AriRest(settings.ari_base_url, settings.ari_user, settings.ari_secret, settings.ari_app) as ari:
            return await run_prune(db, cutoff, dry_run=dry_run,
                                   delete_recording=_recording_deleter(CallRecordings(recordings_root(settings)), ari))

    pruned = with_db(settings, work)
    if as_json:
        emit_json({"before": cutoff.isoformat(), "dry_run": dry_run, **pruned.to_dict()})
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb}, ended before {cutoff.isoformat()}: {pruned.calls} calls ({pruned.call_events} timeline "
               f"events), {pruned.acd_events} ACD events, {pruned.agent_events} agent state changes, "
               f"{pruned.chats} chats ({pruned.chat_messages} messages), {len(pruned.recordings)} recordings")
    if pruned.kept_for_recordings:
        why = ("their recordings could not all be deleted" if with_recordings
               else "they have recordings: add --recordings to delete them too")
        click.echo(f"kept {pruned.kept_for_recordings} calls: {why}", err=True)


def _recording_deleter(local: CallRecordings, ari: AriRest) -> DeleteRecording:
    """Deletes a recording's file: a call's video recording here, the others in Asterisk's store (over ARI)."""
    from ivrpowers.ari import AriError, AriNotFound

    async def delete(name: str) -> bool:
        if (path := local.path(name)) is not None:
            path.unlink(missing_ok=True)
            return True
        try:
            await ari.delete_stored_recording(name)
        except AriNotFound:
            return True  # gone already
        except (AriError, OSError):
            return False
        return True

    return delete
