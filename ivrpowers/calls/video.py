"""Video prompts on a live call: `video:NAME` is played as the library's file for the video codec the
caller negotiated (Asterisk streams a prompt's video as is, never transcoded, and would pick a file
by name alone, whatever the codec: so each codec's file has a name of its own)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ivrpowers.ari import AriError
from ivrpowers.flows.call import CallerHungUp
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


# When to ask again for keyframes once the bridge's video flows (s): see `fresh_pictures`.
KEYFRAME_AGAIN = 0.5
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


async def fresh_pictures(client: KeyframeAsker, bridge_id: str, calls: Sequence[AriCall]) -> None:
    """Ask each video call in a new bridge for a keyframe once its media flows, and again a moment
    later, then leave the bridge's video mode as it was: a decoder that joins a stream mid-picture
    shows nothing until the next keyframe, and would otherwise wait for its browser to ask. Asterisk
    sends the request (RTCP FIR) as it makes a channel the bridge's video source, which a two-party
    bridge ignores otherwise."""
    try:
        # The caller first: an audio call asks nothing of the other leg.
        if not calls or await calls[0].video_codec() is None:
            return
        videos = [call for call in calls if await call.video_codec() is not None]
        await asyncio.gather(*(call.media_flowing("video") for call in videos))
        for _ in range(2):
            for call in videos:
                await client.set_video_source(bridge_id, call.channel_id)
            await asyncio.sleep(KEYFRAME_AGAIN)
        await client.clear_video_source(bridge_id)
    except (AriError, CallerHungUp) as exc:  # the bridge or a call is gone: nothing left to refresh
        log.debug("bridge %s: keyframe requests stopped: %s", bridge_id, exc)


class KeyframeAsker(Protocol):
    async def set_video_source(self, bridge_id: str, channel_id: str) -> None: ...

    async def clear_video_source(self, bridge_id: str) -> None: ...
