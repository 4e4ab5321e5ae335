"""Composition root: wires the store, the ARI client, the call controller and the web app."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ivrpowers.ami import AmiClient
from ivrpowers.ari import AriClient
from ivrpowers.calls.acd_offers import Offers
from ivrpowers.calls.acd_service import AcdService
from ivrpowers.calls.controller import CallController
from ivrpowers.calls.identity import new_controller_id
from ivrpowers.calls.liveness import Liveness
from ivrpowers.calls.routing import Router
from ivrpowers.calls.services import AiohttpHttp, SystemClock
from ivrpowers.calls.supervision import Supervision
from ivrpowers.chats.service import ChatService
from ivrpowers.config import Settings
from ivrpowers.endpoints.accounts import password_matches
from ivrpowers.endpoints.fields import REALM, Addresses
from ivrpowers.endpoints.presence import Presence
from ivrpowers.endpoints.sync import EndpointSync
from ivrpowers.flows.services import Services
from ivrpowers.loop_lag import LoopLag
from ivrpowers.media.call_recordings import CallRecordings, recordings_root
from ivrpowers.store.acd import AcdRepository
from ivrpowers.store.acd_state import AcdStateRepository
from ivrpowers.store.cdrs import CdrRepository
from ivrpowers.store.chats import ChatRepository
from ivrpowers.store.controllers import ControllerRepository
from ivrpowers.store.db import Database
from ivrpowers.store.endpoints import EndpointRepository
from ivrpowers.store.flows import FlowRepository
from ivrpowers.store.migrate import SchemaOutdated, check_schema
from ivrpowers.store.routes import RouteRepository
from ivrpowers.store.writer import CdrWriter
from ivrpowers.web.agent_api import SipServer
from ivrpowers.web.agent_auth import SignedTokens
from ivrpowers.web.app import create_app

log = logging.getLogger("ivrpowers")


class Controller:
    """One running ivrpowers controller."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.cdrs = CdrRepository(self.db)
        self.writer = CdrWriter(self.cdrs, settings.state_dir / "cdr-spool.jsonl")
        self.client = AriClient(settings.ari_base_url, settings.ari_user, settings.ari_secret, settings.ari_app)
        self.router = router = Router(RouteRepository(self.db), FlowRepository(self.db))
        self.id = new_controller_id()
        self.liveness = Liveness(ControllerRepository(self.db), self.id, settings.asterisk_id)
        # What flows may use: one HTTP keep-alive pool for every call, the clock in the configured zone.
        self.http = AiohttpHttp()
        services = Services(clock=SystemClock(settings.timezone), http=self.http, secrets=settings.flow_secrets,
                            flows=router)
        self.calls = CallController(self.client, settings, router, self.cdrs, self.writer, self.liveness, services)
        self.acd_definitions = AcdRepository(self.db)
        self.acd = AcdService(self.acd_definitions, AcdStateRepository(self.db), self.id, timezone=settings.timezone)
        self.acd.offers = Offers(self.acd, self.calls.ctx)
        self.acd.callbacks.ctx = self.calls.ctx
        self.calls.ctx.acd = self.acd
        self.chats = ChatService(ChatRepository(self.db), self.acd)
        self.supervision = Supervision(self.calls.ctx, self.calls.sessions, self.acd)
        # Agents whose phone is not registered (and answering) get no voice or video offers. The changes
        # come over AMI: ARI's `endpoint:` event source made Asterisk 22.10 crash (presence.py says why).
        self.presence = Presence(self.client, AmiClient(settings.bind_address, settings.ami_port,
                                                        settings.ami_user, settings.ami_password))
        self.acd.reachable = self.presence.reachable
        self.presence.watch(self.acd.endpoint_changed)
        self.presence.on_browser_gone(self.acd.offers.browser_gone)
        # Phones created at run time live in Asterisk's memory only: pushed again at every connect.
        self.endpoints = EndpointSync(self.client, EndpointRepository(self.db).all, Addresses.of(settings),
                                      settings.outbound_trunk)
        self.loop_lag = LoopLag()
        self._runner: web.AppRunner | None = None
        self._ari_task: asyncio.Task[None] | None = None

    def health(self) -> dict[str, object]:
        """`status` is "degraded" (HTTP 503) with the `problems` when calls or CDRs are at risk."""
        ari = self.client.is_connected
        problems = []
        if not ari:
            problems.append(self.client.problem or "ARI events connection down")
        if self.writer.failures:
            problems.append(f"database: the last {self.writer.failures} CDR write attempts failed")
        if problem := self.writer.health()["problem"]:
            problems.append(f"CDR writer: {problem}")
        if self.endpoints.problem:
            problems.append(self.endpoints.problem)
        lag = self.loop_lag.health()
        if lag["problem"]:
            problems.append(lag["problem"])
        return {
            "status": "degraded" if problems else "ok",
            "problems": problems,
            "controller_id": self.id,
            "asterisk_id": self.liveness.asterisk_id,
            "ari_connected": ari,
            "ami_connected": self.presence.ami.connected,  # phones' reachability: polled while it is down
            "presence_problem": self.presence.problem,
            "ari_connects": self.client.connects,
            "ari_rest": "websocket" if self.client.rest_over_websocket else "http",
            "ari_rest_lanes": self.client.rest_lanes_ready,
            "ari_replaced": self.client.replacements,
            "calls_adopted": self.calls.reconciler.adopted,
            "adoption_waits": self.calls.reconciler.waits,
            "reconcile_passes": self.calls.reconciler.passes,
            "active_calls": len(self.calls.sessions),
            "cdr_backlog": self.writer.backlog,
            "cdr_write_failures": self.writer.failures,
            "endpoint_syncs": self.endpoints.passes,
            "acd_decisions": self.acd.decisions,
            "acd_events": self.acd.happenings.count,
            "loop_lag_ms": lag["loop_lag_ms"],
            "loop_stalls": lag["loop_stalls"],
        }

    async def start(self) -> None:
        try:
            await check_schema(self.settings.database_url)
        except SchemaOutdated:
            raise
        except Exception as exc:  # unreachable: start anyway, CDR writes wait for it
            log.warning("database not reachable at start (%s: %s); continuing", type(exc).__name__, exc)
        self.loop_lag.start()
        self.writer.start()
        self.liveness.start()
        try:
            await self.acd.start()
        except Exception as exc:  # no database: queues wait for it (join refuses meanwhile)
            log.warning("ACD not started (%s: %s)", type(exc).__name__, exc)
        else:  # chats take their places back from the router's saved state: only once it is restored
            try:
                await self.chats.start()
            except Exception as exc:
                log.warning("chats not restored (%s: %s)", type(exc).__name__, exc)
        self.calls.install()
        self.endpoints.install()
        self.presence.install()
        self._ari_task = asyncio.create_task(self.client.run(), name="ari-events")
        secrets = self.settings.secrets()
        app = create_app(health=self, cdrs=self.cdrs, api_token=secrets["api_token"],
                         acd=self.acd_definitions, acd_runtime=self.acd, chats=self.chats,
                         sip=SipServer(self.settings.sip_websocket, self.settings.bind_address),
                         agent_tokens=SignedTokens(secrets["session_key"].encode()), password_ok=self._password_ok,
                         recordings=(CallRecordings(recordings_root(self.settings)), self._answered,
                                     self._note),
                         supervision=(self.supervision, lambda: self.acd.agents),
                         embed_origins=self.settings.embed_origins, timezone=self.settings.timezone)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.settings.bind_address, self.settings.web_port).start()
        log.info("web app on http://%s:%d (health: /health)", self.settings.bind_address, self.settings.web_port)

    async def _answered(self, agent_id: str, call_id: str) -> bool:
        """Whether `agent_id` answered call `call_id` from a queue (its CDR's `queue_answered`)."""
        await self.writer.flush(5.0)  # an answer just written may still be on its way to the database
        record = await self.cdrs.get(call_id)
        return record is not None and any(
            e.type == "queue_answered" and (e.detail or {}).get("agent") == agent_id for e in record.events)

    def _note(self, call_id: str, type: str, detail: dict[str, Any]) -> None:
        self.writer.add_event(call_id, type, datetime.now(UTC), None, detail)

    async def _password_ok(self, endpoint: str, password: str) -> bool:
        record = await EndpointRepository(self.db).get(endpoint)
        return password_matches(endpoint, password, digest=record.password_digest if record else None,
                                realm=record.realm if record else REALM, secrets=self.settings.secrets())

    async def stop(self) -> None:
        await self.supervision.close()
        await self.calls.shutdown()
        if self.acd.offers is not None:
            await self.acd.offers.close()
        await self.chats.close()
        await self.acd.close()
        await self.endpoints.close()
        await self.presence.close()
        await self.client.close()
        if self._ari_task:
            self._ari_task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._ari_task
        if self._runner:
            await self._runner.cleanup()
        await self.liveness.stop()
        await self.http.close()
        await self.writer.close()
        await self.router.settle()
        await self.db.close()
        await self.loop_lag.stop()


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. Live calls are left in Asterisk for the next controller to adopt."""
    controller = Controller(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await controller.start()
    # What start made (modules, schemas, settings) lives as long as the process: out of the way of
    # every garbage collection, whose walk over it paused the event loop, and every call, for
    # tens of ms under load (`make bench-calls`).
    gc.collect()
    gc.freeze()
    try:
        await stop.wait()
    finally:
        log.info("stopping controller")
        await controller.stop()
