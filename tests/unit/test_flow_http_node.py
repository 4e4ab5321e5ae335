"""The `http` node against a real local web service: answers saved, every failure takes on_error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from textwrap import dedent
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivrpowers.calls.services import AiohttpHttp
from ivrpowers.flows import FlowError, Services, load_flow, run_flow
from ivrpowers.flows.simulate import simulate
from ivrpowers.flows.testing import FakeClock, ListJournal, ScriptedCall


class Crm:
    """A CRM with a customer lookup, a slow endpoint, a broken one, one that isn't JSON."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], Any]] = []
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.seen.append((request.method, request.path_qs, dict(request.headers), body))
        if request.path.startswith("/customers/"):
            if request.headers.get("Authorization") != "Bearer s3cret":
                return web.json_response({"error": "who are you"}, status=401)
            return web.json_response({"customer": {"tier": "gold", "name": "Ana"}, "open": [{"id": 7}]})
        if request.path == "/slow":
            await self.release.wait()
        if request.path == "/broken":
            return web.json_response({"error": "boom"}, status=503)
        if request.path == "/text":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        return web.json_response({"ok": True, "echo": body})

    def url(self, path: str) -> str:
        return str(self.server.make_url("/")).rstrip("/") + path  # unquoted: it may hold {{ templates }}


@pytest.fixture
async def crm() -> AsyncIterator[Crm]:
    server = Crm()
    await server.server.start_server()
    yield server
    server.release.set()
    await server.server.close()


def lookup(url: str, **extra: Any) -> str:
    fields = "".join(f"\n        {k}: {v}" for k, v in extra.items())
    return dedent(f"""
    name: crm
    start: look
    nodes:
      look:
        type: http
        url: "{url}"
        headers: {{Authorization: "Bearer {{{{ secrets.crm_token }}}}"}}
        save: {{tier: customer.tier, ticket: open.0.id, nothing: customer.none.deeper}}
        next: ok
        on_error: fallback{fields}
      ok: {{type: play, media: ["sound:{{{{ vars.tier }}}}"]}}
      fallback: {{type: play, media: ["sound:sorry-{{{{ vars.http_status }}}}"]}}
    """)


async def run(text: str, secrets: dict[str, str] | None = None) -> tuple[Any, ListJournal]:
    http = AiohttpHttp()
    try:
        journal = ListJournal()
        result = await run_flow(load_flow(text), ScriptedCall(caller_number="5551234"), journal, services=Services(
            clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)), http=http,
            secrets={"crm_token": "s3cret"} if secrets is None else secrets))
        return result, journal
    finally:
        await http.close()


async def test_the_answer_fills_variables_by_dotted_path(crm: Crm) -> None:
    result, journal = await run(lookup(crm.url("/customers/{{ caller.number }}")))
    assert result.state.vars == {"http_status": 200, "tier": "gold", "ticket": 7, "nothing": None}
    assert crm.seen[0][:2] == ("GET", "/customers/5551234")
    assert crm.seen[0][2]["Authorization"] == "Bearer s3cret"
    done = journal.of_type("http_done")[0].detail
    assert done["status"] == 200 and "{{ caller.number }}" in done["url"] and done["saved"] == ["tier", "ticket",
                                                                                                 "nothing"]
    assert "s3cret" not in repr(journal.entries)  # the secret never reaches the timeline


async def test_a_post_body_is_json_whose_strings_are_templates(crm: Crm) -> None:
    text = lookup(crm.url("/tickets"), method="POST",
                  body='{caller: "{{ caller.number }}", tags: ["ivr", "{{ flow.name }}"], n: 2}')
    result, _ = await run(text)
    assert crm.seen[0][0] == "POST" and crm.seen[0][3] == {"caller": "5551234", "tags": ["ivr", "crm"], "n": 2}
    assert result.state.vars["http_status"] == 200


@pytest.mark.parametrize(("path", "status", "problem"), [
    ("/broken", 503, "HTTP 503"),
    ("/text", 200, "the answer is not JSON"),
    ("/customers/x", 401, "HTTP 401"),
])
async def test_a_bad_answer_takes_on_error_with_the_status(crm: Crm, path: str, status: int, problem: str) -> None:
    result, journal = await run(lookup(crm.url(path)), secrets={"crm_token": "wrong"})
    assert result.state.vars["http_status"] == status
    assert [e.node for e in journal.of_type("node_entered")] == ["look", "fallback"]
    assert journal.of_type("http_failed")[0].detail["problem"] == problem


async def test_a_slow_service_is_cut_off_by_the_timeout_and_retried(crm: Crm) -> None:
    result, journal = await run(lookup(crm.url("/slow"), timeout=0.2, retries=1))
    failures = journal.of_type("http_failed")
    assert [f.detail["attempt"] for f in failures] == [1, 2]
    assert "no answer within 0.2s" in failures[0].detail["problem"]
    assert "http_status" not in result.state.vars
    assert [e.node for e in journal.of_type("node_entered")][-1] == "fallback"


async def test_a_refused_connection_and_a_missing_secret_take_on_error() -> None:
    result, journal = await run(lookup("http://127.0.0.1:9/x"))
    assert "http_failed" in journal.types() and result.outcome == "hangup_by_flow"
    _, journal = await run(lookup("http://127.0.0.1:9/x"), secrets={})
    assert "no flow secret named crm_token" in journal.of_type("http_failed")[0].detail["problem"]


def test_secrets_only_in_requests_and_urls_must_be_http() -> None:
    with pytest.raises(FlowError) as raised:
        load_flow(dedent("""
        name: bad
        start: a
        nodes:
          a: {type: http, url: "ftp://x", next: b, save: {t: "a..b"}}
          b: {type: play, media: ["sound:{{ secrets.crm_token }}"]}
        """))
    text = str(raised.value)
    assert "'ftp://x' is not an http:// or https:// URL" in text
    assert "'a..b' is not a dotted path" in text
    assert "secrets may be used only in an http node" in text


async def test_the_simulator_answers_from_a_fixture() -> None:
    from ivrpowers.flows.simulate import FixtureHttp

    fixture = FixtureHttp({"GET https://crm.example/customers/5551234": {"status": 200, "body": {
        "customer": {"tier": "silver"}}}})
    result = await simulate(load_flow(lookup("https://crm.example/customers/{{ caller.number }}")),
                            http=fixture, caller_number="5551234", secrets={"crm_token": "t"})
    assert result.vars["tier"] == "silver" and result.prompts == ["sound:silver"]
    missing = await simulate(load_flow(lookup("https://crm.example/other")), http=fixture, secrets={"crm_token": "t"})
    assert missing.prompts == ["sound:sorry-"] and "not in the HTTP fixture" in str(missing.events)
