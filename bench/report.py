"""Reduce the bench's measurements: percentiles, medians over repetitions, the printed table."""

from __future__ import annotations

import statistics
from typing import Any

TARGETS = {"A": "dialplan", "B": "raw ARI app", "C": "ivrpowers"}
# The ARI apps' delays split on the wire (`bench.ari_wire`): Asterisk's part, the app's, Asterisk's.
STEPS = {"setup_steps_ms": ("to_app", "in_app", "answer"), "dtmf_steps_ms": ("to_app", "in_app", "play")}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(values: list[float]) -> dict[str, float | None]:
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return {"p50": None if p50 is None else round(p50 * 1000, 3), "p99": None if p99 is None else round(p99 * 1000, 3)}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (load, target): the median over repetitions of each figure, failed calls summed."""
    out = []
    keys = sorted({(r["concurrency"], r["target"]) for r in runs})
    for concurrency, target in keys:
        reps = [r for r in runs if r["concurrency"] == concurrency and r["target"] == target]

        def med(path: tuple[str, str], reps: list[dict[str, Any]] = reps) -> float | None:
            return _median([r[path[0]][path[1]] for r in reps])

        row: dict[str, Any] = {
            "concurrency": concurrency,
            "target": target,
            "ivr": TARGETS[target],
            "repetitions": len(reps),
            "failed": sum(r["failed"] for r in reps),
        }
        for metric in ("setup_ms", "answer_to_audio_ms", "dtmf_ms"):
            row[metric] = {q: med((metric, q)) for q in ("p50", "p99")}
        row["cpu_ms_per_call"] = {w: med(("cpu_ms_per_call", w)) for w in ("asterisk", "app")}
        for kind, names in STEPS.items():
            if steps := [r[kind] for r in reps if r.get(kind)]:
                row[kind] = {step: {q: _median([s[step][q] for s in steps]) for q in ("p50", "p99")} for step in names}
        # Steal (the hypervisor running others) inflates CPU figures by a few ms a call on a shared
        # host: the least of the repetitions is the one closest to the code's own cost.
        apps = [r["cpu_ms_per_call"]["app"] for r in reps if r["cpu_ms_per_call"]["app"] is not None]
        row["app_cpu_ms_per_call_min"] = min(apps) if apps else None
        steals = [r["machine"]["steal_pct"] for r in reps if "machine" in r]
        row["steal_pct"] = round(statistics.median(steals), 1) if steals else None
        out.append(row)
    return out


# The figures the targets are set on, compared within each repetition (`paired`).
PAIRED = {
    "setup p50": ("setup_ms", "p50"),
    "setup p99": ("setup_ms", "p99"),
    "dtmf p50": ("dtmf_ms", "p50"),
    "dtmf p99": ("dtmf_ms", "p99"),
    "answer_to_audio p50": ("answer_to_audio_ms", "p50"),
}


def paired(runs: list[dict[str, Any]], base: str = "B", other: str = "C") -> list[dict[str, Any]]:
    """Per load: `other` minus `base` in each repetition (the two ran back to back, so the machine's
    mood, which moves a target's own figures by more than the difference, mostly cancels), and their
    median."""
    out = []
    for concurrency in sorted({r["concurrency"] for r in runs}):
        by = {(r["target"], r["rep"]): r for r in runs if r["concurrency"] == concurrency}
        reps = sorted({rep for target, rep in by if (base, rep) in by and (other, rep) in by})
        if not reps:
            continue
        row: dict[str, Any] = {"concurrency": concurrency, "minus": f"{other} - {base}", "repetitions": len(reps)}
        for name, (metric, q) in PAIRED.items():
            diffs = [
                round(b - a, 3)
                for rep in reps
                if (a := by[(base, rep)][metric][q]) is not None and (b := by[(other, rep)][metric][q]) is not None
            ]
            row[name] = {"each": diffs, "median": _median(diffs)}
        out.append(row)
    return out


def paired_table(rows: list[dict[str, Any]]) -> str:
    """The medians of `paired`, each repetition's difference in brackets."""
    if not rows:
        return ""
    lines = [
        "| load | " + " | ".join(f"{name}: {rows[0]['minus']}" for name in PAIRED) + " |",
        "|---|" + "---|" * len(PAIRED),
    ]
    for row in rows:
        cells = [f"{_fmt(row[n]['median'])} ({', '.join(f'{d:+.2f}' for d in row[n]['each'])})" for n in PAIRED]
        lines.append(f"| {row['concurrency']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def steps_table(summary: list[dict[str, Any]], names: list[str], kind: str = "setup_steps_ms") -> str:
    """The ARI apps' setup (or digit, `dtmf_steps_ms`), step by step (`bench.ari_wire`)."""
    names = [t for t in names if t != "A"]
    rows = [r for r in summary if r.get(kind) and r["target"] in names]
    if not rows:
        return ""
    head = " / ".join(names)
    first, app, last = STEPS[kind]
    titles = {
        "setup_steps_ms": ("INVITE -> StasisStart", "StasisStart -> answer request", "answer request -> 200 OK"),
        "dtmf_steps_ms": ("digit End -> DtmfReceived", "DtmfReceived -> play request", "play request -> marker"),
    }[kind]
    lines = [
        "| load | " + " | ".join(f"{title} {q} {head}" for title, q in (*((t, "p50") for t in titles),
                                                                    (titles[1], "p99"))) + " |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for concurrency in sorted({r["concurrency"] for r in rows}):
        row_of = {r["target"]: r[kind] for r in rows if r["concurrency"] == concurrency}
        cells = [
            _cell(row_of, names, lambda r, step=step, q=q: r[step][q])
            for step, q in ((first, "p50"), (app, "p50"), (last, "p50"), (app, "p99"))
        ]
        lines.append(f"| {concurrency} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def _cell(row_of: dict[str, dict[str, Any]], names: list[str], get: Any) -> str:
    """One figure of each target, "B / C", "-" for a target not run."""
    return " / ".join(_fmt(get(row_of[t])) if t in row_of else "-" for t in names)


def table(summary: list[dict[str, Any]], names: list[str]) -> str:
    def cell(row_of: dict[str, dict[str, Any]], get: Any) -> str:
        return _cell(row_of, names, get)

    head = " / ".join(names)
    lines = [
        f"| load | setup p50 {head} | setup p99 {head} | answer_to_audio p50 {head} | dtmf p50 {head} | "
        f"dtmf p99 {head} | Asterisk CPU ms/call {head} | app CPU ms/call {head} | app CPU min {head} | "
        f"steal % {head} | failed {head} |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for concurrency in sorted({r["concurrency"] for r in summary}):
        row_of = {r["target"]: r for r in summary if r["concurrency"] == concurrency}
        lines.append("| " + " | ".join([
            "1 at a time" if concurrency == 1 else f"{concurrency} ({concurrency / 10:g}/s)",
            cell(row_of, lambda r: r["setup_ms"]["p50"]),
            cell(row_of, lambda r: r["setup_ms"]["p99"]),
            cell(row_of, lambda r: r["answer_to_audio_ms"]["p50"]),
            cell(row_of, lambda r: r["dtmf_ms"]["p50"]),
            cell(row_of, lambda r: r["dtmf_ms"]["p99"]),
            cell(row_of, lambda r: r["cpu_ms_per_call"]["asterisk"]),
            cell(row_of, lambda r: r["cpu_ms_per_call"]["app"]),
            cell(row_of, lambda r: r["app_cpu_ms_per_call_min"]),
            cell(row_of, lambda r: r["steal_pct"]),
            cell(row_of, lambda r: r["failed"]),
        ]) + " |")  # fmt: skip
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if isinstance(value, float) else str(value)
