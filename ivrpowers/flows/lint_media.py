"""What lint checks of a flow's media against what exists: sound names against the Asterisk in use,
`video:` prompts against the media library (each with a file per codec)."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from .findings import Finding
from .schema import BaseNode
from .templates import has_template

# File extensions of the formats Asterisk plays (`core show file formats`), lower case.
SOUND_EXTENSIONS = frozenset({
    "gsm", "ulaw", "ul", "mu", "alaw", "al", "pcm", "wav", "wav16", "g722", "g719", "g723", "g726-16",
    "g726-24", "g726-32", "g726-40", "g729", "ilbc", "siren7", "siren14", "sln", "raw", "sln12", "sln16",
    "sln24", "sln32", "sln44", "sln48", "sln96", "sln192", "vox", "ogg", "opus", "mp3", "au", "spx",
})

# The video codecs browsers negotiate that Asterisk can stream from a file; each `video:` prompt
# needs a file per codec (`ivrpowers media import` makes them all).
VIDEO_CODECS = ("vp8", "h264")
Videos = Mapping[str, Collection[str]]  # video prompt name -> the codecs it has


def missing_sounds(nodes: Mapping[str, BaseNode], sounds: Collection[str]) -> Iterator[Finding]:
    available = sounds if isinstance(sounds, set | frozenset) else set(sounds)
    for node_id, node in nodes.items():
        for loc, uri in node.media_items():
            scheme, _, name = uri.partition(":")
            if scheme == "sound" and not has_template(uri) and name not in available:
                yield Finding(("nodes", node_id, *loc), "warning",
                              f"node {node_id!r} plays sound:{name}, which this Asterisk does not have")


def missing_videos(nodes: Mapping[str, BaseNode], videos: Videos) -> Iterator[Finding]:
    for node_id, node in nodes.items():
        for loc, uri in node.media_items():
            scheme, _, name = uri.partition(":")
            if scheme != "video" or has_template(uri):
                continue
            if name not in videos:
                yield Finding(("nodes", node_id, *loc), "warning", f"node {node_id!r} plays video:{name}, which the "
                              "media library does not have (ivrpowers media import FILE --name NAME)")
            elif missing := [c for c in VIDEO_CODECS if c not in videos[name]]:
                yield Finding(("nodes", node_id, *loc), "warning",
                              f"video:{name} has no {' or '.join(missing)} variant: callers whose browser "
                              f"negotiates {' or '.join(missing)} see no picture (import it again)")


def sound_inventory(root: Path) -> set[str]:
    """The sound names under an Asterisk sounds directory, as `sound:NAME` names them: without
    extension, below a language directory (`en/digits/1.gsm` -> `digits/1`). Asterisk also finds
    a sound outside the language directories (`custom/intro.wav` -> `custom/intro`); which top
    directory is a language it cannot tell, so each file is listed both ways."""
    names: set[str] = set()
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for file in files:
            stem, dot, extension = file.rpartition(".")
            if not dot or not stem or file.startswith(".") or extension.lower() not in SOUND_EXTENSIONS:
                continue
            parts = Path(directory, stem).relative_to(root).parts
            names.add("/".join(parts))
            if len(parts) > 1:
                names.add("/".join(parts[1:]))
    return names
