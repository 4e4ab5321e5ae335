"""The call-load benchmark: `make bench-calls`, or `python -m bench.calls --loads 1,50 --reps 1`.

SIPp callers (PCMA audio, one RFC 4733 digit) against three IVRs with the same behaviour on one
Asterisk, interleaved A B C, A B C, ...: A the native dialplan, B a minimal raw ARI app (the floor of any
ARI controller), C ivrpowers running bench/flow.yaml with CDRs and timeline written. Measured on the
wire from a loopback capture with kernel timestamps (one clock for everything):

- setup: INVITE -> 200 OK; for the ARI apps, also step by step from a capture of the ARI port:
  INVITE -> StasisStart (Asterisk), StasisStart -> the answer request (the app), the request -> 200 OK;
- answer_to_audio: 200 OK -> the IVR's first RTP packet;
- dtmf: the caller's first RFC 4733 End packet -> the first RTP packet of the marker prompt;
- CPU ms per call: utime+stime of Asterisk (minus its idle burn) and of the target's app process and its children;
- failed calls: SIPp's count, or calls whose trace on the wire misses a step, whichever is larger.

Percentiles are over the calls placed at steady concurrency (placed after the first call's 10 s and
ending before the last placements stop); medians over repetitions (and each app's least CPU per call,
with the median steal time), and C minus B within each repetition, which the machine's mood moves
less than either. Compare figures within one run only.
Results: bench-results/calls.json (or --out) and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ari_wire, capture, load, targets
from bench.media import write_caller_pcap
from bench.report import TARGETS, ms, paired, paired_table, steps_table, summarize, table


def measure_point(
    bench: targets.Bench,
    target: str,
    point: load.LoadPoint,
    pcap: Path,
    work: Path,
    asterisk_idle: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Run one load point against one target and reduce it to figures (and a py-spy profile of C)."""
    s = bench.settings
    sip_cap = capture.sip_capture(work / "sip.pcap", s.sip_port)
    caps = [sip_cap]
    try:
        rtp_cap = capture.rtp_capture(work / "rtp.pcap", s.rtp_start, s.rtp_end)
        caps.append(rtp_cap)
        if target != "A":  # the ARI apps: their events and requests split the setup into its steps
            caps.append(capture.Capture(work / "ari.pcap", f"tcp port {s.http_port}", 65535))
        app_pid = bench.app_pid(target)
        t0 = time.monotonic()
        ast0 = targets.cpu_seconds(bench.asterisk_pid)
        app0 = targets.tree_cpu_seconds(app_pid) if app_pid else 0.0
        machine0, sipp0 = machine_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        spy = profiler(app_pid, profile) if profile and target == "C" and app_pid else None
        try:
            outcome = load.run_load(bench.sip_target, targets.NUMBERS[target], point, pcap, work / "sipp")
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its profile when interrupted
                spy.wait(60)
        ast1 = targets.cpu_seconds(bench.asterisk_pid)
        app1 = targets.tree_cpu_seconds(app_pid) if app_pid else 0.0
        machine1, sipp1 = machine_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        elapsed = time.monotonic() - t0
    finally:
        counts = capture.stop_all(caps)
    captured = {"sip": counts[0], "rtp": counts[1]} | ({"ari": counts[2]} if len(counts) > 2 else {})

    calls = capture.read_sip(sip_cap.path, s.sip_port)
    capture.attach_rtp(calls, rtp_cap.path)
    if target != "A":
        messages = ari_wire.read_ari(work / "ari.pcap", s.http_port)
        ari_wire.attach_setup(calls, messages)
        ari_wire.attach_dtmf(calls, messages)
    reasons: dict[str, int] = {}
    for call in calls:
        if (why := call.failure()) is not None:
            reasons[why] = reasons.get(why, 0) + 1
    missing = point.calls - len(calls)
    if missing > 0:
        reasons["never reached the wire"] = missing
    failed = max(outcome.failed + (0 if outcome.returncode is not None else missing), sum(reasons.values()))

    steady = calls
    if point.concurrency > 1 and calls:
        first = calls[0].invite
        lo, hi = load.CALL_SECONDS, point.placing_seconds - load.CALL_SECONDS
        steady = [c for c in calls if lo <= c.invite - first <= hi]
    good = [c for c in steady if c.complete]
    setup = [c.ok - c.invite for c in good if c.ok is not None]
    audio = [c.first_audio - c.ok for c in good if c.first_audio is not None and c.ok is not None]
    dtmf = [c.marker - c.digit_end for c in good if c.marker is not None and c.digit_end is not None]
    ast_cpu = (ast1 - ast0) - asterisk_idle * elapsed
    return {
        "target": target, "ivr": TARGETS[target], "concurrency": point.concurrency, "calls": point.calls,
        "steady_calls": len(steady), "measured_calls": len(good), "failed": failed, "failure_reasons": reasons,
        "sipp": {"returncode": outcome.returncode, "successful": outcome.successful, "failed": outcome.failed},
        "setup_ms": ms(setup), "answer_to_audio_ms": ms(audio), "dtmf_ms": ms(dtmf),
        "setup_steps_ms": ari_wire.setup_steps(good) if target != "A" else None,
        "dtmf_steps_ms": ari_wire.dtmf_steps(good) if target != "A" else None,
        "cpu_ms_per_call": {
            "asterisk": round(ast_cpu * 1000 / point.calls, 2),
            "app": round((app1 - app0) * 1000 / point.calls, 2) if app_pid else None,
        },
        # SIPp shares the cores: its CPU, and the whole machine's (other work, hypervisor steal), say how
        # far the figures can be trusted.
        "sipp_cpu_s": round(sipp1.ru_utime + sipp1.ru_stime - sipp0.ru_utime - sipp0.ru_stime, 2),
        "machine": machine_share(machine0, machine1),
        "seconds": round(elapsed, 1), "capture": captured,
    }  # fmt: skip


def check_tools() -> None:
    missing = [tool for tool in (load.SIPP, capture.TCPDUMP) if not Path(tool).exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `make deps` (scripts/install-debian-deps)")
    if os.geteuid() != 0:
        sys.exit("the call-load bench needs root: SIPp replays RTP through a raw socket and tcpdump captures lo")


def idle_rates(pids: dict[str, int], seconds: float = 5.0) -> dict[str, float]:
    """CPU seconds per second of each process with no call up."""
    before, t0 = {n: targets.cpu_seconds(p) for n, p in pids.items()}, time.monotonic()
    time.sleep(seconds)
    return {n: (targets.cpu_seconds(p) - before[n]) / (time.monotonic() - t0) for n, p in pids.items()}


def machine_ticks() -> list[int]:
    """The `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal ..."""
    return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def machine_share(before: list[int], after: list[int]) -> dict[str, float]:
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta[:8]) or 1
    return {
        "busy_pct": round(100 * (total - delta[3] - delta[4]) / total, 1),
        "steal_pct": round(100 * delta[7] / total, 1),
    }


def py_spy() -> str | None:
    return shutil.which("py-spy") or next(
        (str(p) for p in [Path(sys.executable).parent / "py-spy"] if p.exists()), None
    )


def profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """Sample the controller while the calls run. It costs CPU: a profiled run tells where, not how fast."""
    spy = py_spy()
    if spy is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [spy, "record", "--nonblocking", "-p", str(pid), "-r", "100", "-f", "speedscope", "-o", str(out)]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def warm_up(bench: targets.Bench, names: list[str], pcap: Path, work: Path) -> None:
    """One call to each target at once, not measured: the first call pays for cold caches and lazy imports.

    A target that cannot complete it is broken: stop now rather than after a long run."""
    point = load.LoadPoint(1, 1)
    with ThreadPoolExecutor(len(names)) as pool:
        outcomes = pool.map(
            lambda t: load.run_load(bench.sip_target, targets.NUMBERS[t], point, pcap, work / f"warm-up-{t}"), names
        )
        broken = [t for t, o in zip(names, outcomes, strict=True) if o.successful != 1]
    if broken:
        raise RuntimeError(f"warm-up call failed for {', '.join(broken)}: see {work} (run with --keep)")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.calls", description=__doc__.split("\n\n")[0])
    p.add_argument("--loads", default="1,50,100,200,300", help="concurrent calls per load point (default: %(default)s)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of the whole interleaved series")
    p.add_argument("--targets", default="A,B,C", help="A dialplan, B raw ARI app, C ivrpowers")
    p.add_argument("--seconds", type=float, default=30, help="how long calls are placed at each load point (>= 25)")
    p.add_argument("--single-calls", type=int, default=5, help="calls placed one at a time at load 1")
    p.add_argument("--out", type=Path, default=Path("bench-results/calls.json"))
    p.add_argument("--keep", action="store_true", help="keep the work directory (captures, logs)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="record a py-spy profile of ivrpowers at each load point (bench-results/profile-C-<load>-<rep>.json, "
        "speedscope format); the sampling costs CPU, so the figures of a profiled run are not comparable",
    )
    args = p.parse_args(argv)
    args.load_list = [int(x) for x in args.loads.split(",") if x]
    args.target_list = [t for t in args.targets.split(",") if t]
    if any(t not in TARGETS for t in args.target_list) or not args.target_list:
        p.error(f"--targets: choose among {','.join(TARGETS)}")
    if args.seconds < 2 * load.CALL_SECONDS + 5 or args.reps < 1 or any(n < 1 for n in args.load_list):
        p.error("--seconds must be >= 25, --reps and --loads >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    check_tools()
    if args.profile and py_spy() is None:
        sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
    # A plain SIGTERM would skip the cleanup below: make it an exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="ivrpowers-bench-calls-"))
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    cdrs = None
    idles: dict[str, float] = {}
    bench = targets.start(work / "state")
    try:
        pcap = write_caller_pcap(work / "caller.pcap")
        warm_up(bench, args.target_list, pcap, work)
        time.sleep(3)  # let the warm-up calls' teardown finish before measuring idle
        idles = idle_rates({"asterisk": bench.asterisk_pid, **{t: p for t in "BC" if (p := bench.app_pid(t))}})
        idle = idles["asterisk"]
        for rep in range(args.reps):
            for concurrency in args.load_list:
                calls = args.single_calls if concurrency == 1 else round(concurrency * args.seconds / 10)
                point = load.LoadPoint(concurrency, calls)
                for target in args.target_list:
                    print(
                        f"rep {rep + 1}/{args.reps}: {concurrency} concurrent, {calls} calls -> "
                        f"{target} ({TARGETS[target]})",
                        file=sys.stderr,
                        flush=True,
                    )
                    profile = args.out.parent / f"profile-C-{concurrency}-{rep + 1}.json" if args.profile else None
                    result = measure_point(
                        bench, target, point, pcap, work / f"r{rep}-{concurrency}-{target}", idle, profile
                    )
                    result["rep"] = rep
                    runs.append(result)
                    steps = result["setup_steps_ms"]
                    split = (
                        f" (to app {steps['to_app']['p50']}, in app {steps['in_app']['p50']}, answer "
                        f"{steps['answer']['p50']})"
                        if steps
                        else ""
                    )
                    digit = result["dtmf_steps_ms"]
                    dtmf_split = f" (in app p99 {digit['in_app']['p99']})" if digit else ""
                    print(
                        f"  setup p50 {result['setup_ms']['p50']} ms{split}, dtmf p50 {result['dtmf_ms']['p50']} "
                        f"p99 {result['dtmf_ms']['p99']} ms{dtmf_split}, "
                        f"failed {result['failed']}; machine busy {result['machine']['busy_pct']} %, steal "
                        f"{result['machine']['steal_pct']} %",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        cdrs = bench.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = summarize(runs)
    against_b = paired(runs) if {"B", "C"} <= set(args.target_list) else []
    # The warm-up call is a CDR too.
    placed_c = sum(r["calls"] for r in runs if r["target"] == "C") + ("C" in args.target_list)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "method": "on-wire loopback capture; see bench/calls.py",
        "profiled": args.profile,
        "options": {"loads": args.load_list, "reps": args.reps, "seconds": args.seconds,
                    "single_calls": args.single_calls, "targets": args.target_list},
        "idle_cpu_ms_per_s": {name: round(rate * 1000, 2) for name, rate in idles.items()},
        "ivrpowers_cdrs": {"placed": placed_c, **(cdrs or {})},
        "total_seconds": round(time.monotonic() - started, 1),
        "summary": summary,
        "paired": against_b,
        "runs": runs,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(summary, args.target_list))
    if steps := steps_table(summary, args.target_list):
        print("\nThe ARI apps' setup, step by step (ms, from the capture of the ARI port):\n" + steps)
    if steps := steps_table(summary, args.target_list, "dtmf_steps_ms"):
        print("\nThe ARI apps' digit, step by step (ms):\n" + steps)
    if against_b:
        print("\nC minus B within each repetition (ms; median, then each repetition's):\n" + paired_table(against_b))
    print(
        f"\n{', '.join(f'{t} {n}' for t, n in TARGETS.items() if t in args.target_list)}; ms, medians of "
        f"{args.reps} repetition(s); CDRs written by ivrpowers: {cdrs} for {placed_c} calls placed; "
        f"{report['total_seconds']:.0f} s in all; {args.out}"
    )
    if cdrs is not None and placed_c and cdrs.get("ended") != placed_c:
        print(f"WARNING: ivrpowers closed {cdrs.get('ended')} CDRs for {placed_c} calls placed", file=sys.stderr)
    if work.exists():
        print(f"work directory kept: {work}")


if __name__ == "__main__":
    main()
