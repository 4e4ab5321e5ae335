"""`ivrpowers media ...`: the video prompt library (`video:NAME` in flows)."""

from __future__ import annotations

from pathlib import Path

import click

from ivrpowers.cli.common import emit_json, json_option, settings_from
from ivrpowers.cli.errors import CliError, Invalid, NotFound, Unavailable
from ivrpowers.media import MediaError, ToolMissing
from ivrpowers.media.library import MAX_FPS, MediaInfo, MediaLibrary, check_name, check_shape, media_root


def _library(ctx: click.Context) -> MediaLibrary:
    return MediaLibrary(media_root(settings_from(ctx)))


def _name(name: str) -> str:
    try:
        return check_name(name)
    except MediaError as exc:
        raise Invalid(str(exc)) from exc


def _size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    width, x, height = value.lower().partition("x")
    if not (x and width.isdigit() and height.isdigit()):
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 320x240")
    return int(width), int(height)


def _summary(info: MediaInfo) -> str:
    return (f"{info.name}: {', '.join(info.codecs) or 'no codec'}; {info.duration:.1f} s, {info.frames} frames, "
            f"{info.width}x{info.height} at {info.fps} fps; {info.bytes} bytes")


@click.group()
def media() -> None:
    """Video prompts: play them in a flow as video:NAME (each caller gets the file of their video codec;
    audio-only callers hear the sound)."""


@media.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The prompt's name (letters, digits, - and _): video:NAME in flows.")
@click.option("--fps", default=MAX_FPS, show_default=True, type=click.IntRange(1, MAX_FPS),
              help=f"Frames per second (at most {MAX_FPS}: Asterisk sends wrong frame times above).")
@click.option("--size", default="320x240", show_default=True, callback=_size, metavar="WxH",
              help="Picture size; the video is fitted inside, keeping its aspect ratio.")
@json_option
@click.pass_context
def import_(ctx: click.Context, file: Path, name: str, fps: int, size: tuple[int, int], as_json: bool) -> None:
    """Make a prompt from any video file ffmpeg reads (a VP8 and an H.264 variant, 8 kHz sound of the
    same length); replaces a prompt of that name."""
    _name(name)
    try:
        check_shape(fps, *size)
    except MediaError as exc:
        raise Invalid(str(exc)) from exc
    try:
        info = _library(ctx).import_file(file, name, fps=fps, width=size[0], height=size[1])
    except ToolMissing as exc:
        raise Unavailable(str(exc)) from exc
    except MediaError as exc:
        raise CliError(str(exc)) from exc
    if as_json:
        emit_json(info.as_json())
    else:
        click.echo(f"imported {_summary(info)}")


@media.command(name="list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """The prompts, by name: codecs, seconds, frames, size, bytes."""
    found = _library(ctx).list()
    if as_json:
        emit_json([info.as_json() for info in found])
        return
    click.echo(f"{'NAME':<32} {'CODECS':<9} {'SECS':>6} {'FRAMES':>6} {'SIZE':>9} {'FPS':>3} {'BYTES':>9}")
    for i in found:
        click.echo(f"{i.name:<32} {','.join(i.codecs) or '-':<9} {i.duration:>6.1f} {i.frames:>6} "
                   f"{f'{i.width}x{i.height}':>9} {i.fps:>3} {i.bytes:>9}")


@media.command()
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete a prompt (all its files)."""
    if not _library(ctx).delete(_name(name)):
        raise NotFound(f"no media named {name!r}", "see `ivrpowers media list`")
    click.echo(f"deleted {name}")
