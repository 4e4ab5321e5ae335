"""Flow validation on big generated files: `python -m bench.flows [OUT.json]`, prints JSON (and adds
it to OUT.json under "flow_validation": `make bench` gives bench-results/bench.json).

Validation must stay linear in the size of the file: each case is a generated flow (3,000 nodes
of every type, valid or with every reference dangling; a 3,000-node chain of one-line play nodes;
a 1 MiB list) checked as `flow validate` does (`validate_flow`: the loader, then lint). Beside the
whole, `yaml_seconds` is the YAML reading alone (`ivrpowers.yamlfile`: libyaml's events, composed
in Python). Each figure is the median of a few rounds; compare runs on the same
machine, never across. The generators are also what tests/unit/test_flow_lint.py counts work on.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROUNDS = 3
NODES = 3000

# One section of a generated flow: a node of every type, wired the way real flows are (a menu
# leading to a lookup and back), one node a line. `{i}` is the section, `{n}` the next section's
# menu, `{r}` what every reference starts with ("x" in `dangling_flow`: no such node).
_SECTION = """\
  m{i}: {{type: menu, prompt: [sound:hello-world, sound:digits/1], options: {{"1": {r}g{i}, "9": {r}h{i}}}, \
on_timeout: {r}s{i}}}
  s{i}: {{type: set, vars: {{tries: "vars.tries + 1"}}, next: {r}b{i}}}
  b{i}: {{type: branch, cases: [{{when: "vars.tries > 3", next: {r}h{i}}}], default: {r}m{i}}}
  g{i}: {{type: gather, prompt: sound:please-enter-your, var: account, max_digits: 8, next: {r}w{i}}}
  w{i}: {{type: http, url: "https://crm.example.com/customers/{{{{ vars.account }}}}", save: {{tier: customer.tier}}, \
next: {r}p{i}, on_error: {r}h{i}}}
  p{i}: {{type: play, media: ["digits:{{{{ vars.account }}}}", sound:beep], next: {r}{n}}}
  h{i}: {{type: hangup}}
"""
_SECTION_NODES = 7


def valid_flow(nodes: int = NODES, ref: str = "") -> str:
    """A flow of about `nodes` nodes (whole sections, at least one): valid, and clean for lint."""
    sections = max(1, (nodes - 2) // _SECTION_NODES)
    head = (f"name: big\nstart: a\nnodes:\n  a: {{type: answer, next: {ref}init}}\n"
            f"  init: {{type: set, vars: {{tries: 0}}, next: {ref}m0}}\n")
    body = [_SECTION.format(i=i, r=ref, n=f"m{i + 1}" if i + 1 < sections else "h0") for i in range(sections)]
    return head + "".join(body)


def dangling_flow(nodes: int = NODES) -> str:
    """`valid_flow` with every node reference misspelled: the worst case for "did you mean"."""
    return valid_flow(nodes, ref="x")


def chain_flow(nodes: int = NODES) -> str:
    """The smallest flow of `nodes` nodes: plays one after the other, one a line."""
    lines = [f"  n{i}: {{type: play, media: sound:beep, next: n{i + 1}}}\n" for i in range(nodes - 1)]
    return "name: chain\nstart: n0\nnodes:\n" + "".join(lines) + f"  n{nodes - 1}: {{type: hangup}}\n"


def big_list(chars: int = 1024 * 1024 - 64) -> str:
    """A flow whose description is a list just under the size limit: many tiny values."""
    items = (chars - 64) // 4
    return "name: big\nstart: a\nnodes: {a: {type: hangup}}\ndescription:\n" + "- 1\n" * items


def _time(case: Callable[[], object]) -> dict[str, float]:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        case()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    case()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"median_seconds": round(statistics.median(times), 4), "min_seconds": round(min(times), 4),
            "max_seconds": round(max(times), 4), "peak_mib": round(peak / 2**20, 1)}


def _yaml_seconds(text: str) -> float | None:
    try:
        from ivrpowers.yamlfile.reader import Unusable, read
    except ImportError:  # measuring a checkout from before the reader
        return None
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        try:
            read(text)
        except Unusable:  # the list: refused where it passes the bound on values
            pass
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 4)


def validate(text: str) -> int:
    """What `flow validate` does: every problem, and lint's findings in a flow that loads. How many."""
    try:
        from ivrpowers.flows.loader import validate_flow
    except ImportError:  # measuring a checkout from before lint: the loader's problems only
        from ivrpowers.flows.loader import check_flow as validate_flow
    return len(validate_flow(text, "bench.yaml"))


def main(out: Path | None) -> dict[str, object]:
    cases = {"valid_3000_nodes": valid_flow(), "dangling_3000_nodes": dangling_flow(),
             "chain_3000_nodes": chain_flow(), "list_1_mib": big_list()}
    results: dict[str, object] = {"when": datetime.now(UTC).isoformat(), "python": sys.version.split()[0],
                                  "machine": platform.machine()}
    for name, text in cases.items():
        found = validate(text)
        results[name] = {"chars": len(text), "found": found, **_time(lambda text=text: validate(text)),
                         "yaml_seconds": _yaml_seconds(text)}
    if out is not None:
        # Into the file `make bench` writes (`ivrpowers.bench`), under its own key.
        out.parent.mkdir(parents=True, exist_ok=True)
        merged = json.loads(out.read_text()) if out.exists() else {}
        merged["flow_validation"] = results
        out.write_text(json.dumps(merged, indent=2) + "\n")
    return results


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2))
