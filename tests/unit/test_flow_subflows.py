"""Subflow cycles are found before a flow goes live."""

from __future__ import annotations

from ivrpowers.flows import load_flow
from ivrpowers.flows.subflows import subflow_cycle, subflow_targets


def test_targets_and_cycles() -> None:
    flow = load_flow("name: a\nstart: s\nnodes:\n  s: {type: subflow, flow: b, next: t}\n"
                     "  t: {type: subflow, flow: c}\n")
    assert subflow_targets(flow) == {"b", "c"}
    assert subflow_cycle("a", {"a": {"b", "c"}, "b": {"d"}, "d": {"a"}}) == ["a", "b", "d", "a"]
    assert subflow_cycle("a", {"a": {"a"}}) == ["a", "a"]
    assert subflow_cycle("a", {"a": {"b"}, "b": {"c"}, "c": {"b"}}) is None  # a cycle, but not through a
    assert subflow_cycle("a", {"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_publishing_a_subflow_cycle_is_refused(run, state, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("name: a\nstart: s\nnodes:\n  s: {type: subflow, flow: b}\n")
    b.write_text("name: b\nstart: s\nnodes:\n  s: {type: subflow, flow: a}\n")
    assert run("flow", "import", str(a), "--publish").code == 0
    ran = run("flow", "import", str(b), "--publish")
    assert ran.code == 1 and "subflow cycle b -> a -> b" in ran.err
    assert run("flow", "import", str(b)).code == 0  # stored, not live
    ran = run("flow", "publish", "b")
    assert ran.code == 1 and "subflow cycle b -> a -> b" in ran.err
