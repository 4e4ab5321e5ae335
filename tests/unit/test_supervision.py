"""Supervision's rules without Asterisk: what each mode does, who may supervise and from where, the
list's shape, and the REST routes' answers (the ARI side is proven by tests/e2e/test_supervision.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivrpowers.acd.definitions import AgentDef
from ivrpowers.acd.supervision import Plan, SupervisionError, may_supervise, plan
from ivrpowers.calls.supervision import Conversation, Watch
from ivrpowers.config import Settings
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.db import Database
from ivrpowers.web.agent_auth import SignedTokens, agent_may
from ivrpowers.web.app import create_app
from ivrpowers.web.supervision_api import who_supervises

CALL = "0b7a9a7e-3f7e-5c1e-9d59-0c7a8f1e2d3c"
API = "api-t0ken"
AGENTS = {"boss": AgentDef(id="boss", name="Boss", endpoint="boss-phone", supervisor=True),
          "ana": AgentDef(id="ana", name="Ana", endpoint="ana-phone", queues={"sales": 0}),
          "chief": AgentDef(id="chief", name="Chief", supervisor=True, capacity={"voice": 0, "video": 0})}


def test_each_mode_says_where_the_supervisor_sits_what_the_agent_hears_and_whether_it_is_heard() -> None:
    assert plan("listen", False) == Plan(in_conversation=False, whisper="none", muted=True)
    assert plan("whisper", False) == Plan(in_conversation=False, whisper="out", muted=False)
    assert plan("barge", False) == Plan(in_conversation=True, whisper="none", muted=False)
    assert plan("watch", True) == Plan(in_conversation=True, whisper="none", muted=True)
    for mode in ("listen", "whisper", "barge"):  # a video call can be heard the same ways
        assert plan(mode, True) == plan(mode, False)


def test_watching_needs_a_picture_and_a_mode_must_be_known() -> None:
    with pytest.raises(SupervisionError) as refused:
        plan("watch", False)
    assert refused.value.status == 409
    with pytest.raises(SupervisionError) as unknown:
        plan("spy", True)
    assert unknown.value.status == 400


def test_only_the_api_token_and_supervisors_may_supervise() -> None:
    assert may_supervise(None, AGENTS)
    assert may_supervise("boss", AGENTS)
    assert not may_supervise("ana", AGENTS)
    assert not may_supervise("nobody", AGENTS)


def test_an_agent_supervises_from_its_own_endpoint_and_the_api_names_one_or_a_supervisor() -> None:
    assert who_supervises("boss", {"mode": "listen"}, AGENTS) == ("boss", "boss-phone")
    assert who_supervises(None, {"endpoint": "desk-7"}, AGENTS) == ("api", "desk-7")
    assert who_supervises(None, {"supervisor": "boss"}, AGENTS) == ("boss", "boss-phone")
    assert who_supervises(None, {"supervisor": "boss", "endpoint": "desk-7"}, AGENTS) == ("boss", "desk-7")
    for agent_id, body, status in [("boss", {"endpoint": "desk-7"}, 403),  # not another phone
                                   ("boss", {"supervisor": "chief"}, 403),  # nor as someone else
                                   (None, {}, 400), (None, {"endpoint": "Not A Name"}, 400),
                                   (None, {"supervisor": "ana"}, 403),  # not a supervisor
                                   (None, {"supervisor": "chief"}, 409)]:  # one with nothing to ring
        with pytest.raises(SupervisionError) as refused:
            who_supervises(agent_id, body, AGENTS)
        assert refused.value.status == status, (agent_id, body)


def test_an_agent_token_reaches_the_supervision_routes_which_then_check_the_supervisor_flag() -> None:
    assert agent_may("ana", "GET", "/api/supervision")
    assert agent_may("ana", "POST", f"/api/supervision/{CALL}")
    assert agent_may("ana", "DELETE", f"/api/supervision/{CALL}")
    assert not agent_may("ana", "DELETE", "/api/supervision")
    assert not agent_may("ana", "PUT", f"/api/supervision/{CALL}")


def test_a_conversation_is_listed_with_its_call_queue_agent_caller_media_and_supervision() -> None:
    since = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    conversation = Conversation(CALL, "sales", "ana", "5551234", True, since.timestamp(), cast(Any, None),
                                cast(Any, None))
    assert conversation.view(None) == {"call_id": CALL, "queue": "sales", "agent": "ana", "caller": "5551234",
                                       "media": "video", "since": since.isoformat(), "supervision": None}
    watch = Watch(CALL, "boss", "boss-phone", "whisper", status="live", started=since)
    assert conversation.view(watch)["supervision"] == {"by": "boss", "endpoint": "boss-phone", "mode": "whisper",
                                                       "status": "live", "started": since.isoformat()}


class Health:
    def health(self) -> dict[str, object]:
        return {"status": "ok", "problems": []}


class FakeSupervision:
    """What the routes ask of `calls.supervision.Supervision`, recorded."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, str, str]] = []
        self.stopped: list[tuple[str, str]] = []

    async def listing(self) -> list[dict[str, Any]]:
        return [{"call_id": CALL, "queue": "sales", "agent": "ana", "caller": "5551234", "media": "audio",
                 "since": None, "supervision": None}]

    async def start(self, call_id: str, mode: str, *, by: str, endpoint: str) -> tuple[dict[str, Any], bool]:
        if mode == "watch":
            raise SupervisionError(409, "watch is for video calls")
        self.started.append((call_id, mode, by, endpoint))
        return {"call_id": call_id, "supervision": {"mode": mode}}, len(self.started) == 1

    async def stop(self, call_id: str, by: str) -> None:
        self.stopped.append((call_id, by))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], FakeSupervision, SignedTokens]]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    tokens, fake = SignedTokens(b"k" * 32), FakeSupervision()
    app = create_app(health=Health(), cdrs=CdrRepository(db), api_token=API, agent_tokens=tokens,
                     supervision=(cast(Any, fake), lambda: AGENTS))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, fake, tokens
    await db.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_routes_serve_supervisors_and_the_api_token_and_refuse_other_agents(
        client: tuple[TestClient[Any, Any], FakeSupervision, SignedTokens]) -> None:
    http, fake, tokens = client
    boss, ana = _bearer(tokens.issue("boss")[0]), _bearer(tokens.issue("ana")[0])
    assert (await http.get("/api/supervision", headers=ana)).status == 403
    listed = await http.get("/api/supervision", headers=boss)
    assert listed.status == 200 and (await listed.json())[0]["call_id"] == CALL

    first = await http.post(f"/api/supervision/{CALL}", json={"mode": "listen"}, headers=boss)
    assert first.status == 202  # rung
    switched = await http.post(f"/api/supervision/{CALL}", json={"mode": "barge"}, headers=boss)
    assert switched.status == 200  # the same supervision, another mode
    assert fake.started == [(CALL, "listen", "boss", "boss-phone"), (CALL, "barge", "boss", "boss-phone")]
    assert (await http.post(f"/api/supervision/{CALL}", json={"mode": "listen"}, headers=ana)).status == 403
    assert (await http.post(f"/api/supervision/{CALL}", json={"mode": "watch"}, headers=boss)).status == 409
    assert (await http.post(f"/api/supervision/{CALL}", json={"mode": "listen", "x": 1}, headers=boss)).status == 400
    for body, charset in ((b"[" * 20_000, "utf-8"), (b'{"mode": "listen"}', "x-no-such-charset")):
        bad = await http.post(f"/api/supervision/{CALL}", data=body,
                              headers={**boss, "Content-Type": f"application/json; charset={charset}"})
        assert (bad.status, await bad.json()) == (400, {"error": "the body is not JSON"})
    assert (await http.post(f"/api/supervision/{CALL}", json={"mode": "listen"}, headers=_bearer(API))).status == 400
    by_api = await http.post(f"/api/supervision/{CALL}", json={"mode": "listen", "endpoint": "desk-7"},
                             headers=_bearer(API))
    assert by_api.status == 200 and fake.started[-1] == (CALL, "listen", "api", "desk-7")
    assert (await http.post("/api/supervision/not-a-call", json={"mode": "listen"}, headers=_bearer(API))).status \
        == 404

    assert (await http.delete(f"/api/supervision/{CALL}", headers=ana)).status == 403
    assert (await http.delete(f"/api/supervision/{CALL}", headers=boss)).status == 202
    assert (await http.delete(f"/api/supervision/{CALL}", headers=_bearer(API))).status == 202
    assert fake.stopped == [(CALL, "boss"), (CALL, "api")]
    assert (await http.get("/api/supervision")).status == 401


async def test_a_watch_is_stopped_by_its_supervisor_or_the_api_and_not_by_another() -> None:
    from ivrpowers.calls.supervision import Supervision

    supervision = Supervision(cast(Any, None), {}, cast(Any, None))
    watch = supervision.watches[CALL] = Watch(CALL, "boss", "boss-phone", "listen")
    with pytest.raises(SupervisionError) as refused:
        await supervision.stop(CALL, "chief")
    assert refused.value.status == 403 and not watch.stop.is_set()
    await supervision.stop(CALL, "api")
    await asyncio.wait_for(watch.stop.wait(), 1)
    with pytest.raises(SupervisionError) as unknown:
        await supervision.stop("another", "api")
    assert unknown.value.status == 404


def test_the_cli_names_a_conversation_by_4_characters_of_its_call_id_or_more(monkeypatch: pytest.MonkeyPatch) -> None:
    from ivrpowers.cli import controller_api, supervise
    from ivrpowers.cli.errors import Invalid, NotFound

    going_on = [{"call_id": "ab12cd34-0000"}, {"call_id": "ab12ef56-0000"}]
    monkeypatch.setattr(controller_api, "call", lambda settings, method, path: going_on)
    settings = Settings()
    assert supervise._call_id(settings, "ab12c") == "ab12cd34-0000"  # as `cdr show` takes it
    with pytest.raises(Invalid, match="at least 4 characters"):
        supervise._call_id(settings, "ab1")
    with pytest.raises(Invalid, match="did you mean ab12cd34-0000 or ab12ef56-0000"):
        supervise._call_id(settings, "ab12")
    with pytest.raises(NotFound):
        supervise._call_id(settings, "ffff")
