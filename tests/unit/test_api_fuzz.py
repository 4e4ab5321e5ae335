"""The REST API fuzzed from the OpenAPI document it serves (schemathesis).

With the token, every operation the document lists answers without a 5xx and as the document says
(status codes, content type, body schema), and refuses what the document calls invalid with a 4xx.
Without the token, or with a wrong one, every authenticated operation answers 401, whatever else
the request holds.

The operations come from the served document, not a list here: a route registered with the `Api`
later is fuzzed as it lands. Hypothesis runs derandomized (the same cases on every run, so CI is
reproducible) with a bounded number of examples per operation.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation, BaseSchema
from sqlalchemy import event
from yarl import URL

from ivrpowers.acd.definitions import AgentDef, QueueDef
from ivrpowers.calls.acd_service import AcdService
from ivrpowers.chats.service import ChatService
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.chats import ChatRepository
from ivrpowers.store.db import Database
from ivrpowers.store.migrate import upgrade
from ivrpowers.web.app import create_app

Operation = APIOperation[Any, Any, Any, Any]
TOKEN = "fuzz-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# What a client without the token may send: nothing, another token, the token in another scheme,
# the token with a character more or one less, the scheme in lower case.
NOT_THE_TOKEN: list[dict[str, str]] = [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"bearer {TOKEN}"},
]
# Path parameters that name what the fixture stored, so that operations on one thing also reach
# past its 404. A parameter not named here (a route added later) is generated like any other.
STORED = {"call_id": "call-1", "name": "sales", "agent_id": "ana"}
EXAMPLES = 15  # per operation and generation mode, with the token
UNAUTHENTICATED_EXAMPLES = 3  # per operation and generation mode, each sent with every header above


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ok", "problems": []}


@dataclass
class Served:
    url: str
    acd: AcdRepository
    db: Database


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The whole app (calls, ACD definitions, the running ACD without Asterisk) on a loopback port,
    with what `STORED` names stored."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    cdrs, acd = CdrRepository(db), AcdRepository(db)
    await cdrs.start(id=STORED["call_id"], channel_id="chan-1", caller_number="5551234", dialed="100",
                     started_at=datetime(2026, 1, 1, tzinfo=UTC))
    await acd.put_queue(QueueDef(name=STORED["name"], channels=["voice", "chat"]))
    await acd.put_agent(AgentDef(id=STORED["agent_id"], name="Ana", endpoint="agent1", queues={STORED["name"]: 0}))
    runtime = AcdService(acd, AcdStateRepository(db), "ctl-fuzz")
    await runtime.start()
    runtime.agent_event(STORED["agent_id"], "login")  # so that a chat can be created (201), not only refused
    chats = ChatService(ChatRepository(db), runtime)
    await chats.start()
    app = create_app(health=Health(), cdrs=cdrs, api_token=TOKEN, acd=acd, acd_runtime=runtime, chats=chats)
    async with TestServer(app, host="127.0.0.1") as server:
        yield Served(str(server.make_url("")).rstrip("/"), acd, db)
    await chats.close()
    await runtime.close()
    await db.close()


def served_schema(base_url: str) -> BaseSchema:
    # The whole configuration is here: no schemathesis.toml in the working directory changes the run.
    config = schemathesis.Config.from_dict({
        "generation": {
            # The test sends the token itself (or not, or a wrong one).
            "with-security-parameters": False,
            # Unknown query parameters are ignored by design, as most HTTP APIs do (cache busters).
            "allow-extra-parameters": False,
        },
        "checks": {
            # A body the document calls valid may still break a rule no JSON Schema can state (an
            # agent's queues must exist, relaxation steps come in order): a documented 422, not a fault.
            "positive_data_acceptance": {"enabled": False},
            # Invalid data is refused with any 4xx (a websocket's 426 too): whether the operation
            # documents it is status_code_conformance's to check, a 5xx not_a_server_error's.
            "negative_data_rejection": {"expected-statuses": ["4XX", "5XX"]},
        },
    })
    return schemathesis.openapi.from_url(f"{base_url}/api/openapi.json", config=config)


def operations(schema: BaseSchema) -> list[Operation]:
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation schemathesis cannot read: the document is at fault
            raise result.err()
        found.append(result.ok())
    return found


def needs_token(schema: BaseSchema, operation: Operation) -> bool:
    raw = schema.raw_schema
    return bool(raw["paths"][operation.path][operation.method.lower()].get("security", raw.get("security")))


@dataclass
class Run:
    """What a pass over the operations found: failures by operation, and the statuses answered."""

    failures: list[str] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)

    def fuzz(self, operation: Operation, examples: int, send: Callable[[Case[Any]], int],
             path_parameters: dict[str, str] | None = None) -> None:
        statuses = self.statuses.setdefault(operation.label, Counter())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
            @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
            def run(case: Case[Any]) -> None:
                statuses[send(case)] += 1

            try:
                run()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:  # a document with no valid request is wrong
                    raise
                # Negative: nothing the document constrains is left to break (no parameters, no body).
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports an exception group
                pinned = f" with {path_parameters}" if path_parameters else ""
                self.failures.append(f"{operation.label} ({mode.value}{pinned}): {exc}")


def fuzz_with_token(base_url: str) -> Run:
    schema = served_schema(base_url)
    session = requests.Session()

    def send(case: Case[Any]) -> int:
        return case.call_and_validate(base_url=base_url, session=session, headers=AUTH).status_code

    run = Run()
    # First with the stored ids, deletions last so the others still find what they name.
    for operation in sorted(operations(schema), key=lambda op: op.method.upper() == "DELETE"):
        stored = {p.name: STORED[p.name] for p in operation.path_parameters if p.name in STORED}
        if stored:
            run.fuzz(operation, EXAMPLES, send, stored)
    for operation in operations(schema):
        run.fuzz(operation, EXAMPLES, send)
    return run


def fuzz_without_token(base_url: str) -> Run:
    schema = served_schema(base_url)
    session = requests.Session()

    def send(case: Case[Any]) -> int:
        for headers in NOT_THE_TOKEN:
            response = case.call(base_url=base_url, session=session, headers=headers)
            answer = (response.status_code, response.headers.get("www-authenticate"),
                      response.headers.get("content-type", [""])[0].split(";")[0])
            assert answer == (401, ["Bearer"], "application/json"), (
                f"{case.as_curl_command(headers=headers)} answered {answer}: {response.text[:200]}")
        return 401

    run = Run()
    for operation in operations(schema):
        if needs_token(schema, operation):
            run.fuzz(operation, UNAUTHENTICATED_EXAMPLES, send)
    return run


async def test_every_operation_with_the_token_answers_as_documented_and_never_5xx(served: Served) -> None:
    started = time.monotonic()
    run = await asyncio.to_thread(fuzz_with_token, served.url)
    print(f"\n{len(run.statuses)} operations fuzzed with the token in {time.monotonic() - started:.1f} s")
    for label, statuses in run.statuses.items():
        print(f"  {label}: {dict(sorted(statuses.items()))}")
    assert not run.failures, "\n\n".join(run.failures)
    # The calls and ACD routes at least: a document that lost them would fuzz nothing.
    assert len(run.statuses) >= 14
    # Meaningful: the fuzzing got past the 4xx (stored, replaced, deleted, acted on) somewhere.
    assert sum(n for statuses in run.statuses.values() for status, n in statuses.items() if status < 300) > 100


async def test_every_authenticated_operation_answers_401_without_the_token(served: Served) -> None:
    started = time.monotonic()
    run = await asyncio.to_thread(fuzz_without_token, served.url)
    print(f"\n{len(run.statuses)} authenticated operations fuzzed without the token in "
          f"{time.monotonic() - started:.1f} s, {sum(sum(s.values()) for s in run.statuses.values())} cases")
    assert not run.failures, "\n\n".join(run.failures)
    assert len(run.statuses) >= 12


# Requests the generator seldom or never makes, each of which once had a 5xx or a wrong answer:
# (method, path as sent, body, headers, status).
ODD: dict[str, tuple[str, str, bytes | None, dict[str, str], int]] = {
    # LookupError from decoding with a charset Python does not know: 500.
    "unknown charset": ("PUT", "/api/queues/q2", b"{}", {"Content-Type": "application/json; charset=nope"}, 400),
    # RecursionError from json.loads: 500.
    "arrays nested 50000 deep": ("PUT", "/api/queues/q2", b"[" * 50_000, {}, 400),
    # '²'.isdigit() is true and int('²') raises ValueError: 500.
    "a superscript digit as limit": ("GET", "/api/calls?limit=%C2%B2", None, {}, 400),
    # Was 200, and then PostgreSQL refused the agent event's reason: the ACD's state saves failed for good.
    "NUL in a pause reason": ("POST", "/api/agents/ana/pause", b'{"reason": "a\\u0000b"}', {}, 422),
    # aiohttp's own 413 was text/plain where the document says JSON.
    "a body over the limit": ("PUT", "/api/queues/q2", b"{" + b" " * 70_000 + b"}", {}, 413),
    # Was taken as force=false.
    "force neither true nor false": ("DELETE", "/api/queues/sales?force=yes", None, {}, 400),
    # JSON has one kind of number: 30.0 is the integer the document asks for (was 422).
    "a whole number written 30.0": ("PUT", "/api/queues/sales", b'{"ring_timeout": 30.0}', {}, 200),
}


@pytest.mark.parametrize("name", list(ODD))
async def test_odd_requests_get_a_documented_json_answer(served: Served, name: str) -> None:
    method, path, body, headers, status = ODD[name]
    async with aiohttp.ClientSession() as http, http.request(
            method, URL(served.url + path, encoded=True), data=body, headers={**AUTH, **headers}) as resp:
        answer = await resp.json()
        assert (resp.status, resp.content_type) == (status, "application/json"), answer
    assert ("error" in answer) == (status >= 400), answer


async def test_a_queue_stored_behind_the_running_acd_is_shown_not_a_500(served: Served) -> None:
    # As `ivrpowers queue create` does: into the database, while the controller's ACD has not taken it.
    await served.acd.put_queue(QueueDef(name="late"))
    async with aiohttp.ClientSession() as http, http.get(f"{served.url}/api/queues/late/now", headers=AUTH) as resp:
        assert resp.status == 200 and (await resp.json())["waiting"] == 0


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/queues/%00"), ("DELETE", "/api/queues/%00"), ("GET", "/api/agents/a%00"),
    ("DELETE", "/api/agents/%00"), ("GET", "/api/agents/%00/state"), ("POST", "/api/agents/%00/login"),
    ("GET", "/api/queues/%00/now"), ("GET", "/api/calls/call%00"),
])
async def test_a_nul_in_a_path_is_a_404_that_never_reaches_the_database(served: Served, method: str,
                                                                        path: str) -> None:
    # PostgreSQL refuses a NUL in text: such a lookup was a 500 there (SQLite takes it and finds nothing).
    with_nul: list[object] = []

    def statement(conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool) -> None:
        values = parameters.values() if isinstance(parameters, dict) else parameters or ()
        with_nul.extend(v for v in values if isinstance(v, str) and "\x00" in v)

    event.listen(served.db.engine.sync_engine, "before_cursor_execute", statement)
    try:
        async with aiohttp.ClientSession() as http, http.request(
                method, URL(served.url + path, encoded=True), headers=AUTH) as resp:
            assert resp.status == 404 and "error" in await resp.json()
    finally:
        event.remove(served.db.engine.sync_engine, "before_cursor_execute", statement)
    assert with_nul == []
