"""A loopback TCP proxy the tests can cut, to drop the controller's ARI connections for real."""

from __future__ import annotations

import asyncio
import threading
import time


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut(seconds)` kills every connection and refuses
    new ones for that long, as a network outage or an Asterisk HTTP restart would."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._refuse_until = 0.0
        self.cuts = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="tcp-proxy")

    def start(self) -> TcpProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        # Connections' tasks end before the loop does: a task left pending is torn down later by
        # the garbage collector, on a closed loop.
        asyncio.run_coroutine_threadsafe(self._cancel_connections(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _cancel_connections(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def cut(self, refuse_for: float = 0.0) -> None:
        def do_cut() -> None:
            self._refuse_until = time.monotonic() + refuse_for
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
            self.cuts += 1

        self._loop.call_soon_threadsafe(do_cut)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers.difference_update((writer, up_writer))
