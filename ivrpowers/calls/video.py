"""Video prompts on a live call: `video:NAME` is played as the library's file for the video codec the
caller negotiated (Asterisk streams a prompt's video as is, never transcoded, and would pick a file
by name alone, whatever the codec: so each codec's file has a name of its own)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ivrpowers.media import MediaError

if TYPE_CHECKING:
    from ivrpowers.calls.ari_call import AriCall

log = logging.getLogger("ivrpowers.calls")

SCHEME = "video"


class VideoLibrary(Protocol):
    """Where a prompt's variants are (`ivrpowers.media.library.MediaLibrary` is one)."""

    def variant(self, name: str, codec: str | None) -> Path: ...


def native_video_codec(value: str) -> str | None:
    """The channel's video codec from `CHANNEL(videonativeformat)`: `(vp8)` -> `vp8`; None for an
    audio-only channel (`(nothing)`, empty). With several, the first is the one Asterisk sends."""
    names = [n for n in value.strip().strip("()").split("|") if n and n != "nothing"]
    return names[0] if names else None


def is_video(uri: str) -> bool:
    return uri.startswith(SCHEME + ":")


def as_sound(uri: str, library: VideoLibrary, codec: str | None) -> str | None:
    """`video:NAME` as the `sound:` URI of its file for `codec` (audio-only callers: any variant,
    of which Asterisk plays only the audio); any other URI unchanged. None for a name no prompt can
    have (a template filled with `../x`?): never a path outside the library."""
    if not is_video(uri):
        return uri
    try:
        return f"sound:{library.variant(uri.removeprefix(SCHEME + ':'), codec)}"
    except MediaError as exc:
        log.warning("not played: %s", exc)
        return None


# How long a browser's first video takes to settle, its bandwidth probe sent (s): see `video_settled`.
PROBE_SETTLE = 0.3


async def video_settled(caller: AriCall, leg: AriCall) -> None:
    """Before a video caller is bridged with a browser that has just answered: wait until that
    browser's video flows and its start-up burst is over.

    Right after its first keyframe a browser sends a burst of padding-only packets (its bandwidth
    probe). Asterisk drops them but passes their sequence numbers on to the other side of a bridge
    (res_rtp_asterisk keeps the sender's gaps), so the other browser counts them lost and waits to
    have them resent, which Asterisk cannot do. With H.264 it then shows no new picture for about
    3 s; a keyframe does not help, the gap must never reach it. Media that arrives before the bridge
    goes nowhere, so bridging after the burst keeps the gap out. The caller meanwhile keeps watching
    the hold video.
    """
    if await caller.video_codec() is None or await leg.video_codec() is None:
        return
    if await leg.media_flowing("video"):
        await asyncio.sleep(PROBE_SETTLE)
