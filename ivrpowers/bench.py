"""`make bench`: how fast the pure core and the CDR path are, written as JSON.

Each figure is the median of several rounds; compare runs on the same machine, never across.
Results go to bench-results/bench.json (or the path given as the first argument).
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ivrpowers.config import PROJECT_ROOT
from ivrpowers.flows import load_flow, run_flow
from ivrpowers.flows.services import Services
from ivrpowers.flows.testing import FakeClock, FakeRecorder, FakeTransfer, ListJournal, Press, ScriptedCall
from ivrpowers.resources import demo_flow
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.store.writer import CdrWriter

ROUNDS = 5
DEMO = demo_flow().read_text()


def _rate(count: int, seconds: list[float]) -> dict[str, float]:
    med = statistics.median(seconds)
    return {"per_second": round(count / med, 1), "median_seconds": round(med, 6),
            "min_seconds": round(min(seconds), 6), "max_seconds": round(max(seconds), 6), "count": count}


def bench_flow_load(n: int = 200) -> dict[str, float]:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(n):
            load_flow(DEMO, "demo.yaml")
        times.append(time.perf_counter() - start)
    return _rate(n, times)


# The demo's whole tour: readback, an account number gathered and said back, office hours (open on a
# Monday 10:00 UTC), a transfer nobody answers, voicemail, goodbye. Every node type but http/subflow.
DEMO_TOUR = "1" + "2" + "1234#" + "3"


async def bench_interpreter(n: int = 1000) -> dict[str, float]:
    flow = load_flow(DEMO, "demo.yaml")
    clock = FakeClock(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    times, steps = [], 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        steps = 0
        for _ in range(n):
            call = ScriptedCall([Press(d) for d in DEMO_TOUR])
            services = Services(clock=clock, recorder=FakeRecorder(), transfer=FakeTransfer("no_answer"))
            result = await run_flow(flow, call, ListJournal(), services=services)
            if result.outcome != "hangup_by_flow" or result.last_node != "hangup":
                raise RuntimeError(f"benchmark call did not complete: {result}")
            steps += result.steps
        times.append(time.perf_counter() - start)
    rate = _rate(n, times)
    return {**rate, "steps_per_call": steps / n, "steps_per_second": round(steps / statistics.median(times), 1)}


async def bench_cdr_writes(calls: int = 200, events_per_call: int = 10) -> dict[str, float]:
    times = []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            await asyncio.to_thread(upgrade, url)
            db = Database(url)
            writer = CdrWriter(CdrRepository(db), Path(tmp) / "spool.jsonl")
            writer.start()
            now = datetime.now(UTC)
            start = time.perf_counter()
            for i in range(calls):
                writer.start_call(id=f"c{i}", channel_id=f"ch{i}", dialed="100", started_at=now)
                for j in range(events_per_call):
                    writer.add_event(f"c{i}", "node_entered", now, f"n{j}", {"j": j})
                writer.update_call(f"c{i}", ended_at=now, disposition="completed")
            await writer.flush()
            times.append(time.perf_counter() - start)
            await writer.close()
            await db.close()
    return _rate(calls * (events_per_call + 2), times)


async def main(out: Path) -> dict[str, object]:
    results: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "flow_load_demo": bench_flow_load(),
        "interpreter_demo_call": await bench_interpreter(),
        "cdr_writes_sqlite": await bench_cdr_writes(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PROJECT_ROOT / "bench-results" / "bench.json"
    print(json.dumps(asyncio.run(main(target)), indent=2))
