"""The flow language on the real Asterisk: gather, branch on business hours, http, subflow, versions
pinned across a publish, adoption after a controller crash, and the simulator agreeing with a call.

Each test writes the flows it needs (names `itest-lang-*`), imports and publishes them, and routes a
number of its own to them: 301-311 for the SQLite controller, 351-361 for the PostgreSQL one, with
caller numbers 831NN / 832NN, so neither the two variants nor the tests mix their CDRs.

One test is an expected failure (strict): a publish is not seen by the first call to an already
routed number after it, see its reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from .conftest import AsteriskUnderTest, ControllerUnderTest
from .sipp import Dtmf, ExpectHangup, Pause, SippCall, free_tcp_port, run_call_async

pytestmark = pytest.mark.integration


# -- helpers ---------------------------------------------------------------------------------------


def number(controller: ControllerUnderTest, n: int) -> str:
    """The dialed number test `n` routes to its flow, one per controller variant."""
    return str((300 if controller.kind == "sqlite" else 350) + n)


def caller(controller: ControllerUnderTest, n: int) -> str:
    return f"83{1 if controller.kind == 'sqlite' else 2}{n:02d}"


def install(controller: ControllerUnderTest, tmp_path: Path, name: str, source: str,
            route: str | None = None) -> dict[str, Any]:
    """Import `source` as flow `name` and publish it (and route `route` to it): the stored version."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(source)
    stored = json.loads(controller.ivrpowers("flow", "import", str(path), "--publish", "--json").stdout)
    assert stored["name"] == name and stored["live_version"] == stored["version"], stored
    if route is not None:
        controller.ivrpowers("route", "set", route, name)
    return stored


async def place(asterisk: AsteriskUnderTest, call: SippCall, timeout: float = 40) -> None:
    result = await run_call_async(call, target=asterisk.sip_target, timeout=timeout)
    assert result.ok, result.describe()


def events(cdr: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in cdr["events"] if e["type"] == type_]


def one(cdr: dict[str, Any], type_: str) -> dict[str, Any]:
    found = events(cdr, type_)
    assert len(found) == 1, f"{len(found)} {type_} events: {found}\n{types(cdr)}"
    return found[0]


def types(cdr: dict[str, Any]) -> list[str]:
    return [e["type"] for e in cdr["events"]]


def path(cdr: dict[str, Any]) -> list[str]:
    return [e["node"] for e in events(cdr, "node_entered")]


def digits(cdr: dict[str, Any]) -> str:
    return "".join(e["detail"]["digit"] for e in events(cdr, "dtmf_received"))


def media(cdr: dict[str, Any], node: str) -> list[list[str]]:
    return [e["detail"]["media"] for e in events(cdr, "prompt_played") if e["node"] == node]


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"])


def vars_at(cdr: dict[str, Any], upto: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's variables after event `upto` (default: at the end), folded from the state deltas
    the timeline carries (`flows.state`: each delta holds the whole `vars` when they changed)."""
    found: dict[str, Any] = {}
    for event in cdr["events"]:
        delta = event["detail"].get("state")
        if isinstance(delta, dict) and "vars" in delta:
            found = delta["vars"]
        if event is upto:
            break
    return found


def assert_completed(cdr: dict[str, Any]) -> None:
    assert cdr["disposition"] == "completed", (cdr["disposition"], types(cdr))
    assert one(cdr, "flow_ended")["detail"]["reason"] == "hangup_by_flow"
    assert events(cdr, "hangup")[-1]["detail"]["by"] == "flow"
    assert not events(cdr, "error")
    stamps = [e["at"] for e in cdr["events"]]
    assert stamps == sorted(stamps), "timeline out of order"


# -- 1, 2: gather ------------------------------------------------------------------------------------

GATHER = """
name: @NAME@
start: answer
nodes:
  answer: {type: answer, next: account}
  account:
    type: gather
    var: account
    min_digits: 3
    max_digits: 8
    terminator: "#"
    timeout: 6
    digit_timeout: @DIGIT_TIMEOUT@
    next: readback
    on_timeout: bye
    on_invalid: bye
  readback: {type: play, media: "digits:{{ vars.account }}", next: hangup}
  bye: {type: play, media: sound:goodbye, next: hangup}
  hangup: {type: hangup}
"""


def gather_flow(name: str, digit_timeout: float) -> str:
    return GATHER.replace("@NAME@", name).replace("@DIGIT_TIMEOUT@", str(digit_timeout))


async def test_gather_ends_at_the_terminator_and_plays_the_digits_back(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    dialed, who = number(controller, 1), caller(controller, 1)
    install(controller, tmp_path, "itest-lang-gather-hash", gather_flow("itest-lang-gather-hash", 4), dialed)
    await place(asterisk, SippCall(dialed, who, steps=[Pause(0.5), Dtmf("1234#"), ExpectHangup(15)]))

    cdr = await controller.wait_cdr(who)
    assert cdr["flow"] == "itest-lang-gather-hash"
    assert path(cdr) == ["answer", "account", "readback", "hangup"]
    assert [(e["node"], e["detail"]["digit"]) for e in events(cdr, "dtmf_received")] == [
        ("account", d) for d in "1234#"]
    completed = one(cdr, "gather_completed")
    assert completed["node"] == "account"
    assert {k: v for k, v in completed["detail"].items() if k != "state"} == {"var": "account", "length": 4}
    assert vars_at(cdr, completed) == {"account": "1234"}  # the terminator is not stored
    # The "#" ended the input at once, not the 4 s inter-digit timeout.
    hash_key = events(cdr, "dtmf_received")[-1]
    assert (at(completed) - at(hash_key)).total_seconds() < 2
    assert media(cdr, "readback") == [["digits:1234"]]
    assert "interrupted_by" not in one(cdr, "prompt_played")["detail"]
    assert not events(cdr, "gather_timeout") and not events(cdr, "gather_invalid")
    assert_completed(cdr)


async def test_gather_ends_when_the_inter_digit_timeout_passes(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    dialed, who = number(controller, 2), caller(controller, 2)
    install(controller, tmp_path, "itest-lang-gather-pause", gather_flow("itest-lang-gather-pause", 1.5), dialed)
    # No terminator: after "987" the caller just waits (for the flow to read it back and hang up).
    await place(asterisk, SippCall(dialed, who, steps=[Pause(0.5), Dtmf("987"), ExpectHangup(15)]))

    cdr = await controller.wait_cdr(who)
    assert path(cdr) == ["answer", "account", "readback", "hangup"]
    assert digits(cdr) == "987"
    completed = one(cdr, "gather_completed")
    assert completed["detail"]["length"] == 3 and vars_at(cdr, completed) == {"account": "987"}
    waited = (at(completed) - at(events(cdr, "dtmf_received")[-1])).total_seconds()
    assert 1.4 <= waited < 3.0, f"input ended {waited:.2f}s after the last digit, digit_timeout is 1.5s"
    assert media(cdr, "readback") == [["digits:987"]]
    assert_completed(cdr)


# -- 3: business hours -------------------------------------------------------------------------------

HOURS = """
name: itest-lang-hours
timezone: @TZ@
calendars:
  open-now:
    hours: @OPEN_HOURS@
  closed-today:
    hours: {mon-sun: "00:00-24:00"}
    closed: @CLOSED@
start: answer
nodes:
  answer: {type: answer, next: holiday}
  holiday:
    type: branch
    cases:
      - {when: 'open("closed-today")', next: holiday-open}
    default: hours
  hours:
    type: branch
    cases:
      - {when: 'open("open-now")', next: open}
    default: closed
  open: {type: play, media: sound:beep, next: hangup}
  closed: {type: play, media: sound:goodbye, next: hangup}
  holiday-open: {type: play, media: sound:goodbye, next: hangup}
  hangup: {type: hangup}
"""

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def hours_flow(tz: str) -> str:
    """Calendars made from the controller's clock (the same machine's): `open-now` from a minute ago
    to an hour from now, today in `tz`; `closed-today` open all week but closed today (and
    tomorrow, in case the call crosses midnight)."""
    now = datetime.now(ZoneInfo(tz))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = (now - midnight).total_seconds() / 60
    start, end = max(0, int(minutes) - 1), min(24 * 60, int(minutes) + 60)
    open_hours = {DAYS[now.weekday()]: f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"}
    if end - minutes < 10:  # just before midnight: go on into tomorrow
        open_hours[DAYS[(now.weekday() + 1) % 7]] = "00:00-01:00"
    closed = [now.date().isoformat(), (now + timedelta(days=1)).date().isoformat()]
    return (HOURS.replace("@TZ@", tz).replace("@OPEN_HOURS@", json.dumps(open_hours))
            .replace("@CLOSED@", json.dumps(closed)))


async def test_branch_on_business_hours_uses_the_real_clock_in_the_flows_time_zone(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    dialed, who = number(controller, 3), caller(controller, 3)
    # Kolkata is UTC+05:30 all year: hours read in UTC (or the controller's zone) would be closed.
    install(controller, tmp_path, "itest-lang-hours", hours_flow("Asia/Kolkata"), dialed)
    await place(asterisk, SippCall(dialed, who, steps=[ExpectHangup(15)]))

    cdr = await controller.wait_cdr(who)
    taken = {e["node"]: {k: v for k, v in e["detail"].items() if k != "state"} for e in events(cdr, "branch_taken")}
    assert taken == {
        "holiday": {"case": "default", "next": "hours"},  # closed today: the holiday is honoured
        "hours": {"case": 0, "when": 'open("open-now")', "next": "open"},  # within today's hours, now
    }
    assert path(cdr) == ["answer", "holiday", "hours", "open", "hangup"]
    assert_completed(cdr)


# -- 4: http -----------------------------------------------------------------------------------------

HTTP = """
name: itest-lang-http
start: answer
nodes:
  answer: {type: answer, next: lookup}
  lookup:
    type: http
    method: POST
    url: "@BASE@/customers/{{ caller.number }}"
    headers: {X-Dialed: "{{ dialed }}"}
    body: {caller: "{{ caller.number }}", channel: ivr}
    timeout: 2
    save: {account: customer.account, tier: customer.tier, first: items.0.id, nothing: customer.nope}
    next: readback
    on_error: lookup-failed
  readback: {type: play, media: "digits:{{ vars.account }}", next: slow}
  slow:
    type: http
    url: "@BASE@/slow"
    timeout: 1
    save: {late: answer}
    next: unexpected
    on_error: broken
  broken:
    type: http
    url: "@BASE@/broken"
    timeout: 2
    retries: 1
    next: unexpected
    on_error: status
  status:
    type: branch
    cases:
      - {when: "vars.http_status == 500", next: text}
    default: unexpected
  text:
    type: http
    url: "@BASE@/text"
    timeout: 2
    save: {text: anything}
    next: unexpected
    on_error: done
  done: {type: play, media: sound:beep, next: hangup}
  lookup-failed: {type: play, media: sound:goodbye, next: hangup}
  unexpected: {type: play, media: sound:goodbye, next: hangup}
  hangup: {type: hangup}
"""


class WebService:
    """A web service on loopback for the controller's http nodes: records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.release = asyncio.Event()  # ends /slow early at teardown

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, dict(request.headers), body))
        if request.path.startswith("/customers/"):
            caller_number = request.path.rsplit("/", 1)[1]
            return web.json_response({"customer": {"account": "4321", "tier": "gold", "number": caller_number},
                                      "items": [{"id": "first-item"}, {"id": "second"}]})
        if request.path == "/slow":
            try:
                await asyncio.wait_for(self.release.wait(), 4)
            except TimeoutError:
                pass
            return web.json_response({"answer": "too late"})
        if request.path == "/broken":
            return web.json_response({"error": "down"}, status=500)
        if request.path == "/text":
            return web.Response(text="<html>not json</html>", content_type="text/html")
        return web.Response(status=404)


@pytest.fixture
async def web_service() -> AsyncIterator[tuple[WebService, str]]:
    service = WebService()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_tcp_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield service, f"http://127.0.0.1:{port}"
    finally:
        service.release.set()
        await runner.cleanup()


async def test_http_nodes_save_values_and_take_on_error_for_timeouts_5xx_and_non_json(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path,
    web_service: tuple[WebService, str],
) -> None:
    service, base = web_service
    dialed, who = number(controller, 4), caller(controller, 4)
    install(controller, tmp_path, "itest-lang-http", HTTP.replace("@BASE@", base), dialed)
    await place(asterisk, SippCall(dialed, who, steps=[ExpectHangup(20)]))

    cdr = await controller.wait_cdr(who)
    assert path(cdr) == ["answer", "lookup", "readback", "slow", "broken", "status", "text", "done", "hangup"]
    # What the service received: the templates rendered with the call's values.
    assert [(m, p) for m, p, _, _ in service.requests] == [
        ("POST", f"/customers/{who}"), ("GET", "/slow"), ("GET", "/broken"), ("GET", "/broken"), ("GET", "/text")]
    _, _, headers, body = service.requests[0]
    assert headers["X-Dialed"] == dialed and body == {"caller": who, "channel": "ivr"}

    # Success: the dotted paths saved (one leading nowhere: null), and said to the caller.
    done = one(cdr, "http_done")
    assert done["node"] == "lookup" and done["detail"]["status"] == 200
    assert done["detail"]["url"] == f"{base}/customers/{{{{ caller.number }}}}"  # as written, not rendered
    assert vars_at(cdr, done) == {"account": "4321", "tier": "gold", "first": "first-item", "nothing": None,
                                  "http_status": 200}
    assert media(cdr, "readback") == [["digits:4321"]]

    failed = {}
    for event in events(cdr, "http_failed"):
        failed.setdefault(event["node"], []).append(event)
    assert sorted(failed) == ["broken", "slow", "text"]
    # Past its timeout: no answer, no status, nothing saved.
    (slow,) = failed["slow"]
    assert "no answer within 1s" in slow["detail"]["problem"], slow
    assert 900 <= slow["detail"]["ms"] < 2500, slow
    assert "http_status" not in vars_at(cdr, slow) and "late" not in vars_at(cdr, slow)
    # A 500: retried once (5xx are), then on_error with the status in vars.http_status.
    assert [(e["detail"]["attempt"], e["detail"]["problem"]) for e in failed["broken"]] == [
        (1, "HTTP 500"), (2, "HTTP 500")]
    assert vars_at(cdr, failed["broken"][-1])["http_status"] == 500
    status = one(cdr, "branch_taken")
    assert status["node"] == "status" and status["detail"]["next"] == "text"
    # A 200 that is not JSON: on_error, nothing saved.
    (text,) = failed["text"]
    assert text["detail"]["problem"] == "the answer is not JSON" and text["detail"]["attempt"] == 1
    final = vars_at(cdr)
    assert final["http_status"] == 200 and "text" not in final and final["account"] == "4321"
    assert_completed(cdr)


# -- 5: subflow --------------------------------------------------------------------------------------

SUB_MAIN = """
name: itest-lang-main
start: answer
nodes:
  answer: {type: answer, next: remember}
  remember: {type: set, vars: {origin: "flow.name"}, next: ask}
  ask: {type: subflow, flow: itest-lang-ask, next: after}
  after: {type: play, media: "digits:{{ vars.choice }}", next: hangup}
  hangup: {type: hangup}
"""

SUB_ASK = """
name: itest-lang-ask
start: choose
nodes:
  choose:
    type: gather
    prompt: sound:beep
    var: choice
    max_digits: 1
    timeout: 5
    next: note
    on_timeout: note
  note: {type: set, vars: {chosen_in: "flow.name", seen: "vars.origin"}}
"""


async def test_subflow_gathers_and_returns_to_the_main_flows_next(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    dialed, who = number(controller, 5), caller(controller, 5)
    sub = install(controller, tmp_path, "itest-lang-ask", SUB_ASK)
    install(controller, tmp_path, "itest-lang-main", SUB_MAIN, dialed)
    # The digit after the subflow's beep (0.4 s).
    await place(asterisk, SippCall(dialed, who, steps=[Pause(1.5), Dtmf("7"), ExpectHangup(15)]))

    cdr = await controller.wait_cdr(who)
    assert cdr["flow"] == "itest-lang-main"
    entered = [(e["node"], e["detail"].get("flow")) for e in events(cdr, "node_entered")]
    assert entered == [("answer", None), ("remember", None), ("ask", None), ("choose", "itest-lang-ask"),
                       ("note", "itest-lang-ask"), ("after", None), ("hangup", None)]
    into = one(cdr, "subflow_entered")
    assert into["node"] == "ask"
    assert {k: v for k, v in into["detail"].items() if k != "state"} == {
        "flow": "itest-lang-ask", "version": sub["version"]}
    out = one(cdr, "subflow_left")
    assert out["node"] == "note"
    assert {k: v for k, v in out["detail"].items() if k != "state"} == {"flow": "itest-lang-ask", "next": "after"}
    assert types(cdr).index("subflow_entered") < types(cdr).index("gather_completed") < types(cdr).index(
        "subflow_left")
    assert one(cdr, "gather_completed")["node"] == "choose" and digits(cdr) == "7"
    # One set of variables: the subflow sees the main flow's, the main flow the subflow's.
    assert vars_at(cdr) == {"origin": "itest-lang-main", "choice": "7", "chosen_in": "itest-lang-ask",
                            "seen": "itest-lang-main"}
    assert media(cdr, "choose") == [["sound:beep"]] and media(cdr, "after") == [["digits:7"]]
    assert_completed(cdr)


# -- 6: a publish mid-call ---------------------------------------------------------------------------

LIVE = """
name: @NAME@
start: answer
nodes:
  answer: {type: answer, next: menu}
  menu:
    type: menu
    prompt: @PROMPT@
    options: {"1": @TARGET@}
    timeout: 30
    retries: 0
    on_timeout: hangup
    on_invalid: hangup
  @TARGET@: {type: play, media: @MEDIA@, next: hangup}
  hangup: {type: hangup}
"""

V1 = {"@PROMPT@": "sound:beep", "@TARGET@": "old-path", "@MEDIA@": "sound:beep"}
V2 = {"@PROMPT@": "sound:hello-world", "@TARGET@": "new-path", "@MEDIA@": "sound:goodbye"}


def live_flow(name: str, version: dict[str, str]) -> str:
    source = LIVE.replace("@NAME@", name)
    for placeholder, value in version.items():
        source = source.replace(placeholder, value)
    return source


def assert_ran(cdr: dict[str, Any], stored: dict[str, Any], version: dict[str, str]) -> None:
    """The call ran that stored version, whole: its prompt, its path, its media."""
    target = version["@TARGET@"]
    assert (cdr["flow_version"], path(cdr)) == (stored["version"], ["answer", "menu", target, "hangup"]), (
        f"expected v{stored['version']}; the call ran v{cdr['flow_version']}, path {path(cdr)}")
    assert one(cdr, "menu_selected")["detail"] == {"digit": "1", "next": target}
    assert media(cdr, "menu") == [[version["@PROMPT@"]]] and media(cdr, target) == [[version["@MEDIA@"]]]
    assert_completed(cdr)


async def test_a_publish_mid_call_leaves_the_running_call_on_its_version(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    dialed, other = number(controller, 6), number(controller, 10)
    first, second = caller(controller, 6), caller(controller, 10)
    v1 = install(controller, tmp_path, "itest-lang-live", live_flow("itest-lang-live", V1), dialed)
    controller.ivrpowers("route", "set", other, "itest-lang-live")  # not dialed before the publish
    # The first caller waits in v1's menu (30 s) while v2 is published and a second call runs whole:
    # 20 s, as a publish and a call took over 9 s on a loaded machine.
    running = asyncio.create_task(place(asterisk, SippCall(
        dialed, first, steps=[Pause(20.0), Dtmf("1"), ExpectHangup(15)]), timeout=50))
    await controller.wait_event(first, "node_entered", "menu")
    v2 = await asyncio.to_thread(install, controller, tmp_path, "itest-lang-live", live_flow("itest-lang-live", V2))
    assert v2["version"] == v1["version"] + 1
    # A new call while the first still waits in v1's menu: the two run side by side, each its own.
    await place(asterisk, SippCall(other, second, steps=[Pause(2.0), Dtmf("1"), ExpectHangup(15)]))
    so_far = await controller.wait_event(first, "node_entered", "menu")
    assert so_far["ended_at"] is None and not events(so_far, "menu_selected"), types(so_far)
    await running

    assert_ran(await controller.wait_cdr(first), v1, V1)
    assert_ran(await controller.wait_cdr(second), v2, V2)


async def test_a_call_placed_well_after_a_publish_runs_the_new_version(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    dialed, first, second = number(controller, 11), caller(controller, 11), caller(controller, 21)
    v1 = install(controller, tmp_path, "itest-lang-fresh", live_flow("itest-lang-fresh", V1), dialed)
    running = asyncio.create_task(place(asterisk, SippCall(
        dialed, first, steps=[Pause(4.0), Dtmf("1"), ExpectHangup(15)])))
    await controller.wait_event(first, "node_entered", "menu")
    v2 = await asyncio.to_thread(install, controller, tmp_path, "itest-lang-fresh", live_flow("itest-lang-fresh", V2))
    published = time.monotonic()
    await running
    assert_ran(await controller.wait_cdr(first), v1, V1)

    # The scenario is a call placed after the routes' 1 s cache has expired: when the first call
    # ended sooner than 2.5 s after the publish (a slow publish on a loaded machine), time itself must
    # pass; there is no event to wait for.
    await asyncio.sleep(max(0.0, published + 2.5 - time.monotonic()))
    await place(asterisk, SippCall(dialed, second, steps=[Pause(2.0), Dtmf("1"), ExpectHangup(15)]))
    assert_ran(await controller.wait_cdr(second), v2, V2)


# -- 7: a controller crash mid-gather ----------------------------------------------------------------

CRASH = """
name: itest-lang-crash
start: answer
nodes:
  answer: {type: answer, next: remember}
  remember: {type: set, vars: {ticket: "'T-' + caller.number", step: 1}, next: pin}
  pin:
    type: gather
    var: pin
    min_digits: 4
    max_digits: 8
    timeout: 30
    digit_timeout: 25
    next: readback
    on_timeout: hangup
    on_invalid: hangup
  readback: {type: play, media: "digits:{{ vars.pin }}", next: hangup}
  hangup: {type: hangup}
"""


async def test_a_controller_crash_mid_gather_resumes_with_the_variables_and_digits_so_far(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    dialed, who = number(controller, 7), caller(controller, 7)
    install(controller, tmp_path, "itest-lang-crash", CRASH, dialed)
    # "12" to the first controller, "34#" to the one that adopts the call.
    running = asyncio.create_task(place(asterisk, SippCall(
        dialed, who, steps=[Pause(0.8), Dtmf("12"), Pause(7.0), Dtmf("34#"), ExpectHangup(20)]), timeout=60))
    await controller.wait_record(
        lambda r: r.caller_number == who and sum(e.type == "dtmf_received" for e in r.events) == 2,
        f"the first two digits of caller {who}")
    await asyncio.to_thread(controller.crash_and_restart)
    await controller.wait_health(lambda h: h["calls_adopted"] >= 1, timeout=20)
    await running

    cdr = await controller.wait_cdr(who)
    adopted = one(cdr, "adopted")
    assert adopted["node"] == "pin"
    after = cdr["events"][cdr["events"].index(adopted):]
    resumed = [e for e in after if e["type"] == "node_entered"]
    assert resumed[0]["node"] == "pin" and resumed[0]["detail"]["adopted"] == "resume", resumed
    assert path(cdr) == ["answer", "remember", "pin", "pin", "readback", "hangup"]
    before = [e["detail"]["digit"] for e in cdr["events"][: cdr["events"].index(adopted)]
              if e["type"] == "dtmf_received"]
    assert before == ["1", "2"] and digits(cdr) == "1234#"
    assert one(cdr, "gather_completed")["detail"]["length"] == 4
    # The variable set before the crash and the digits typed on both sides of it.
    assert vars_at(cdr) == {"ticket": f"T-{who}", "step": 1, "pin": "1234"}
    assert media(cdr, "readback") == [["digits:1234"]]
    assert_completed(cdr)


# -- 8: the simulator and a real call agree ----------------------------------------------------------

SIM = """
name: itest-lang-sim
start: answer
nodes:
  answer: {type: answer, next: menu}
  menu:
    type: menu
    prompt: sound:beep
    options: {"1": account, "2": bye}
    timeout: 5
    retries: 0
    on_timeout: bye
    on_invalid: bye
  account:
    type: gather
    prompt: sound:beep
    var: acct
    min_digits: 3
    max_digits: 6
    timeout: 5
    digit_timeout: 3
    next: classify
    on_timeout: bye
    on_invalid: bye
  classify:
    type: set
    vars: {vip: "vars.acct matches '^9'", size: "len(vars.acct)"}
    next: route
  route:
    type: branch
    cases:
      - {when: "vars.vip and vars.size == 4", next: vip}
      - {when: "vars.size == 4", next: regular}
    default: bye
  vip: {type: say, digits: vars.acct, next: hangup}
  regular: {type: play, media: sound:beep, next: hangup}
  bye: {type: play, media: sound:goodbye, next: hangup}
  hangup: {type: hangup}
"""


async def test_the_simulator_and_a_real_call_take_the_same_path(
    controller: ControllerUnderTest, asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    dialed, who = number(controller, 8), caller(controller, 8)
    install(controller, tmp_path, "itest-lang-sim", SIM, dialed)
    simulated = json.loads(controller.ivrpowers(
        "flow", "simulate", str(tmp_path / "itest-lang-sim.yaml"), "--dtmf", "19876#", "--caller", who,
        "--dialed", dialed, "--json").stdout)
    assert simulated["end"] == "hangup" and "error" not in simulated, simulated
    assert simulated["path"] == ["answer", "menu", "account", "classify", "route", "vip", "hangup"]

    # Each digit once the flow waits for it, as the simulated caller presses them: "1" after the
    # menu's beep (0.4 s), the account after the gather's beep.
    await place(asterisk, SippCall(dialed, who, steps=[
        Pause(1.2), Dtmf("1"), Pause(1.2), Dtmf("9876#"), ExpectHangup(15)]))
    cdr = await controller.wait_cdr(who)
    assert path(cdr) == simulated["path"]
    assert vars_at(cdr) == simulated["vars"] == {"acct": "9876", "vip": True, "size": 4}
    assert [p for e in events(cdr, "prompt_played") for p in e["detail"]["media"]] == simulated["prompts"]
    # Event by event, where both write one: the same events at the same nodes.
    flow_types = {e["type"] for e in simulated["events"]}
    real = [(e["type"], e["node"]) for e in cdr["events"] if e["type"] in flow_types]
    assert real == [(e["type"], e["node"]) for e in simulated["events"]]
    assert not any("interrupted_by" in e["detail"] for e in events(cdr, "prompt_played"))  # no digit barged in
    assert_completed(cdr)
