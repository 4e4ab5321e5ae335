"""The demo's video prompts, made once with ffmpeg and imported into the media library:
`video:demo-menu`, the voice menu's words (Asterisk's own sounds) over a picture of the options, and
`video:demo-hold`, what video callers watch while they wait in the support queue. Audio-only
callers hear the same words: one flow serves phones and browsers."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from ivrpowers.media.library import MediaLibrary

DEMO_MENU, DEMO_HOLD = "demo-menu", "demo-hold"
# Each card: its lines of text (the first as a title) and the stock sounds said over it, with a
# pause after each but the last.
CARDS = {
    DEMO_MENU: (("ivrpowers demo", "1  your number read back", "2  type an account number", "3  call agent1",
                 "4  support queue (video agents)"),
                ("hello-world", "digits/1", "digits/2", "digits/3", "digits/4")),
    DEMO_HOLD: (("Support queue", "Please hold,", "an agent will be with you", "in a moment."),
                ("pls-hold-while-try", "silence/1")),
}
PAUSE = 0.6
FONT = Path("/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf")


def _text(text: str, y: int, size: int) -> str:
    # The texts are ours: no quote, colon or backslash, which drawtext would read as syntax.
    return f"drawtext=fontfile={FONT}:text='{text}':fontcolor=white:fontsize={size}:x=16:y={y}"


def _gsm_seconds(path: Path) -> float:
    return path.stat().st_size // 33 * 0.02  # GSM 06.10: 33 bytes per 20 ms frame


def make_card(lines: tuple[str, ...], words: tuple[str, ...], sounds: Path, out: Path) -> Path:
    """An mp4 of `lines` over a plain background while `words` are said: `sounds` is a directory
    of Asterisk's (`hello-world.gsm`, `digits/1.gsm`...)."""
    seconds = sum(_gsm_seconds(sounds / f"{word}.gsm") for word in words) + PAUSE * (len(words) - 1)
    inputs: list[str] = []
    for word in words:
        inputs += ["-f", "gsm", "-i", str(sounds / f"{word}.gsm")]
    silence = len(words)
    pauses = len(words) - 1
    graph = [f"[{silence}]asplit={pauses}" + "".join(f"[p{i}]" for i in range(pauses))]
    graph += [f"[p{i}]atrim=0:{PAUSE}[s{i}]" for i in range(pauses)]
    chain = "".join(f"[{i}]" + (f"[s{i}]" if i < pauses else "") for i in range(len(words)))
    graph.append(f"{chain}concat=n={len(words) + pauses}:v=0:a=1[a]")
    picture = ",".join([_text(lines[0], 14, 22),
                        *(_text(line, 62 + 30 * n, 17) for n, line in enumerate(lines[1:]))])
    # A bar filling from left to right: the picture changes every frame, so a frozen video shows.
    graph.append(f"[{silence + 1}]{picture}[bg]")
    graph.append(f"[bg][{silence + 2}]overlay=x='-W+W*t/{seconds:.2f}':y=H-h[v]")
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs,
            "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
            "-f", "lavfi", "-i", f"color=c=0x1f3a93:s=320x240:r=10:d={seconds:.2f}",
            "-f", "lavfi", "-i", f"color=c=0xf5a623:s=320x14:r=10:d={seconds:.2f}",
            "-filter_complex", ";".join(graph), "-map", "[v]", "-map", "[a]", "-shortest",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)]
    subprocess.run(argv, check=True, capture_output=True)
    return out


def install_prompts(library: MediaLibrary, sounds: Path) -> None:
    """Import the demo's prompts into `library` unless it has them already."""
    for name, (lines, words) in CARDS.items():
        if library.get(name) is not None:
            continue
        with tempfile.TemporaryDirectory(prefix="ivrpowers-demo-") as tmp:
            library.import_file(make_card(lines, words, sounds, Path(tmp) / f"{name}.mp4"), name)
