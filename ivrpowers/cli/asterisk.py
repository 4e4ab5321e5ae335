"""`ivrpowers asterisk ...`: the project's Asterisk."""

from __future__ import annotations

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from


@click.group()
def asterisk() -> None:
    """Start, stop and query the project's Asterisk."""


@asterisk.command()
@json_option
def build(as_json: bool) -> None:
    """Find an asterisk on PATH or build the cached Debian sid rootfs."""
    from ivrpowers.asterisk.rootfs import find_installation

    inst = find_installation()
    where = str(inst.rootfs or inst.binary)
    if as_json:
        emit_json({"version": inst.version(), "path": where, "chrooted": inst.chrooted})
        return
    click.echo(f"Asterisk {inst.version()} at {where}")


@asterisk.command()
@json_option
@click.pass_context
def start(ctx: click.Context, as_json: bool) -> None:
    """Start Asterisk in the background and wait until ARI answers."""
    from ivrpowers.asterisk import process

    status = process.start(settings_from(ctx))
    if as_json:
        emit_json({"running": True, "pid": status.pid, "version": status.version, "ari_ready": status.ari_ready})
        return
    click.echo(f"Asterisk {status.version} running, pid {status.pid}")


@asterisk.command()
@json_option
@click.pass_context
def stop(ctx: click.Context, as_json: bool) -> None:
    """Stop Asterisk."""
    from ivrpowers.asterisk import process

    was_running = process.stop(settings_from(ctx))
    if as_json:
        emit_json({"was_running": was_running})
        return
    click.echo("stopped" if was_running else "not running")


@asterisk.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Say whether Asterisk runs, its version and whether ARI answers (exit 4 if not running)."""
    from ivrpowers.asterisk import process
    from ivrpowers.cli.errors import UNAVAILABLE

    st = process.status(settings_from(ctx))
    if as_json:
        emit_json({"running": st.running, "pid": st.pid, "version": st.version, "ari_ready": st.ari_ready})
    elif not st.running:
        click.echo("not running")
    else:
        ari = "ready" if st.ari_ready else "not answering"
        click.echo(f"running, pid {st.pid}, version {st.version or '?'}, ARI {ari}")
    if not st.running:
        ctx.exit(UNAVAILABLE)


@asterisk.command(name="cli")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def cli_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Run an Asterisk CLI command, e.g. `ivrpowers asterisk cli pjsip show endpoints` (exit 1 if refused)."""
    from ivrpowers.asterisk import process

    click.echo(process.cli(settings_from(ctx), " ".join(command)), nl=False)


@asterisk.command()
@json_option
@click.pass_context
def contacts(ctx: click.Context, as_json: bool) -> None:
    """Registered phones: endpoint, status, seconds until the registration expires, address, user agent."""
    import asyncio

    from ivrpowers.ami import AmiClient, Contact

    s = settings_from(ctx)

    async def fetch() -> list[Contact]:
        async with AmiClient(s.bind_address, s.ami_port, s.ami_user, s.ami_password) as ami:
            return await ami.contacts()

    found = asyncio.run(fetch())
    if as_json:
        emit_json([{"endpoint": c.endpoint, "status": c.status, "expires_in": c.expires_in, "uri": c.uri,
                    "user_agent": c.user_agent} for c in found])
        return
    if not found:
        click.echo("no registered phones")
        return
    click.echo(f"{'ENDPOINT':<16} {'STATUS':<14} {'EXPIRES':>7}  {'ADDRESS':<40} USER AGENT")
    for c in found:
        expires = f"{c.expires_in}s" if c.expires_in is not None else "-"
        click.echo(f"{c.endpoint:<16} {c.status:<14} {expires:>7}  {c.uri:<40} {c.user_agent}")
