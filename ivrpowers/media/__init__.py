"""Video prompts and recordings in Asterisk's video file formats (`.vp8`, `.h264`): the prompt library
(`library`), the file records (`records`), RTP packetizing both ways (`vp8`, `h264`) and conversions
(`convert`). Pure Python around ffmpeg; Asterisk is not needed to make or read the files."""

from __future__ import annotations

__all__ = ["MediaError", "ToolMissing"]


class MediaError(Exception):
    """A media file or an import that cannot be: the message is one line, for the user."""


class ToolMissing(MediaError):
    """ffmpeg or ffprobe is not installed."""
