"""The dispatcher against the fake Bot API with aiogram's real Bot: counted on the server's side.

- Two ``python bot.py outbox drain`` processes on one PostgreSQL database share 5,000 rows.
- A fault-injecting proxy in front of the fake server answers a share of calls with 429
  (retry_after), 502, or lets the request through and never answers (a timeout whose outcome
  is unknowable). Nothing is lost; duplicates happen only after unknowable outcomes, and each
  is counted on its row and logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from collections import Counter
from datetime import timedelta

import pytest
from aiohttp import ClientSession, web
from sqlalchemy import select

from bot.app import App
from bot.channels.telegram.sender import TelegramSender, make_bot
from bot.outbox.dispatcher import DispatchConfig, Dispatcher
from bot.outbox.ratelimit import RateLimiter
from bot.outbox.store import MAX_UNCERTAIN
from bot.storage.models import OutboxMessage
from tests.conftest import ROOT, FakeClock, make_app
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.outbox_support import VirtualTime, add_rows


def delivered(server: FakeTelegram) -> Counter[str]:
    return Counter(s.text or "" for s in server.sent)


async def test_two_processes_on_postgres_send_every_row_exactly_once(
    pg_url: str, clock: FakeClock
) -> None:
    app = make_app(pg_url, clock)
    n = 5000
    try:
        # Due in the past by the real clock: the CLI processes run on real time.
        from datetime import UTC, datetime

        due = datetime.now(UTC) - timedelta(minutes=1)
        add_rows(app.factory, n, lambda i: due, due, chats=1000)
    finally:
        app.engine.dispose()
    server = FakeTelegram()
    await server.start()
    env = {**os.environ, "DATABASE_URL": pg_url, "TELEGRAM_BOT_TOKEN": TOKEN,
           "TELEGRAM_API_BASE": server.base_url, "CATALOG_PATH": str(ROOT / "catalog.yaml"),
           "TELEGRAM_RATE_TOTAL": "0", "TELEGRAM_RATE_CHAT": "0", "OUTBOX_BATCH": "500",
           "OUTBOX_TICK_SECONDS": "5", "LOG_LEVEL": "WARNING"}
    try:
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), "outbox", "drain", env=env, cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(2)]
        outputs = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
    finally:
        await server.stop()
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    counts = delivered(server)
    assert len(counts) == n and set(counts.values()) == {1}  # every row, exactly once
    shares = [int(out.decode().split("sent ")[1].split(",")[0]) for out, _ in outputs]
    assert sum(shares) == n and all(s > 0 for s in shares), shares  # both did part of the work
    app = make_app(pg_url, clock)
    try:
        with app.factory() as db:
            statuses = Counter(db.scalars(select(OutboxMessage.status)))
        assert statuses == {"sent": n}
    finally:
        app.engine.dispose()


class FaultyProxy:
    """Forwards to the fake Bot API, but fails a seeded share of sendMessage calls."""

    def __init__(self, upstream: str, seed: int = 4) -> None:
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.release = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._http: ClientSession | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._http = ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        async with self._http.request(request.method, self.upstream + request.path_qs, data=body,
                                      headers={"Content-Type": request.content_type}) as resp:
            return web.Response(body=await resp.read(), status=resp.status,
                                content_type=resp.content_type)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not request.path.endswith("/sendMessage"):
            return await self.forward(request)
        roll = self.rng.random()
        if roll < 0.08:
            self.counts["429"] += 1
            return web.json_response({"ok": False, "error_code": 429,
                                      "description": "Too Many Requests: retry after 3",
                                      "parameters": {"retry_after": 3}}, status=429)
        if roll < 0.16:
            self.counts["502"] += 1
            return web.json_response({"ok": False, "error_code": 502, "description": "Bad Gateway"},
                                     status=502)
        if roll < 0.20:  # delivered, but the answer never comes back
            self.counts["timeout_delivered"] += 1
            await self.forward(request)
            await self.release.wait()
            raise web.HTTPServiceUnavailable()
        if roll < 0.22:  # lost on the way: not delivered, and no answer either
            self.counts["timeout_lost"] += 1
            await self.release.wait()
            raise web.HTTPServiceUnavailable()
        self.counts["ok"] += 1
        return await self.forward(request)


async def run_with_faults(app: App, clock: FakeClock, resend_unknown: bool,
                          n: int = 300) -> tuple[FakeTelegram, FaultyProxy, dict[str, OutboxMessage]]:
    add_rows(app.factory, n, lambda i: clock.now, clock.now, chats=150)
    server = FakeTelegram()
    await server.start()
    proxy = FaultyProxy(server.base_url)
    await proxy.start()
    bot = make_bot(TOKEN, proxy.base_url, timeout=0.5)
    vt = VirtualTime()
    d = Dispatcher(app.factory, {"telegram": TelegramSender(bot)}, RateLimiter({}, monotonic=vt.monotonic),
                   clock=clock, sleep=vt.sleep,
                   config=DispatchConfig(batch=1000, tick_budget=3600, resend_unknown=resend_unknown,
                                         concurrency=64))
    try:
        for _ in range(30):
            await d.drain()
            with app.factory() as db:
                if not db.scalars(select(OutboxMessage.id).where(
                        OutboxMessage.status.in_(("pending", "claimed"))).limit(1)).first():
                    break
            clock.advance(minutes=20)
    finally:
        await bot.session.close()
        await proxy.stop()
        await server.stop()
    with app.factory() as db:
        rows = {r.payload["m"]: r for r in db.scalars(select(OutboxMessage))}
    return server, proxy, rows


async def test_faults_lose_nothing_and_count_every_possible_duplicate(
    sqlite_app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.outbox.store"):
        server, proxy, rows = await run_with_faults(sqlite_app, clock, resend_unknown=True)
    assert all(proxy.counts[k] > 0 for k in ("429", "502", "timeout_delivered", "timeout_lost"))
    # nothing lost: sent, or after MAX_UNCERTAIN resends of unknown outcomes, reported
    assert {r.status for r in rows.values()} <= {"sent", "unknown"}
    assert all(r.uncertain == MAX_UNCERTAIN for r in rows.values() if r.status == "unknown")
    assert sum(r.status == "sent" for r in rows.values()) >= len(rows) - 3
    counts = delivered(server)
    for marker, row in rows.items():
        text = row.payload["text"]
        assert counts[text] >= 1
        assert counts[text] - 1 <= row.uncertain, marker  # a duplicate only after an unknown outcome
    duplicates = sum(c - 1 for c in counts.values())
    uncertain = sum(r.uncertain for r in rows.values())
    assert duplicates > 0 and uncertain >= duplicates
    # every hung call is an unknown outcome; a slow machine may add genuine timeouts of its own
    # (a row reported unknown after MAX_UNCERTAIN resends had one more, not resent)
    reported = sum(r.status == "unknown" for r in rows.values())
    assert uncertain + reported >= proxy.counts["timeout_delivered"] + proxy.counts["timeout_lost"]
    logged = [r for r in caplog.records if "may duplicate" in r.getMessage()]
    assert len(logged) == uncertain
    retried = [r for r in rows.values() if r.attempts > 1]
    assert retried and any("retry after" in (r.last_error or "") for r in retried)


async def test_faults_without_resending_unknown_outcomes(sqlite_app: App, clock: FakeClock) -> None:
    server, proxy, rows = await run_with_faults(sqlite_app, clock, resend_unknown=False)
    counts = delivered(server)
    assert set(counts.values()) == {1}  # no duplicates at all
    unknown = [r for r in rows.values() if r.status == "unknown"]
    assert len(unknown) >= proxy.counts["timeout_delivered"] + proxy.counts["timeout_lost"] > 0
    assert {r.status for r in rows.values()} == {"sent", "unknown"}
    # an unknown row was delivered once or lost, never twice: the report lists them for a decision
    assert all(counts[r.payload["text"]] <= 1 for r in unknown)
    assert sum(counts[r.payload["text"]] for r in unknown) >= proxy.counts["timeout_delivered"]
