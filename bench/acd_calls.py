"""The ACD's next offer on the real Asterisk: `python -m bench.acd_calls [OUT.json]` (in `make bench`;
root: tcpdump on lo). Adds its figures to OUT.json under "acd_calls" and prints a table (JSON
without OUT).

What is measured: an agent hangs up (the queue's `wrapup_seconds` is 0, so wrap-up ends there)
while callers wait; how long until the next offer's INVITE reaches that agent's phone. Target:
p95 under 50 ms. One agent phone (a SIPp UAS registered with digest auth: answers each offer at
once, talks `--talk-ms`, hangs up), callers waiting in a queue node (a SIPp UAC keeping
`--waiting` + 1 calls up: the one talking and the ones waiting); the bench's Asterisk and a real
`ivrpowers run` with SQLite (`targets.start`, whose other IVRs stay idle).

Everything is timed on the wire, from loopback captures with kernel timestamps (one clock):
- gap: the agent's BYE leaving the phone -> the next INVITE reaching it (the first `--cycles`
  cycles, each with `--waiting` callers in the queue at the hangup);
- baseline, Asterisk alone: its 200 OK to that BYE, in the same cycles (a stalled machine shows);
- where the gap goes, read from the ARI websockets and HTTP on the ARI port: BYE -> Asterisk's
  events about the agent's leg (Asterisk) -> the controller's requests, up to the originate (the
  controller) -> the INVITE (Asterisk's originate); `slowest` has the milestones of the 3 slowest.
Percentiles over the cycles of a point; compare figures within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import acd_wire, capture, targets
from bench.calls import check_tools, machine_share, machine_ticks, profiler, py_spy
from bench.load import SIPP, free_media_port, free_udp_port
from bench.procs import die_with_parent
from bench.report import percentile

TARGET_MS = 50.0
NUMBER = "8110"  # the queue flow's number (bench.targets uses 81xx for the call bench's IVRs)
AGENT, QUEUE, ENDPOINT = "bench-agent", "bench-q", "bench-phone"
SCENARIOS = targets.BENCH_DIR

FLOW = f"""\
name: bench-queue
start: answer
nodes:
  answer: {{type: answer, next: wait}}
  wait: {{type: queue, queue: {QUEUE}, announce: {{every: 0}}, next: bye, on_no_agents: bye, on_timeout: bye}}
  bye: {{type: hangup}}
"""

ACD = f"""\
queues:
  - name: {QUEUE}
    strategy: longest-idle
    ring_timeout: 15
    wrapup_seconds: 0
    announce: {{every: 0}}
agents:
  - id: {AGENT}
    name: Bench Agent
    endpoint: {ENDPOINT}
    queues: [{QUEUE}]
"""


class Center:
    """The bench's Asterisk and controller with the queue, the agent logged in, and its phone."""

    def __init__(self, work: Path, talk_ms: int) -> None:
        self.work = work
        self.bench = targets.start(work / "state")
        self.phone: subprocess.Popen[bytes] | None = None
        try:
            self._set_up(talk_ms)
        except BaseException:
            self.close()
            raise

    def ivrpowers(self, *args: str) -> str:
        env = {**os.environ, **self.bench.env}
        env.pop("IVRPOWERS_DB_URL", None)  # the controller's SQLite, in the bench's state directory
        out = subprocess.run([sys.executable, "-m", "ivrpowers", *args], env=env, capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"ivrpowers {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def api(self, method: str, path: str) -> Any:
        token = json.loads((self.bench.state / "secrets.json").read_text())["api_token"]
        port = self.bench.env["IVRPOWERS_WEB_PORT"]
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def _set_up(self, talk_ms: int) -> None:
        (self.work / "flow.yaml").write_text(FLOW)
        (self.work / "acd.yaml").write_text(ACD)
        self.ivrpowers("flow", "import", str(self.work / "flow.yaml"), "--publish")
        self.ivrpowers("route", "set", NUMBER, "bench-queue")
        created = json.loads(self.ivrpowers("endpoint", "create", ENDPOINT, "--json"))
        if not created["pushed"]:
            raise RuntimeError(f"{ENDPOINT} was stored but Asterisk did not take it")
        password = created["password"]
        self.ivrpowers("acd", "apply", str(self.work / "acd.yaml"))
        self.phone_port = free_udp_port()
        registered = self._sipp("register", "acd_register.xml", self.phone_port, "-m", "1", "-au", ENDPOINT,
                                "-ap", password, "-timeout", "15", "-timeout_error").wait(30)
        if registered != 0:
            raise RuntimeError(f"{ENDPOINT} did not register: see {self.work}/register*.log (--keep)")
        # The phone answers every offer (and Asterisk's qualify) until the bench stops it.
        self.phone = self._sipp("phone", "acd_phone.xml", self.phone_port, "-m", "1000000", "-d", str(talk_ms),
                                "-aa", "-mp", str(free_media_port()))
        state = self.api("POST", f"/api/agents/{AGENT}/login")["state"]
        if state != "available":
            raise RuntimeError(f"agent {AGENT} is {state!r} after login")

    def _sipp(self, name: str, scenario: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
        host, sip_port = self.bench.sip_target
        argv = [SIPP, f"{host}:{sip_port}", "-sf", str(SCENARIOS / scenario), "-s", ENDPOINT,
                "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-nostdin",
                "-trace_err", "-error_file", str(self.work / f"{name}-errors.log"), *extra]
        with (self.work / f"{name}.log").open("wb") as log:
            return subprocess.Popen(argv, cwd=self.work, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    def callers(self, waiting: int, calls: int, name: str) -> int | None:
        """Keep `waiting` + 1 callers up until `calls` were placed and served; SIPp's exit code."""
        proc = self._sipp(name, "acd_caller.xml", free_udp_port(), "-s", NUMBER, "-mp", str(free_media_port()),
                          "-r", "50", "-l", str(waiting + 1), "-m", str(calls), "-timeout", f"{60 + calls * 5}s",
                          "-timeout_error")
        try:
            return proc.wait(75 + calls * 5)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        if self.phone is not None and self.phone.poll() is None:
            self.phone.kill()
            self.phone.wait()
        self.bench.close()


def stats(values: list[float]) -> dict[str, float | int | None]:
    def at(q: float) -> float | None:
        value = percentile(values, q)
        return None if value is None else round(value * 1000, 2)

    return {"n": len(values), "p50": at(0.5), "p95": at(0.95), "max": at(1.0)}


def measure(center: Center, waiting: int, cycles: int, work: Path, profile: Path | None) -> dict[str, Any]:
    """One point: `cycles` agent cycles with `waiting` callers in the queue."""
    s = center.bench.settings
    caps = [capture.sip_capture(work / "sip.pcap", s.sip_port),
            capture.Capture(work / "ari.pcap", f"tcp port {s.http_port}", 65535)]
    controller = center.bench.app_pid("C")
    spy = profiler(controller, profile) if profile is not None and controller else None
    machine0, t0 = machine_ticks(), time.monotonic()
    try:
        code = center.callers(waiting, cycles + waiting + 1, f"callers-{work.name}")
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile when interrupted
            spy.wait(60)
        machine1, elapsed = machine_ticks(), time.monotonic() - t0
        counts = capture.stop_all(caps)
    all_cycles = acd_wire.read_cycles(work / "sip.pcap", s.sip_port, center.phone_port)
    acd_wire.attach_ari(all_cycles, acd_wire.read_ari(work / "ari.pcap", s.http_port))
    # The first `cycles`: SIPp then stops placing calls and the queue drains.
    measured = [c for c in all_cycles[:cycles] if c.waiting >= 1 and c.invite is not None]
    traced = [c for c in measured if None not in (c.stasis_end, c.originate)]

    def span(start: str, end: str, among: list[acd_wire.Cycle] = traced) -> dict[str, float | int | None]:
        return stats([getattr(c, end) - getattr(c, start) for c in among
                      if getattr(c, start) is not None and getattr(c, end) is not None])

    gaps = [c.gap for c in measured if c.gap is not None]
    return {
        "waiting": waiting, "cycles": len(all_cycles), "measured_cycles": len(measured),
        "waiting_at_hangup": {"min": min((c.waiting for c in measured), default=None),
                              "max": max((c.waiting for c in measured), default=None)},
        "sipp_callers_returncode": code,
        "hangup_to_next_invite_ms": stats(gaps),
        "gaps_ms": [round(g * 1000, 2) for g in gaps],  # in order: a slow start or drift shows
        "met": code == 0 and bool(gaps) and (percentile(gaps, 0.95) or 0) * 1000 < TARGET_MS,
        "baseline_bye_to_200_ms": span("bye", "bye_ok", measured),
        # In order along the path; who is at work in each step is the key's first word.
        "breakdown_ms": {
            "asterisk_bye_to_hangup_request": span("bye", "hangup_request"),
            "asterisk_hangup_request_to_stasis_end": span("hangup_request", "stasis_end"),
            "controller_stasis_end_to_bridge_delete": span("stasis_end", "bridge_delete"),
            "asterisk_bridge_delete_answer": span("bridge_delete", "bridge_delete_answer"),
            "controller_bridge_deleted_to_originate": span("bridge_delete_answer", "originate"),
            "asterisk_originate_to_invite": span("originate", "invite"),
            # The three shares: Asterisk telling, the controller deciding, Asterisk dialing.
            "asterisk_bye_to_stasis_end": span("bye", "stasis_end"),
            "controller_stasis_end_to_originate": span("stasis_end", "originate"),
            "asterisk_originate_answer": span("originate", "originate_answer"),
        },
        "requests_between": _typical_requests(traced),
        "slowest": [_steps(c) for c in sorted(measured, key=lambda c: -(c.gap or 0))[:3]],
        "machine": machine_share(machine0, machine1), "seconds": round(elapsed, 1),
        "capture": {"sip": counts[0], "ari": counts[1]},
    }  # fmt: skip


def _steps(cycle: acd_wire.Cycle) -> dict[str, float | None]:
    """A cycle's milestones, in ms after the BYE: where a slow one lost its time."""
    names = ("bye_ok", "hangup_request", "stasis_end", "bridge_delete", "bridge_delete_answer", "originate",
             "originate_answer", "invite")
    return {n: None if (t := getattr(cycle, n)) is None else round((t - cycle.bye) * 1000, 2) for n in names}


def _typical_requests(cycles: list[acd_wire.Cycle]) -> list[str]:
    """The controller's requests from the BYE to the INVITE, as in the most cycles (ids elided)."""
    seen: dict[tuple[str, ...], int] = {}
    for c in cycles:
        key = tuple(r.split("/")[0] + ("/…" if "/" in r else "") for _, r in c.requests)
        seen[key] = seen.get(key, 0) + 1
    return list(max(seen.items(), key=lambda kv: kv[1])[0]) if seen else []


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.acd_calls", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, nargs="?", help="a JSON file to add the results to (key acd_calls)")
    p.add_argument("--waiting", default="3,20", help="callers waiting, one point each (default: %(default)s)")
    p.add_argument("--cycles", type=int, default=40, help="agent cycles measured at each point")
    p.add_argument("--reps", type=int, default=2, help="repetitions of the series of points")
    p.add_argument("--talk-ms", type=int, default=400, help="how long the agent talks before hanging up")
    p.add_argument("--keep", action="store_true", help="keep the work directory (captures, SIPp logs)")
    p.add_argument("--profile", action="store_true",
                   help="py-spy profile of the controller at each point (profile-acd-<waiting>-<rep>.json beside OUT, "
                        "speedscope); the sampling costs CPU, so a profiled run's figures are not comparable")
    args = p.parse_args(argv)
    args.waiting_list = [int(x) for x in args.waiting.split(",") if x]
    if not args.waiting_list or min(args.waiting_list) < 1 or args.cycles < 1 or args.reps < 1:
        p.error("--waiting, --cycles and --reps must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    check_tools()
    if args.profile and py_spy() is None:
        sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="ivrpowers-bench-acd-"))
    started, points = time.monotonic(), []
    results_dir = args.out.parent if args.out is not None else Path("bench-results")
    try:
        center = Center(work, args.talk_ms)
        try:
            # Not measured: the first offers pay for cold caches and lazy imports.
            if center.callers(1, 3, "warm-up") != 0:
                raise RuntimeError(f"warm-up calls failed: see {work} (run with --keep)")
            for rep in range(args.reps):
                for waiting in args.waiting_list:
                    print(f"rep {rep + 1}/{args.reps}: {waiting} waiting, {args.cycles} cycles", file=sys.stderr,
                          flush=True)
                    profile = (results_dir / f"profile-acd-{waiting}-{rep + 1}.json" if args.profile else None)
                    point = measure(center, waiting, args.cycles, work / f"r{rep}-w{waiting}", profile)
                    points.append({"rep": rep, **point})
                    gap, base = point["hangup_to_next_invite_ms"], point["baseline_bye_to_200_ms"]
                    print(f"  hangup -> next INVITE p50 {gap['p50']} p95 {gap['p95']} max {gap['max']} ms "
                          f"({gap['n']} cycles); BYE -> 200 OK p50 {base['p50']} ms; machine busy "
                          f"{point['machine']['busy_pct']} %, steal {point['machine']['steal_pct']} %",
                          file=sys.stderr, flush=True)
        finally:
            center.close()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "method": "on-wire loopback capture (SIP and the ARI port); see bench/acd_calls.py",
        "target_ms": TARGET_MS, "profiled": args.profile,
        "options": {"waiting": args.waiting_list, "cycles": args.cycles, "reps": args.reps, "talk_ms": args.talk_ms},
        "met": bool(points) and all(p["met"] for p in points),
        "total_seconds": round(time.monotonic() - started, 1),
        "points": points,
    }  # fmt: skip
    if args.out is not None:
        # Into the file `make bench` writes, beside bench.acd's "acd" (the router alone).
        args.out.parent.mkdir(parents=True, exist_ok=True)
        merged = json.loads(args.out.read_text()) if args.out.exists() else {}
        merged["acd_calls"] = results
        args.out.write_text(json.dumps(merged, indent=2) + "\n")
    print(table(results) if args.out is not None else json.dumps(results, indent=2))
    if work.exists():
        print(f"work directory kept: {work}", file=sys.stderr)
    return results


def table(results: dict[str, Any]) -> str:
    """One line a point: the gap, the baseline, and the controller's and Asterisk's shares (ms)."""
    head = (f"{'rep':>3} {'waiting':>7} {'cycles':>6} | {'gap p50':>7} {'p95':>6} {'max':>6} | {'BYE->200':>8} | "
            f"{'ast event':>9} {'ctl':>5} {'ctl p95':>7} {'ast orig':>8} | busy % steal %")
    lines = [head, "-" * len(head)]
    for p in results["points"]:
        gap, b, base = p["hangup_to_next_invite_ms"], p["breakdown_ms"], p["baseline_bye_to_200_ms"]
        event, ctl = b["asterisk_bye_to_stasis_end"], b["controller_stasis_end_to_originate"]
        lines.append(
            f"{p['rep'] + 1:>3} {p['waiting']:>7} {gap['n']:>6} | {gap['p50']!s:>7} {gap['p95']!s:>6} "
            f"{gap['max']!s:>6} | {base['p50']!s:>8} | {event['p50']!s:>9} {ctl['p50']!s:>5} {ctl['p95']!s:>7} "
            f"{b['asterisk_originate_to_invite']['p50']!s:>8} | {p['machine']['busy_pct']:>6} "
            f"{p['machine']['steal_pct']:>7}"
        )
    lines.append(f"\nagent's BYE -> next offer's INVITE to the phone, on the wire; target {TARGET_MS:.0f} ms (p95): "
                 f"{'met' if results['met'] else 'NOT met'}.\nast event: BYE -> StasisEnd of the agent's leg; ctl: "
                 "StasisEnd -> the controller's originate request; ast orig: originate -> INVITE (p50s, and ctl p95).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
