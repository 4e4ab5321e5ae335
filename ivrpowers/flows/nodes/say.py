"""`say`: a value spoken with Asterisk's stock sounds (ARI's digits:, number:, characters: URIs,
and dates and times composed from the day, month and number sounds, in English word order)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from ..expressions import to_text
from ..interpreter import Run, handles
from ..schema import SayNode

_MAX_CHARACTERS = 64
_MAX_NUMBER = 10**12


class Unsayable(ValueError):
    pass


@handles(SayNode)
async def _say(run: Run, node_id: str, node: SayNode) -> str | None:
    value = run.evaluate(node_id, node.value)
    try:
        media = say_media(node.kind, value)
    except Unsayable as exc:
        await run.record("say_skipped", node_id, {"as": node.kind, "problem": str(exc)})
        return node.next
    # A digit that barges in only cuts it short, as in `play`.
    await run.play(node_id, media, barge_in=node.barge_in, language=node.language)
    return node.next


def say_media(kind: str, value: Any) -> list[str]:
    """The media URIs that say `value` as `kind`; Unsayable saying why not."""
    if value is None:
        raise Unsayable("the value is null (unset)")
    if kind == "digits":
        text = to_text(value)
        if not re.fullmatch(r"[0-9*#]{1,64}", text):
            raise Unsayable(f"{text[:40]!r} is not digits (0-9, * and #, at most 64)")
        return [f"digits:{text}"]
    if kind == "number":
        number = _integer(value)
        return [f"number:{number}"]
    if kind == "characters":
        text = to_text(value)
        if not 0 < len(text) <= _MAX_CHARACTERS or not re.fullmatch(r"[A-Za-z0-9 .@_+-]+", text):
            raise Unsayable(f"{text[:40]!r}: characters are letters, digits and . @ _ + - (at most 64)")
        return [f"characters:{text}"]
    if kind == "date":
        return _date(value)
    if kind == "time":
        return _time(value)
    raise Unsayable(f"unknown kind {kind!r}")


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise Unsayable("a boolean is not a number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,13}", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or abs(value) >= _MAX_NUMBER:
        raise Unsayable(f"{to_text(value)[:40]!r} is not a whole number below a trillion")
    return value


def _date(value: Any) -> list[str]:
    text = to_text(value).strip()
    try:
        day = datetime.fromisoformat(text).date() if "T" in text or " " in text else date.fromisoformat(text)
    except ValueError:
        raise Unsayable(f"{text[:40]!r} is not a date (YYYY-MM-DD)") from None
    # Asterisk's day-N counts from Sunday (day-0) and mon-N from January (mon-0).
    weekday = (day.weekday() + 1) % 7
    return [f"sound:digits/day-{weekday}", f"sound:digits/mon-{day.month - 1}", f"number:{day.day}",
            f"number:{day.year}"]


def _time(value: Any) -> list[str]:
    text = to_text(value).strip()
    match = re.fullmatch(r"(?:.*[T ])?([0-9]{1,2}):([0-9]{2})(?::[0-9]{2}(?:\.[0-9]+)?)?(?:[+-Z].*)?", text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise Unsayable(f"{text[:40]!r} is not a time (HH:MM)")
    hour, minute = int(match.group(1)), int(match.group(2))
    media = [f"number:{hour % 12 or 12}"]
    if minute == 0:
        media.append("sound:digits/oclock")
    elif minute < 10:
        media += ["sound:digits/oh", f"number:{minute}"]
    else:
        media.append(f"number:{minute}")
    media.append("sound:digits/a-m" if hour < 12 else "sound:digits/p-m")
    return media
