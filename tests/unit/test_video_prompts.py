"""Video prompts in flows and calls: `video:NAME` as the file of the caller's codec, lint's warnings,
a queue's video hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ivrpowers.acd.definitions import QueueDef
from ivrpowers.calls.video import as_sound, native_video_codec
from ivrpowers.flows.loader import validate_flow
from ivrpowers.media import MediaError

FLOW = """name: v
start: a
nodes:
  a:
    type: answer
    next: b
  b:
    type: play
    media: [video:menu, video:hold, video:gone, sound:beep]
"""


class Library:
    """Prompt `menu` with both codecs, `hold` with VP8 only; anything else is not a prompt name."""

    def variant(self, name: str, codec: str | None) -> Path:
        if "/" in name or "." in name:
            raise MediaError(f"media name {name!r} is not allowed")
        return Path(f"/m/{name}_{codec if codec in ('vp8', 'h264') else 'vp8'}")


@pytest.mark.parametrize(("value", "codec"), [("(vp8)", "vp8"), ("(h264)", "h264"), ("(h264|vp8)", "h264"),
                                              ("(nothing)", None), ("", None)])
def test_the_negotiated_video_codec_is_read_from_the_channel(value: str, codec: str | None) -> None:
    assert native_video_codec(value) == codec


def test_a_video_prompt_is_played_as_the_file_of_the_callers_codec() -> None:
    library = Library()
    assert as_sound("video:menu", library, "h264") == "sound:/m/menu_h264"
    assert as_sound("video:menu", library, None) == "sound:/m/menu_vp8"  # audio only: its sound
    assert as_sound("sound:beep", library, "vp8") == "sound:beep"
    assert as_sound("video:../etc/passwd", library, "vp8") is None  # never a path outside


def test_lint_warns_of_missing_video_prompts_and_codec_variants() -> None:
    problems = validate_flow(FLOW, "v.yaml", videos={"menu": ("vp8", "h264"), "hold": ("vp8",)})
    messages = [p.message for p in problems]
    assert all(p.severity == "warning" and p.line == 9 for p in problems), problems
    assert any("video:hold has no h264 variant" in m for m in messages), messages
    assert any("video:gone, which the media library does not have" in m for m in messages), messages
    assert not any("video:menu" in m for m in messages)
    assert validate_flow(FLOW, "v.yaml") == []  # no library given: not checked


def test_a_queue_holds_video_callers_with_a_video_prompt_only() -> None:
    assert QueueDef(name="q", video_hold="video:loop").video_hold == "video:loop"
    for wrong in ("sound:loop", "video:../x", "moh:default"):
        with pytest.raises(ValidationError, match="video hold media"):
            QueueDef(name="q", video_hold=wrong)
