"""`ivrpowers asterisk ...`: the project's Asterisk."""

from __future__ import annotations

import click

from ivrpowers.cli.common import settings_from


@click.group()
def asterisk() -> None:
    """Start, stop and query the project's Asterisk."""


@asterisk.command()
def build() -> None:
    """Find an asterisk on PATH or build the cached Debian sid rootfs."""
    from ivrpowers.asterisk.rootfs import find_installation

    inst = find_installation()
    click.echo(f"Asterisk {inst.version()} at {inst.rootfs or inst.binary}")


@asterisk.command()
@click.pass_context
def start(ctx: click.Context) -> None:
    """Start Asterisk in the background and wait until ARI answers."""
    from ivrpowers.asterisk import process

    try:
        status = process.start(settings_from(ctx))
    except process.AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Asterisk {status.version} running, pid {status.pid}")


@asterisk.command()
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop Asterisk."""
    from ivrpowers.asterisk import process

    click.echo("stopped" if process.stop(settings_from(ctx)) else "not running")


@asterisk.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Say whether Asterisk runs, its version and whether ARI answers (exit 1 if not running)."""
    from ivrpowers.asterisk import process

    st = process.status(settings_from(ctx))
    if not st.running:
        click.echo("not running")
        ctx.exit(1)
    ari = "ready" if st.ari_ready else "not answering"
    click.echo(f"running, pid {st.pid}, version {st.version or '?'}, ARI {ari}")


@asterisk.command(name="cli")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def cli_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Run an Asterisk CLI command, e.g. `ivrpowers asterisk cli pjsip show endpoints`."""
    from ivrpowers.asterisk import process

    try:
        click.echo(process.cli(settings_from(ctx), " ".join(command)), nl=False)
    except process.AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc


@asterisk.command()
@click.pass_context
def contacts(ctx: click.Context) -> None:
    """Registered phones (PJSIP contacts, through AMI)."""
    import asyncio

    from ivrpowers.ami import AmiClient, AmiError, Contact

    s = settings_from(ctx)

    async def fetch() -> list[Contact]:
        async with AmiClient(s.bind_address, s.ami_port, s.ami_user, s.ami_password) as ami:
            return await ami.contacts()

    try:
        found = asyncio.run(fetch())
    except (AmiError, OSError) as exc:
        raise click.ClickException(f"AMI: {exc}") from exc
    if not found:
        click.echo("no registered contacts")
    for c in found:
        expires = f"{c.expires_in}s" if c.expires_in is not None else "-"
        click.echo(f"{c.endpoint:<16} {c.status:<14} {expires:>6}  {c.uri}  {c.user_agent}")
