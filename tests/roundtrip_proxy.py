"""A TCP proxy to PostgreSQL that counts round trips (used by tests and bench/bench_updates.py).

Why: the hot paths promise a number of waits for the server (bot/storage/roundtrips.py), and
only the wire shows how many there were, whatever the driver did.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class RoundTrips:
    """A TCP proxy to PostgreSQL, in a thread of its own, that counts round trips: each time a
    client speaks again after the server answered. Driver-independent (a pipeline of several
    statements is one), and only for a counting pass: the hop would slow the timed one."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.upstream = make_url(url)
        self.count = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self.serve, "127.0.0.1", 0), self.loop).result(10)
        port = self.server.sockets[0].getsockname()[1]
        self.url = self.upstream.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    async def serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(self.upstream.host or "127.0.0.1",
                                                          self.upstream.port or 5432)
        answered = [True]  # the server spoke last (or nobody yet)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, from_client: bool) -> None:
            while data := await src.read(65536):
                if from_client and answered[0]:
                    self.count += 1
                answered[0] = not from_client
                dst.write(data)
                await dst.drain()
            dst.close()

        with contextlib.suppress(asyncio.CancelledError):  # closed: ends quietly (see close)
            await asyncio.gather(pump(client_r, server_w, True), pump(server_r, client_w, False),
                                 return_exceptions=True)

    def close(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            pumps = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
