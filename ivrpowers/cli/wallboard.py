"""`ivrpowers wallboard`: the wallboard page's address, with a token that may only read statistics."""

from __future__ import annotations

import re
import time

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from
from ivrpowers.cli.errors import Invalid
from ivrpowers.config import Settings

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def wallboard_url(settings: Settings, name: str = "wallboard") -> tuple[str, int]:
    """The page's address with a fresh view token in its fragment (never sent to the server, nor
    logged by it), and when the token expires."""
    from ivrpowers.web.agent_auth import SignedTokens  # aiohttp's web: not for every CLI command

    token, expires = SignedTokens(settings.secrets()["session_key"].encode()).views().issue(name)
    return f"http://{settings.bind_address}:{settings.web_port}/wallboard#token={token}", expires


@click.command()
@click.option("--name", default="wallboard", show_default=True,
              help="Which screen the token is for (letters, digits, - and _).")
@json_option
@click.pass_context
def wallboard(ctx: click.Context, name: str, as_json: bool) -> None:
    """The wallboard's address, with a token that shows statistics and nothing else, valid 90 days.
    Changing session_key in secrets.json voids every such token."""
    if not _NAME.fullmatch(name):
        raise Invalid(f"{name[:70]!r} is not a screen name (lowercase letters, digits, - and _)")
    url, expires = wallboard_url(settings_from(ctx), name)
    if as_json:
        emit_json({"url": url, "name": name, "expires": expires})
        return
    click.echo(url)
    click.echo(f"(valid until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(expires))})", err=True)
