"""/healthz and /metrics: served in every mode, honest when something is wrong, guarded by a token.

The modes run for real (the Telegram channel against the fake Bot API, WhatsApp against the
fake Graph API) on a port of their own; the unhealthy cases use the web app directly, with an
injected clock (a stale scheduler), a private PostgreSQL that is stopped, an SQLite file that
is gone, and rows claimed too long ago. Metrics are read with prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bot.app import App
from bot.channels.telegram.run import serve
from bot.outbox.store import SendError
from bot.runtime.types import Inbound
from bot.scheduler import build_dispatcher
from bot.storage.models import Agency, OutboxMessage
from bot.web.server import HEALTH, build_web_app
from flows.machine.types import Event
from tests.conftest import FakeClock, free_port, make_app
from tests.fake_telegram import User
from tests.telegram_harness import FAST_BACKOFF, harness

WARGA = User(id=8101, first_name="Rina", language_code="id")
TOKEN = "s3cret-metrics-token"


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample ``name`` whose labels include ``labels`` (None when there is none)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def get(http: aiohttp.ClientSession | TestClient[Any, Any], url: str,
              token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


def add_row(app: App, clock: FakeClock, status: str, chat: str = "1", channel: str = "telegram",
            **extra: Any) -> None:
    with app.factory() as db, db.begin():
        db.add(OutboxMessage(channel=channel, chat_id=chat, payload={"text": "x", "choices": []},
                             status=status, due_at=extra.pop("due_at", clock()),
                             created_at=clock(), **extra))


def sent_rows(app: App) -> int:
    with app.factory() as db:
        return db.scalar(select(func.count()).select_from(OutboxMessage)
                         .where(OutboxMessage.status == "sent")) or 0


@asynccontextmanager
async def client(app: App) -> AsyncIterator[TestClient[Any, Any]]:
    """The bot's web app on a test server, its health answer not cached."""
    web_app = build_web_app(app=app)
    web_app[HEALTH].cache_seconds = 0
    async with TestClient(TestServer(web_app)) as c:
        yield c


# ---------------------------------------------------------------------- every mode


async def test_long_polling_serves_health_and_metrics(app: App, clock: FakeClock) -> None:
    port = free_port()
    app.settings.http_port = port
    base = f"http://127.0.0.1:{port}"
    async with harness(app, clock) as h:
        stop = asyncio.Event()
        task = asyncio.create_task(serve(app, h.bot, channel=h.channel, dp=h.dp, stop=stop,
                                         backoff=FAST_BACKOFF, polling_timeout=1))
        try:
            await h.server.wait_for(lambda: bool(h.server.calls("deleteWebhook")), timeout=15)
            async with aiohttp.ClientSession() as http:
                status, before = await get(http, f"{base}/metrics")
                assert status == 200
                assert value(before, "prima_updates_received_total", channel="telegram") == 0
                assert value(before, "prima_database_up") == 1
                await h.say(WARGA, "/start")
                status, after = await get(http, f"{base}/metrics")
                assert value(after, "prima_updates_received_total", channel="telegram") == 1
                assert value(after, "prima_turn_seconds_count", channel="telegram") == 1
                sent = sent_rows(app)
                assert sent >= 2
                assert value(after, "prima_sends_total", channel="telegram", path="reply",
                             result="sent") == sent
                assert value(after, "prima_outbox_rows", status="sent", channel="telegram") == sent
                async with http.get(f"{base}/healthz") as resp:
                    assert resp.status == 200
                    body = await resp.json()
            assert body["checks"] == {"database": "ok", "outbox": "ok", "scheduler": "ok"}
            assert body["outbox"] == {"backlog": 0, "stuck": 0}
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)


async def test_webhook_mode_counts_webhooks_and_guards_with_the_token(sqlite_app: App,
                                                                      clock: FakeClock) -> None:
    app = sqlite_app
    port = free_port()
    s = app.settings
    s.http_port, s.metrics_token = port, TOKEN
    s.telegram_webhook_url = "https://prima.example.go.id/telegram/webhook"
    base = f"http://127.0.0.1:{port}"
    async with harness(app, clock) as h:
        stop = asyncio.Event()
        task = asyncio.create_task(serve(app, h.bot, channel=h.channel, dp=h.dp, stop=stop,
                                         background=False))
        try:
            await h.server.wait_for(lambda: h.server.webhook is not None, timeout=15)
            hook = h.server.webhook
            assert hook is not None
            h.server.webhook = {**hook, "url": f"{base}/telegram/webhook"}
            start = h.server.message_update(WARGA, "/start")
            assert await h.server.deliver_webhook(start, secret="wrong") == 401  # not counted
            assert await h.server.deliver_webhook(start) == 200
            async with aiohttp.ClientSession() as http:
                assert (await get(http, f"{base}/metrics"))[0] == 401
                assert (await get(http, f"{base}/metrics", "wrong"))[0] == 401
                status, text = await get(http, f"{base}/metrics", TOKEN)
                assert status == 200
                assert value(text, "prima_webhooks_received_total", channel="telegram") == 1
                assert value(text, "prima_updates_received_total", channel="telegram") == 1
                # without the token: healthy or not, and nothing more
                async with http.get(f"{base}/healthz") as resp:
                    assert resp.status == 200 and await resp.json() == {"status": "ok"}
                async with http.get(f"{base}/healthz",
                                    headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                    assert resp.status == 200
                    assert (await resp.json())["outbox"] == {"backlog": 0, "stuck": 0}
        finally:
            stop.set()
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


async def test_whatsapp_mode_serves_health_and_metrics(sqlite_url: str, clock: FakeClock) -> None:
    from bot.channels.whatsapp.serve import serve as serve_whatsapp
    from tests import fake_graph as fg
    from tests.whatsapp_harness import wa_settings

    graph = fg.FakeGraph()
    await graph.start()
    port = free_port()
    app = make_app(sqlite_url, clock, **wa_settings(graph), http_port=port)
    base = f"http://127.0.0.1:{port}"
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve_whatsapp(app, stop=stop, started=started))
    siti = "6281234567890"
    try:
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        raw = fg.encode(fg.webhook(messages=[fg.text_message(siti, "halo")], contacts=[fg.contact(siti)]))
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/whatsapp/webhook", data=raw,
                                 headers={"X-Hub-Signature-256": fg.sign(raw)}) as resp:
                assert resp.status == 200
            await graph.wait_for(lambda: len(graph.to(siti)) >= 2)
            for _ in range(100):  # the replies are recorded after they went out
                if sent_rows(app) >= 2:
                    break
                await asyncio.sleep(0.05)
            status, text = await get(http, f"{base}/metrics")
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200
                body = await resp.json()
        assert status == 200
        assert value(text, "prima_webhooks_received_total", channel="whatsapp") == 1
        assert value(text, "prima_updates_received_total", channel="whatsapp") == 1
        assert value(text, "prima_turn_seconds_count", channel="whatsapp") == 1
        assert value(text, "prima_sends_total", channel="whatsapp", path="reply", result="sent") == 2
        assert value(text, "prima_webhook_bodies_stored", channel="whatsapp", state="awaiting_retry") == 0
        assert value(text, "prima_outbox_waiting_for_window", channel="whatsapp") == 0
        assert body["checks"] == {"database": "ok", "outbox": "ok", "scheduler": "ok"}
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await graph.stop()
        app.engine.dispose()


async def test_long_polling_with_the_port_taken_stops_with_one_line(tmp_path: Path) -> None:
    """``python bot.py`` in long polling mode now listens too: a port in use is a config error."""
    import socket
    import subprocess
    import sys

    from tests.fake_telegram import FakeTelegram
    from tests.test_startup_errors import BOT, one_line

    server = FakeTelegram()
    await server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WHATSAPP_", "HTTP_"))}
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env.update(TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_API_BASE=server.base_url,
                       DATABASE_URL=f"sqlite:///{tmp_path / 'prima.db'}", LOG_LEVEL="WARNING",
                       HTTP_PORT=str(port))
            proc = await asyncio.create_subprocess_exec(
                sys.executable, BOT, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        await server.stop()
    result = subprocess.CompletedProcess(BOT, proc.returncode or 0, out.decode(), err.decode())
    one_line(result, "Configuration error: HTTP_PORT: ", f"127.0.0.1:{port}", "already in use")


# ---------------------------------------------------------------------- unhealthy


async def test_stale_scheduler_and_stuck_rows_give_503(sqlite_app: App, clock: FakeClock) -> None:
    app = sqlite_app
    dispatcher = build_dispatcher(app, {}, clock)
    async with client(app) as c:
        resp = await c.get("/healthz")
        assert resp.status == 200 and "scheduler" not in (await resp.json())["checks"]  # none here
        await dispatcher.tick()
        resp = await c.get("/healthz")
        body = await resp.json()
        assert resp.status == 200 and body["checks"]["scheduler"] == "ok"
        assert body["scheduler"]["last_tick"] == clock().isoformat()
        clock.advance(seconds=3 * app.settings.outbox_tick_seconds + 31)  # no tick meanwhile
        resp = await c.get("/healthz")
        body = await resp.json()
        assert resp.status == 503 and body["status"] == "unhealthy"
        assert body["checks"] == {"database": "ok", "outbox": "ok", "scheduler": "stale"}
        await dispatcher.tick()
        assert (await c.get("/healthz")).status == 200
        # a row claimed longer than OUTBOX_CLAIM_TIMEOUT_MINUTES, and a due backlog
        add_row(app, clock, "claimed", claimed_at=clock() - timedelta(minutes=11))
        add_row(app, clock, "pending", chat="2", due_at=clock() - timedelta(seconds=5))
        add_row(app, clock, "pending", chat="3", due_at=clock() + timedelta(hours=1))  # not due
        resp = await c.get("/healthz")
        body = await resp.json()
        assert resp.status == 503 and body["checks"]["outbox"] == "1 stuck"
        assert body["outbox"] == {"backlog": 1, "stuck": 1}
        _, text = await get(c, "/metrics")
        assert value(text, "prima_outbox_stuck") == 1 and value(text, "prima_outbox_backlog") == 1
        assert value(text, "prima_outbox_rows", status="pending", channel="telegram") == 2
        assert value(text, "prima_outbox_rows", status="claimed", channel="telegram") == 1
        assert value(text, "prima_scheduler_last_tick_timestamp_seconds") == clock().timestamp()


async def test_health_is_cached_a_few_seconds(sqlite_app: App, clock: FakeClock) -> None:
    web_app = build_web_app(app=sqlite_app)
    health = web_app[HEALTH]
    now = [100.0]
    health.monotonic = lambda: now[0]
    await build_dispatcher(sqlite_app, {}, clock).tick()
    async with TestClient(TestServer(web_app)) as c:
        assert (await c.get("/healthz")).status == 200
        clock.advance(minutes=5)  # stale now, but the answer is kept
        assert (await c.get("/healthz")).status == 200
        now[0] += health.cache_seconds + 0.1
        assert (await c.get("/healthz")).status == 503


async def test_postgres_stopped_gives_503_and_database_down(clock: FakeClock) -> None:
    from tests.pg_instance import OwnPostgres

    pg = OwnPostgres()
    pg.start()
    app = make_app(pg.url, clock, metrics_token=TOKEN)
    try:
        async with client(app) as c:
            assert (await c.get("/healthz")).status == 200
            await asyncio.to_thread(pg.stop)
            resp = await c.get("/healthz")
            assert resp.status == 503 and await resp.json() == {"status": "unhealthy"}  # no token
            resp = await c.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
            body = await resp.json()
            assert resp.status == 503 and body["checks"]["database"].startswith("error: ")
            assert body["outbox"] is None
            status, text = await get(c, "/metrics", TOKEN)
            assert status == 200 and value(text, "prima_database_up") == 0
            assert value(text, "prima_outbox_rows") is None
            await asyncio.to_thread(pg.start)
            assert (await c.get("/healthz")).status == 200
            status, text = await get(c, "/metrics", TOKEN)
            assert value(text, "prima_database_up") == 1
    finally:
        app.engine.dispose()
        pg.destroy()


async def test_sqlite_file_gone_gives_503(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "prima.db"
    app = make_app(f"sqlite:///{path}", clock)
    try:
        async with client(app) as c:
            assert (await c.get("/healthz")).status == 200
            app.engine.dispose()  # pooled connections would still read the moved file
            path.rename(tmp_path / "moved.db")
            path.mkdir()  # a folder where the file was: SQLite cannot open it
            resp = await c.get("/healthz")
            assert resp.status == 503
            assert (await resp.json())["checks"]["database"] == "error: OperationalError"
            path.rmdir()
            (tmp_path / "moved.db").rename(path)
            assert (await c.get("/healthz")).status == 200
    finally:
        app.engine.dispose()


# ---------------------------------------------------------------------- values


async def test_outbox_sends_cases_and_digests_are_counted(sqlite_app: App, clock: FakeClock) -> None:
    from bot.desk.cases import open_case
    from bot.reports.digest.job import produce_digest

    app = sqlite_app

    class Sender:
        channel = "telegram"

        async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
            if chat_id == "blocked":
                raise SendError("Forbidden: bot was blocked by the user", permanent=True,
                                unreachable=True, code="403")
            return "1"

    add_row(app, clock, "pending", chat="ok")
    add_row(app, clock, "pending", chat="blocked")
    await build_dispatcher(app, {"telegram": Sender()}, clock).drain()
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == "samsat")).one()
        for n in range(2):
            open_case(db, agency=agency, source_key=f"test:{n}", trigger="manual", reasons=[],
                      summary="x", now=clock(), actor="test")
    produce_digest(app, "samsat", "2026-W47", clock())
    async with client(app) as c:
        _, text = await get(c, "/metrics")
        assert value(text, "prima_sends_total", channel="telegram", path="outbox", result="sent") == 1
        assert value(text, "prima_sends_total", channel="telegram", path="outbox",
                     result="permanent", code="403") == 1
        assert value(text, "prima_outbox_rows", status="failed", channel="telegram") == 1
        assert value(text, "prima_cases_open", agency="samsat") == 2
        assert value(text, "prima_cases_overdue", agency="samsat") == 0
        assert value(text, "prima_cases_open", agency="disdukcapil") == 0
        assert value(text, "prima_digests_produced_total", agency="samsat") == 1
        clock.advance(days=60)  # every deadline passed
        _, text = await get(c, "/metrics")
        assert value(text, "prima_cases_overdue", agency="samsat") == 2


async def test_retention_counts_are_served(sqlite_app: App, clock: FakeClock) -> None:
    """The daily retention job's removals reach /metrics, by kind."""
    from bot.privacy import retention

    app = sqlite_app
    app.runtime.handle(Inbound("console", "w1", "w1", Event("text", "e1", text="/start"), event_key="k1"))
    before = retention.TOTALS["sessions"]
    retention.run_retention(app.factory, retention.Policy(), clock() + timedelta(days=31))
    async with client(app) as c:
        _, text = await get(c, "/metrics")
    assert value(text, "prima_retention_removed_total", kind="sessions") == before + 1


def test_apps_have_registries_of_their_own(sqlite_url: str, tmp_path: Path, clock: FakeClock) -> None:
    one = make_app(sqlite_url, clock)
    two = make_app(f"sqlite:///{tmp_path / 'two.db'}", clock)
    try:
        build_web_app(app=one)
        build_web_app(app=one)  # a second web app for the same runtime replaces the collector
        build_web_app(app=two)
        one.metrics.updates.labels("telegram").inc()
        assert one.metrics.registry is not two.metrics.registry
        assert two.metrics.registry.get_sample_value(
            "prima_updates_received_total", {"channel": "telegram"}) is None
        names = [m.name for m in one.metrics.registry.collect()]
        assert names.count("prima_outbox_rows") == 1
    finally:
        one.engine.dispose()
        two.engine.dispose()


def test_send_error_outcomes() -> None:
    assert SendError("x", retry_after=3).outcome == "rate_limited"
    assert SendError("x", wait_for_contact=True).outcome == "waiting"
    assert SendError("x", permanent=True).outcome == "permanent"
    assert SendError("x", unknown=True).outcome == "unknown"
    assert SendError("x").outcome == "retry"
