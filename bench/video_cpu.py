"""CPU per concurrent call, video IVR against voice IVR: load points of each kind (KINDS) run
interleaved, in one order and then the reverse, repetition after repetition, on one Asterisk and one
controller (video_load.py).

At each point SIPp places `concurrency * seconds / 10` calls of ~10 s at `concurrency / 10` a second,
so `concurrency` calls are up at once. Measured over the point: utime + stime of Asterisk (minus its
idle burn) and of the controller with its children (minus its idle burn), divided by the calls placed
(the idle burns: the lower of two 15 s windows with no call up, before the series and after it, since
a window can catch a burst of the controller's own housekeeping);
and, on the wire (tcpdump on lo, headers only), the RTP packets Asterisk sent by payload type, against
what the prompts hold: a video call that got no picture would otherwise look cheap.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import capture, targets
from bench.calls import machine_share, machine_ticks
from bench.load import LoadPoint
from bench.video_load import BRANCH, MENU, NUMBERS, RTP_START, LoadStack, Prompt
from bench.video_sipp import CALLER, run_calls

# video: the bench's endpoint, audio and video, the video flow; voice: the same endpoint, audio only,
# the voice flow; trunk: the voice flow called through the trunk, as a phone network's call comes in
# (the controller then neither asks for a video codec nor waits for the caller's media).
KINDS = ("video", "voice", "trunk")
CALLERS = {"video": CALLER, "voice": CALLER, "trunk": "5550000"}  # a user no endpoint has: the trunk, by IP
TARGET_RATIO = 1.5  # issue 11: a video IVR call costs no more than 1.5x a voice one
PT_PCMA, PT_EVENT = 8, 101
RTP_END = RTP_START + 999  # tests.integration.conftest.running_asterisk's range
HEADERS = 14 + 20 + 8 + 12  # Ethernet, IP, UDP, RTP: the payload type is all that is read


def idle_rates(stack: LoadStack, seconds: float = 15.0) -> dict[str, float]:
    """CPU seconds per second of Asterisk and of the controller with no call up."""
    pid = stack.controller.pid
    t0 = time.monotonic()
    a0, c0 = targets.cpu_seconds(stack.asterisk_pid), targets.tree_cpu_seconds(pid)
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {"asterisk": (targets.cpu_seconds(stack.asterisk_pid) - a0) / elapsed,
            "controller": (targets.tree_cpu_seconds(pid) - c0) / elapsed}


def sent_by_type(pcap: Path) -> dict[int, int]:
    """RTP packets Asterisk sent (from its RTP ports), by payload type; RTCP left out."""
    counts: dict[int, int] = {}
    for _, sport, _, rtp in capture.udp_packets(pcap):
        if len(rtp) < 12 or rtp[0] >> 6 != 2 or 192 <= rtp[1] <= 223 or not RTP_START <= sport <= RTP_END:
            continue
        counts[rtp[1] & 0x7F] = counts.get(rtp[1] & 0x7F, 0) + 1
    return counts


def measure_point(stack: LoadStack, kind: str, point: LoadPoint, silence: Path, camera: Path | None,
                  codec: str, prompts: dict[str, Prompt], work: Path) -> dict[str, Any]:
    video = (codec, camera) if kind == "video" else None
    cap = capture.Capture(work / "rtp.pcap", f"udp and src portrange {RTP_START}-{RTP_END}", HEADERS)
    try:
        t0 = time.monotonic()
        ast0, ctl0 = targets.cpu_seconds(stack.asterisk_pid), targets.tree_cpu_seconds(stack.controller.pid)
        machine0, sipp0 = machine_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        outcome = run_calls(stack.asterisk.sip_target, NUMBERS[kind], CALLERS[kind], point, silence, video,
                            work / "sipp")
        ast1, ctl1 = targets.cpu_seconds(stack.asterisk_pid), targets.tree_cpu_seconds(stack.controller.pid)
        machine1, sipp1 = machine_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        elapsed = time.monotonic() - t0
    finally:
        captured = cap.stop()
    by_type = sent_by_type(cap.path)
    audio = by_type.get(PT_PCMA, 0)
    video_sent = sum(n for pt, n in by_type.items() if pt not in (PT_PCMA, PT_EVENT))
    menu, branch = prompts[MENU], prompts[BRANCH]
    return {
        "kind": kind, "concurrency": point.concurrency, "calls": point.calls,
        "failed": max(outcome.failed, point.calls - outcome.successful),
        "sipp": {"returncode": outcome.returncode, "successful": outcome.successful, "failed": outcome.failed},
        "cpu_s": {"asterisk": round(ast1 - ast0, 3), "controller": round(ctl1 - ctl0, 3)},  # idle burn included
        # What each call got, against what its two prompts hold (a call whose digit came late gets
        # a little less of the menu's audio: it is cut at the digit, so ~1.0 is the expectation).
        "rtp_sent_per_call": {
            "audio": round(audio / point.calls, 1), "audio_expected": menu.audio_packets + branch.audio_packets,
            "video": round(video_sent / point.calls, 1),
            "video_expected": menu.video_packets + branch.video_packets if kind == "video" else 0,
            "by_payload_type": {str(pt): n for pt, n in sorted(by_type.items())},
        },
        "capture": captured,
        "sipp_cpu_s": round(sipp1.ru_utime + sipp1.ru_stime - sipp0.ru_utime - sipp0.ru_stime, 2),
        "machine": machine_share(machine0, machine1),
        "seconds": round(elapsed, 3),
    }  # fmt: skip


def per_call(runs: list[dict[str, Any]], idle: dict[str, float]) -> None:
    """Each run's CPU ms per call: its CPU seconds minus the idle burn over its time, per call placed."""
    for run in runs:
        ms = {who: (run["cpu_s"][who] - idle[who] * run["seconds"]) * 1000 / run["calls"]
              for who in ("asterisk", "controller")}
        run["cpu_ms_per_call"] = {**{k: round(v, 2) for k, v in ms.items()}, "total": round(sum(ms.values()), 2)}


def warm_up(stack: LoadStack, kinds: list[str], silence: Path, camera: Path | None, codec: str,
            prompts: dict[str, Prompt], work: Path) -> None:
    """One call of each kind, not measured: the first calls pay for cold caches and lazy imports. A
    kind that cannot complete one (or a video call that got no picture) stops the bench now."""
    for kind in kinds:
        result = measure_point(stack, kind, LoadPoint(1, 1), silence, camera, codec, prompts, work / kind)
        if result["failed"] or (kind == "video" and not result["rtp_sent_per_call"]["video"]):
            raise RuntimeError(f"the warm-up {kind} call failed: {result} (see {work}; keep it with --keep)")


def run_series(stack: LoadStack, kinds: list[str], loads: list[int], reps: int, seconds: float, silence: Path,
               camera: Path | None, codec: str, prompts: dict[str, Prompt], idle: dict[str, float],
               work: Path) -> list[dict[str, Any]]:
    """The load points, interleaved; each run's CPU per call taken against `idle` as it goes (for the
    log: `per_call` can take it again against a better idle burn)."""
    runs: list[dict[str, Any]] = []
    for rep in range(reps):
        for concurrency in loads:
            point = LoadPoint(concurrency, round(concurrency * seconds / 10))
            # Alternate who goes first: a slow drift of the machine then favours neither.
            for kind in kinds if rep % 2 == 0 else kinds[::-1]:
                print(f"rep {rep + 1}/{reps}: {concurrency} concurrent, {point.calls} calls -> {kind} IVR",
                      file=sys.stderr, flush=True)
                result = measure_point(stack, kind, point, silence, camera, codec, prompts,
                                       work / f"r{rep}-{concurrency}-{kind}")
                result["rep"] = rep
                per_call([result], idle)
                runs.append(result)
                cpu, sent, machine = result["cpu_ms_per_call"], result["rtp_sent_per_call"], result["machine"]
                print(f"  Asterisk {cpu['asterisk']} ms/call, controller {cpu['controller']} ms/call, failed "
                      f"{result['failed']}, video packets/call {sent['video']}/{sent['video_expected']}; machine "
                      f"busy {machine['busy_pct']} %, steal {machine['steal_pct']} %", file=sys.stderr, flush=True)
    return runs


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _ratios(at: list[dict[str, Any]], base: str) -> dict[str, Any]:
    """video / `base` for each CPU figure, taken within each repetition (the points ran next to each
    other), then the median over the repetitions, and the least and most of them."""
    found: dict[str, list[float]] = {"asterisk": [], "controller": [], "total": []}
    for rep in sorted({r["rep"] for r in at}):
        cpu = {r["kind"]: r["cpu_ms_per_call"] for r in at if r["rep"] == rep}
        if "video" in cpu and base in cpu:
            for what, values in found.items():
                if cpu[base][what] > 0:
                    values.append(cpu["video"][what] / cpu[base][what])
    return {what: {"median": _median(v), "range": [round(min(v), 3), round(max(v), 3)] if v else None}
            for what, v in found.items()}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per load: each kind's medians over the repetitions, and video's ratios to the others."""
    out = []
    for concurrency in sorted({r["concurrency"] for r in runs}):
        at = [r for r in runs if r["concurrency"] == concurrency]
        row: dict[str, Any] = {"concurrency": concurrency}
        for kind in sorted({r["kind"] for r in at}, key=KINDS.index):
            mine = [r for r in at if r["kind"] == kind]
            row[kind] = {
                "repetitions": len(mine), "failed": sum(r["failed"] for r in mine),
                "cpu_ms_per_call": {w: _median([r["cpu_ms_per_call"][w] for r in mine])
                                    for w in ("asterisk", "controller", "total")},
                "video_sent_share": _median([r["rtp_sent_per_call"]["video"] / r["rtp_sent_per_call"]["video_expected"]
                                             for r in mine if r["rtp_sent_per_call"]["video_expected"]]),
                "steal_pct": _median([r["machine"]["steal_pct"] for r in mine]),
                "busy_pct": _median([r["machine"]["busy_pct"] for r in mine]),
            }  # fmt: skip
        row["video_to_voice"] = _ratios(at, "voice")
        row["video_to_trunk"] = _ratios(at, "trunk")
        total = row["video_to_voice"]["total"]["median"]
        row["meets_target"] = None if total is None else total <= TARGET_RATIO
        out.append(row)
    return out


def table(summary: list[dict[str, Any]]) -> str:
    kinds = [k for k in KINDS if any(k in row for row in summary)]
    names = " / ".join(kinds)
    lines = [
        f"| load | Asterisk ms/call {names} | controller ms/call {names} | video/voice Asterisk, controller | "
        f"video/voice both (target <= {TARGET_RATIO}) | video/trunk both | failed {names} | "
        f"video sent/expected | steal % {names} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        def each(get: Any, row: dict[str, Any] = row) -> str:
            return " / ".join(_fmt(get(row[k])) if k in row else "-" for k in kinds)

        def ratio(base: str, what: str, row: dict[str, Any] = row) -> str:
            return _fmt(row[f"video_to_{base}"][what]["median"])

        verdict = {True: "met", False: "NOT met", None: "-"}[row["meets_target"]]
        lines.append(" | ".join([
            f"| {row['concurrency']} concurrent",
            each(lambda r: r["cpu_ms_per_call"]["asterisk"]), each(lambda r: r["cpu_ms_per_call"]["controller"]),
            f"{ratio('voice', 'asterisk')}, {ratio('voice', 'controller')}",
            f"{ratio('voice', 'total')} ({verdict})", ratio("trunk", "total"),
            each(lambda r: r["failed"]), _fmt(row.get("video", {}).get("video_sent_share")),
            each(lambda r: r["steal_pct"]) + " |",
        ]))  # fmt: skip
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)
