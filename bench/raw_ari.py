"""The floor: a minimal raw ARI app with the bench IVR's behaviour, run as its own process.

One websocket, one aiohttp keep-alive pool, no database, no framework. StasisStart -> answer -> play
the prompt; first digit -> stop the prompt if it still plays -> play the marker; marker finished ->
hang up. Anything an ARI controller does beyond this is what the product costs over the floor.

    BENCH_ARI_PASSWORD=... python -m bench.raw_ari --url http://127.0.0.1:8088/ari --user U \\
        --app bench-raw --prompt recording:bench-prompt --marker recording:bench-marker

Prints "ready" once its websocket is up; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Call:
    prompt_id: str
    marker_id: str | None = None
    prompt_done: bool = False


class RawApp:
    def __init__(self, session: aiohttp.ClientSession, base: str, prompt: str, marker: str) -> None:
        self.session = session
        self.base = base
        self.prompt = prompt
        self.marker = marker
        self.calls: dict[str, Call] = {}
        self.playbacks: dict[str, str] = {}  # playback id -> channel id
        self._tasks: set[asyncio.Task[None]] = set()  # referenced, or a task may be collected mid-flight

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def request(self, method: str, path: str, **params: str) -> None:
        async with self.session.request(method, self.base + path, params=params) as resp:
            await resp.read()
            if resp.status >= 300 and resp.status != 404:  # 404: the channel or playback is already gone
                print(f"{method} {path}: HTTP {resp.status}", file=sys.stderr)

    async def start(self, channel: str) -> None:
        await self.request("POST", f"/channels/{channel}/answer")
        call = self.calls.get(channel)
        if call is not None:
            await self.request("POST", f"/channels/{channel}/play/{call.prompt_id}", media=self.prompt)

    async def digit(self, channel: str, call: Call) -> None:
        if not call.prompt_done:
            await self.request("DELETE", f"/playbacks/{call.prompt_id}")
        # The id is ours, so the playback's events can never arrive before we know it.
        call.marker_id = uuid.uuid4().hex
        self.playbacks[call.marker_id] = channel
        await self.request("POST", f"/channels/{channel}/play/{call.marker_id}", media=self.marker)

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "StasisStart":
            channel = event["channel"]["id"]
            prompt = uuid.uuid4().hex
            self.calls[channel] = Call(prompt)
            self.playbacks[prompt] = channel
            self.spawn(self.start(channel))
        elif kind == "ChannelDtmfReceived":
            channel = event["channel"]["id"]
            call = self.calls.get(channel)
            if call is not None and call.marker_id is None:
                call.marker_id = ""  # only the first digit counts
                self.spawn(self.digit(channel, call))
        elif kind == "PlaybackFinished":
            playback = event["playback"]["id"]
            channel = self.playbacks.pop(playback, None)
            call = self.calls.get(channel) if channel else None
            if call is None or channel is None:
                return
            if playback == call.prompt_id:
                call.prompt_done = True
            elif playback == call.marker_id:
                self.spawn(self.request("DELETE", f"/channels/{channel}"))
        elif kind == "StasisEnd":
            call = self.calls.pop(event["channel"]["id"], None)
            if call is not None:
                self.playbacks.pop(call.prompt_id, None)
                if call.marker_id:
                    self.playbacks.pop(call.marker_id, None)


async def main(args: argparse.Namespace) -> None:
    auth = aiohttp.BasicAuth(args.user, os.environ["BENCH_ARI_PASSWORD"])
    connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=60)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with aiohttp.ClientSession(auth=auth, connector=connector) as session:
        app = RawApp(session, args.url.rstrip("/"), args.prompt, args.marker)
        ws_url = args.url.rstrip("/").replace("http", "ws", 1) + "/events"
        async with session.ws_connect(ws_url, params={"app": args.app}, heartbeat=30) as ws:
            print("ready", flush=True)
            reader = asyncio.create_task(read_events(ws, app))
            await stop.wait()
            reader.cancel()


async def read_events(ws: aiohttp.ClientWebSocketResponse, app: RawApp) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            app.on_event(json.loads(msg.data))
        elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            break


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="minimal raw ARI IVR (the bench's floor)")
    for name in ("url", "user", "app", "prompt", "marker"):
        p.add_argument(f"--{name}", required=True)
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
