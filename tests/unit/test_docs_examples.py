"""The flow reference (docs/flows.md) and the examples (examples/) say what the product does.

Every whole flow in the reference is a valid flow; the example flows validate; the CRM example takes
its gold, standard and on_error ways in the simulator; and the example CRM answers the product's own
HTTP client and a real flow run.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from aiohttp import web

from ivrpowers.calls.services import AiohttpHttp
from ivrpowers.flows import Services, check_flow, load_flow, load_flow_file, run_flow
from ivrpowers.flows.simulate import FixtureHttp, simulate
from ivrpowers.flows.testing import ListJournal, Press, ScriptedCall

from .cli_run import Run

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "flows.md"
EXAMPLES = ROOT / "examples"
CRM_FLOW = EXAMPLES / "flows" / "crm-lookup.yaml"
CRM_FIXTURE = EXAMPLES / "flows" / "crm-fixture.yaml"
SECRETS = {"crm_token": "s3cret"}

GOLD = ["answer", "lookup", "by-tier", "priority", "priority-menu", "account", "readback", "readback-digits",
        "thanks", "bye", "hangup"]
STANDARD = ["answer", "lookup", "by-tier", "standard", "account", "readback", "readback-digits", "thanks", "bye",
            "hangup"]
UNAVAILABLE = ["answer", "lookup", "why-no-answer", "unavailable", "standard", "account", "readback",
               "readback-digits", "thanks", "bye", "hangup"]


def yaml_blocks(markdown: str) -> list[tuple[int, str]]:
    """Every ```yaml block of `markdown`: (the line its text starts on, the text)."""
    blocks = []
    for match in re.finditer(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", markdown, re.DOTALL | re.MULTILINE):
        blocks.append((markdown[: match.start(1)].count("\n") + 1, match.group(1)))
    return blocks


def whole_flows(markdown: str) -> list[tuple[int, str]]:
    return [(line, text) for line, text in yaml_blocks(markdown) if text.startswith("name:")]


# -- (a) the reference ---------------------------------------------------------------------------


def test_the_reference_has_whole_flows_to_check() -> None:
    flows = whole_flows(DOC.read_text(encoding="utf-8"))
    # One at least per node type and for the file itself: a lost block would go unnoticed otherwise.
    assert len(flows) >= 12


@pytest.mark.parametrize("line, text", [pytest.param(line, text, id=f"line{line}")
                                        for line, text in whole_flows(DOC.read_text(encoding="utf-8"))])
def test_every_whole_flow_in_the_reference_is_valid(line: int, text: str) -> None:
    problems = check_flow(text, f"docs/flows.md (block at line {line})")
    assert problems == [], "\n".join(map(str, problems))


def test_no_whole_flow_in_the_reference_escapes_the_check() -> None:
    # A whole flow that starts with a comment instead of `name:` would be taken for a fragment.
    for line, text in yaml_blocks(DOC.read_text(encoding="utf-8")):
        if not text.startswith("name:"):
            looks_whole = re.search(r"^name:", text, re.M) and re.search(r"^nodes:", text, re.M)
            assert not looks_whole, f"block at line {line} is a whole flow: start it with `name:`"


# -- (b) the example flows -----------------------------------------------------------------------


def example_flows() -> list[Path]:
    return sorted(path for path in (EXAMPLES / "flows").glob("*.yaml") if path != CRM_FIXTURE)


def test_there_are_example_flows() -> None:
    assert CRM_FLOW in example_flows()


@pytest.mark.parametrize("path", example_flows(), ids=lambda path: path.name)
def test_the_example_flows_validate(path: Path) -> None:
    assert check_flow(path.read_text(encoding="utf-8"), str(path)) == []


def test_the_cli_validates_the_example(run: Run) -> None:
    ran = run("flow", "validate", str(CRM_FLOW))
    assert ran.code == 0, ran.err


# -- (c) the CRM example in the simulator --------------------------------------------------------


def fixture() -> FixtureHttp:
    from ruamel.yaml import YAML

    return FixtureHttp(YAML(typ="safe").load(CRM_FIXTURE.read_text(encoding="utf-8")))


async def test_a_gold_caller_gets_the_priority_menu() -> None:
    http = fixture()
    result = await simulate(load_flow_file(CRM_FLOW), caller_number="5551234", dtmf="1123456#", http=http,
                            secrets=SECRETS)
    assert result.path == GOLD
    assert result.end == "hangup"
    assert http.requests == ["GET http://127.0.0.1:8099/customers/5551234"]
    assert result.vars["tier"] == "gold" and result.vars["name"] == "Ada Lovelace"
    assert result.vars["account"] == "123456" and result.vars["priority"] is True
    assert "digits:123456" in result.prompts


async def test_another_tier_gets_the_standard_menu() -> None:
    result = await simulate(load_flow_file(CRM_FLOW), caller_number="5550100", dtmf="1123456#", http=fixture(),
                            secrets=SECRETS)
    assert result.path == STANDARD
    assert result.vars["tier"] == "silver" and "priority" not in result.vars


async def test_a_number_the_crm_does_not_know_gets_the_standard_menu_without_an_apology() -> None:
    result = await simulate(load_flow_file(CRM_FLOW), caller_number="5550404", dtmf="2", http=fixture(),
                            secrets=SECRETS)
    assert result.path == ["answer", "lookup", "why-no-answer", "standard", "bye", "hangup"]
    assert result.vars["http_status"] == 404


@pytest.mark.parametrize("caller", ["5550500", "5559999"], ids=["no-answer", "not-in-fixture"])
async def test_no_answer_says_the_service_is_unavailable_and_goes_on(caller: str) -> None:
    result = await simulate(load_flow_file(CRM_FLOW), caller_number=caller, dtmf="1123456#", http=fixture(),
                            secrets=SECRETS)
    assert result.path == UNAVAILABLE
    assert result.prompts[:2] == ["sound:im-sorry", "sound:all-circuits-busy-now"]
    assert "http_status" not in result.vars
    assert any(e["type"] == "http_failed" for e in result.events)


async def test_a_bad_account_number_is_asked_again() -> None:
    # A leading zero fails the pattern; the second try is good.
    result = await simulate(load_flow_file(CRM_FLOW), caller_number="5550100", dtmf="1012345#123456#",
                            http=fixture(), secrets=SECRETS)
    assert result.path == STANDARD
    assert [e["type"] for e in result.events if e["type"].startswith("gather_")] == ["gather_invalid",
                                                                                   "gather_completed"]
    assert result.vars["account"] == "123456"


def test_the_cli_simulates_the_example_with_the_fixture(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVRPOWERS_FLOW_SECRET_CRM_TOKEN", "s3cret")
    paths = {}
    for caller in ("5551234", "5550100", "5550500"):
        ran = run("flow", "simulate", str(CRM_FLOW), "--caller", caller, "--dtmf", "1123456#",
                  "--http-fixture", str(CRM_FIXTURE), "--json")
        assert ran.code == 0, ran.err
        out = json.loads(ran.out)
        assert out["end"] == "hangup"
        paths[caller] = out["path"]
    assert paths == {"5551234": GOLD, "5550100": STANDARD, "5550500": UNAVAILABLE}


def test_without_the_secret_the_lookup_takes_on_error(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVRPOWERS_FLOW_SECRET_CRM_TOKEN", raising=False)
    ran = run("flow", "simulate", str(CRM_FLOW), "--caller", "5551234", "--dtmf", "2",
              "--http-fixture", str(CRM_FIXTURE), "--json")
    assert ran.code == 0, ran.err
    out = json.loads(ran.out)
    assert out["path"][:4] == ["answer", "lookup", "why-no-answer", "unavailable"]
    failed = [e["detail"] for e in out["events"] if e["type"] == "http_failed"]
    assert failed == [{"url": "http://127.0.0.1:8099/customers/{{ caller.number }}", "attempt": 0,
                       "problem": "no flow secret named crm_token in the settings"}]


# -- (d) the example CRM, for real ---------------------------------------------------------------


def crm_module() -> ModuleType:
    name = "ivrpowers_example_crm_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / "crm_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def crm_url() -> AsyncIterator[str]:
    """The example CRM, in-process on a free loopback port: its base URL."""
    runner = web.AppRunner(crm_module().app("s3cret"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_the_crm_answers_the_products_http_client(crm_url: str) -> None:
    http = AiohttpHttp()
    try:
        gold = await http.request("GET", f"{crm_url}/customers/5551234",
                                  headers={"Authorization": "Bearer s3cret"}, timeout=5)
        unknown = await http.request("GET", f"{crm_url}/customers/5550404",
                                     headers={"Authorization": "Bearer s3cret"}, timeout=5)
        refused = await http.request("GET", f"{crm_url}/customers/5551234",
                                     headers={"Authorization": "Bearer nope"}, timeout=5)
    finally:
        await http.close()
    assert (gold.status, gold.body) == (200, {"customer": {"tier": "gold", "name": "Ada Lovelace"}})
    assert (unknown.status, unknown.body) == (404, {"error": "no such customer"})
    assert refused.status == 401


async def test_the_example_flow_looks_the_caller_up_in_the_example_crm(crm_url: str) -> None:
    # The example flow as shipped, but pointed at the port this test's CRM listens on.
    text = CRM_FLOW.read_text(encoding="utf-8").replace("http://127.0.0.1:8099", crm_url)
    flow = load_flow(text, "crm-lookup.yaml")
    http = AiohttpHttp()
    call = ScriptedCall([Press(d) for d in "1123456#"], caller_number="5551234", when_done="hangup")
    journal = ListJournal()
    try:
        result = await run_flow(flow, call, journal, services=Services(http=http, secrets=SECRETS))
    finally:
        await http.close()
    assert result.outcome == "hangup_by_flow", result.error
    assert [e.node for e in journal.of_type("node_entered")] == GOLD
    (done,) = journal.of_type("http_done")
    assert done.detail["status"] == 200 and done.detail["saved"] == ["tier", "name"]
    assert "s3cret" not in repr(journal.entries)  # the secret stays out of the timeline
    assert result.state is not None and result.state.vars["name"] == "Ada Lovelace"


async def test_a_wrong_token_takes_on_error_with_the_status(crm_url: str) -> None:
    text = CRM_FLOW.read_text(encoding="utf-8").replace("http://127.0.0.1:8099", crm_url)
    http = AiohttpHttp()
    call = ScriptedCall([Press("2")], caller_number="5551234", when_done="hangup")
    journal = ListJournal()
    try:
        result = await run_flow(load_flow(text), call, journal,
                                services=Services(http=http, secrets={"crm_token": "wrong"}))
    finally:
        await http.close()
    assert [e.node for e in journal.of_type("node_entered")][:4] == ["answer", "lookup", "why-no-answer",
                                                                     "unavailable"]
    assert result.state is not None and result.state.vars["http_status"] == 401
