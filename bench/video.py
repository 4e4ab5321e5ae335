"""The video IVR bench: `make bench-video`, or `python -m bench.video --calls 10 --loads 20,50 --reps 3`.

Two parts, in a private network namespace the bench makes for itself (as tests/e2e does: Asterisk
offers browsers no loopback ICE candidate, so their media needs an address that exists only there):

1. Answer to the first decoded video frame, VP8 and H.264, p50/p95 over `--calls` calls of each, from
   Debian's chromium on the /call page calling the e2e video IVR (video_browser.py).
2. CPU per concurrent call, video IVR against voice IVR (and the voice IVR called from the trunk), at
   `--loads` concurrent calls, interleaved, `--reps` times: Asterisk's and the controller's ms per
   call and the ratio video / voice, against the target of 1.5 (video_load.py, video_cpu.py). The
   callers are SIPp on plain RTP/AVP (browsers are too heavy to run 50 at once): see CPU_METHOD for
   what that measures and what it leaves out.

Results: bench-results/video.json (or --out) and a table on stdout. Needs root (the namespace,
tcpdump), SIPp, tcpdump, chromium and ffmpeg. Compare figures within one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.calls import machine_share, machine_ticks

CPU_METHOD = {
    "callers": "SIPp, one call = INVITE offering PCMA (voice) or PCMA and one video stream (video: VP8 on "
               "RTP/AVP by default) as the bench's endpoint; PCMA silence from the ACK (50 packets/s), the "
               "digit as SIP INFO at 8 s; a video caller also sends a camera: the prompt's own coded "
               "pictures at 10 fps (unless --no-caller-video); Asterisk's RTP to SIPp is not read, only "
               "counted on the wire",
    "flows": "answer; menu: video:bench-menu (7.5 s) or the sound: of its audio; the digit plays "
             "video:bench-branch (1.5 s) or its sound; hang up. ~10 s calls, `concurrency` up at once",
    "kinds": {"video": "the bench's endpoint (the dialplan's browser context), audio and video, the video flow",
              "voice": "the same endpoint, audio only, the voice flow: the pair that isolates what video costs",
              "trunk": "the voice flow called through the trunk, as a phone network's call comes in: the "
                       "controller then neither asks for a video codec nor waits for the caller's media"},
    "cpu": "utime+stime from /proc of Asterisk and of `ivrpowers run` with its children, over the point, "
           "minus each one's idle burn (the lower of 15 s with no call up before the series and after it), "
           "divided by the calls placed",
    "ratio": "video / voice (and video / trunk) within each repetition (the points ran next to each "
             "other), median over the repetitions; the target, <= 1.5, is for video / voice",
    "leaves_out": [
        "DTLS-SRTP encryption and decryption of browsers' media (a browser call's audio and video are SRTP)",
        "ICE connectivity checks and consent freshness (STUN every few seconds per stream)",
        "Opus: browsers talk Opus, so Asterisk transcodes a prompt's 8 kHz audio to Opus for them; "
        "these callers take PCMA (the same for both kinds, but a larger share of a browser voice call)",
        "RTCP feedback from browsers (NACK, PLI/FIR keyframe requests, REMB/transport-cc); "
        "SIPp sends no RTCP at all",
        "BUNDLE and rtcp-mux: each stream has its own port pair here",
        "SIP over websocket: these callers use UDP",
    ],
}  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.video", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=10, help="browser calls per codec for the first-frame figure")
    p.add_argument("--loads", default="20,50", help="concurrent calls per CPU load point (default: %(default)s)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of the interleaved video/voice series")
    p.add_argument("--seconds", type=float, default=30, help="how long calls are placed at each load point (>= 25)")
    p.add_argument("--kinds", default="video,voice,trunk",
                   help="calls compared: video and voice IVR as the bench's endpoint, the voice IVR from the trunk")
    p.add_argument("--codec", choices=("vp8", "h264"), default="vp8", help="the SIPp video callers' codec")
    p.add_argument("--no-caller-video", dest="caller_video", action="store_false",
                   help="video callers send no picture (they still offer and receive video)")
    p.add_argument("--skip-browser", action="store_true", help="leave out part 1 (first decoded frame)")
    p.add_argument("--skip-cpu", action="store_true", help="leave out part 2 (CPU per call)")
    p.add_argument("--out", type=Path, default=Path("bench-results/video.json"))
    p.add_argument("--keep", action="store_true", help="keep the work directory (captures, logs)")
    args = p.parse_args(argv)
    args.load_list = [int(x) for x in args.loads.split(",") if x]
    args.kind_list = [k for k in ("video", "voice", "trunk") if k in args.kinds.split(",")]
    if "video" not in args.kind_list or len(args.kind_list) < 2:
        p.error("--kinds: video and at least one of voice, trunk")
    if args.seconds < 25 or args.reps < 1 or args.calls < 1 or not args.load_list or min(args.load_list) < 1:
        p.error("--seconds must be >= 25, --reps, --calls and --loads >= 1")
    return args


def check_tools() -> None:
    missing = [t for t in ("/usr/bin/sipp", "/usr/bin/tcpdump", "/usr/bin/chromium") if not Path(t).exists()]
    if not shutil.which("ffmpeg"):
        missing.append("ffmpeg")
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `make deps` (scripts/install-debian-deps)")
    if os.geteuid() != 0:
        sys.exit("the video bench needs root: it makes a private network namespace and captures its lo")


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_part(args: argparse.Namespace, work: Path, media_address: str) -> dict[str, Any]:
    from bench import video_cpu
    from bench.media import write_pcap
    from bench.video_load import BRANCH, MENU, PROMPT_FPS, load_stack, prompt_facts
    from bench.video_sipp import camera_packets, write_silence

    with load_stack(work / "cpu", media_address) as stack:
        prompts = prompt_facts(stack, args.codec)
        silence = write_silence(work / "silence.alaw")
        camera = None
        if args.caller_video:
            camera = write_pcap(work / "caller-video.pcap",
                                camera_packets(stack.variant(MENU, args.codec), args.codec, PROMPT_FPS))
        # One call of each kind, not measured: cold caches, lazy imports; and a broken setup stops here.
        video_cpu.warm_up(stack, args.kind_list, silence, camera, args.codec, prompts, work / "warm-up")
        time.sleep(3)  # the warm-up calls' teardown, before the idle burn is measured
        idle_before = video_cpu.idle_rates(stack)
        runs = video_cpu.run_series(stack, args.kind_list, args.load_list, args.reps, args.seconds, silence, camera,
                                    args.codec, prompts, idle_before, work / "series")
        time.sleep(3)  # the last calls' teardown
        idle_after = video_cpu.idle_rates(stack)
        cdrs = stack.calls()
    idle = {who: min(idle_before[who], idle_after[who]) for who in idle_before}
    video_cpu.per_call(runs, idle)
    menu, branch = prompts[MENU], prompts[BRANCH]
    return {
        "method": CPU_METHOD,
        "codec": args.codec, "caller_sends_video": args.caller_video,
        "prompt_video": {p.name: {"seconds": p.seconds, "packets": p.video_packets,
                                  "kbit_s": round(p.video_bytes * 8 / p.seconds / 1000, 1),
                                  "packets_s": round(p.video_packets / p.seconds, 1)} for p in (menu, branch)},
        "idle_cpu_ms_per_s": {when: {k: round(v * 1000, 2) for k, v in rates.items()}
                              for when, rates in (("before", idle_before), ("after", idle_after), ("taken", idle))},
        "cdrs": cdrs,
        "summary": video_cpu.summarize(runs),
        "runs": runs,
    }  # fmt: skip


def first_frame_table(part: dict[str, Any]) -> str:
    lines = ["| codec | answer to first decoded frame p50 ms | p95 ms | min / max ms | calls | failed |",
             "|---|---|---|---|---|---|"]
    machine = part.get("machine", {})
    for codec, row in part["by_codec"].items():
        ms = row["answer_to_first_frame_ms"]
        failed = sum(f.startswith(f"{codec} ") for f in part["failures"])
        lines.append(f"| {codec.upper()} | {ms['p50']} | {ms['p95']} | {ms['min']} / {ms['max']} | "
                     f"{row['calls']} | {failed} |")
    lines.append(f"(machine busy {machine.get('busy_pct')} %, steal {machine.get('steal_pct')} % meanwhile)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    check_tools()
    # Before anything starts a thread: a network namespace belongs to the thread that makes it.
    from tests.e2e.netns import MEDIA_ADDRESS, NamespaceError, enter_private_namespace

    try:
        os.close(enter_private_namespace())
    except NamespaceError as e:
        sys.exit(f"bench.video: {e}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a plain SIGTERM would skip the cleanup
    work = Path(tempfile.mkdtemp(prefix="ivrpowers-bench-video-"))
    started, load_before = time.monotonic(), loadavg()
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_before": load_before},
        "options": {"calls": args.calls, "loads": args.load_list, "reps": args.reps, "seconds": args.seconds,
                    "codec": args.codec, "caller_video": args.caller_video},
    }
    try:
        if not args.skip_browser:
            from bench.video_browser import first_frames

            print("part 1: answer to the first decoded video frame (chromium, /call page)", file=sys.stderr)
            before = machine_ticks()
            report["first_frame"] = asyncio.run(first_frames(work / "browser", args.calls))
            report["first_frame"]["machine"] = machine_share(before, machine_ticks())
            report["first_frame"]["method"] = (
                "chromium (Debian) on /call, e2e-video flow (video:e2e-menu), one call at a time, VP8 and "
                "H.264 alternating; JsSIP 'confirmed' to the first frame the <video> presents "
                "(requestVideoFrameCallback), page clock; the harness's controller (-v, ARI through its proxy)")
        if not args.skip_cpu:
            print("part 2: CPU per concurrent call, video IVR against voice IVR (SIPp)", file=sys.stderr)
            report["cpu"] = cpu_part(args, work, MEDIA_ADDRESS)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["machine"]["loadavg_after"] = loadavg()
    report["total_seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if "first_frame" in report:
        print(first_frame_table(report["first_frame"]) + "\n")
    if "cpu" in report:
        from bench.video_cpu import table

        print(table(report["cpu"]["summary"]))
        cdrs = report["cpu"]["cdrs"]
        print(f"\nSIPp callers ({args.codec}, caller video {'on' if args.caller_video else 'off'}); ms per call, "
              f"medians of {args.reps} repetition(s); CDRs {cdrs}")
        if any(len({c["calls"], c["ended"], c["branch"]}) > 1 for c in cdrs.values()):
            print("WARNING: not every call has an ended CDR whose digit chose the branch", file=sys.stderr)
    print(f"load average before {load_before}, after {report['machine']['loadavg_after']}; "
          f"{report['total_seconds']:.0f} s in all; {args.out}")
    if work.exists():
        print(f"work directory kept: {work}")


if __name__ == "__main__":
    main()
