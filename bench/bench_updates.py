"""Updates per second through the real aiogram dispatcher into the runtime, vs. a bare echo bot.

Simulated residents each go through a full survey: /start, consent button, menu button,
agency, service, nine answer buttons and a typed suggestion (15 updates each). Every press
uses the keyboard the bot really sent. Residents run concurrently (``--concurrency``), each
one in order, as polling with tasks does. Replies go to an in-process Bot API session (no
network: Telegram's own limits are far below ours), and the same updates are then replayed
through a bare aiogram echo handler in the same run as the baseline.

    python bench/bench_updates.py                     # SQLite, 3,000 updates
    python bench/bench_updates.py --updates 20000     # the full size
    python bench/bench_updates.py --postgres postgresql+psycopg://postgres@127.0.0.1/test
    python bench/bench_updates.py --postgres URL --postgres-only --network-delay 1   # a remote server
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import logging
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, Chat, InlineKeyboardMarkup, Message, User

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App, build_app, settle_heap  # noqa: E402
from bot.channels.telegram.channel import TelegramChannel  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from tests.roundtrip_proxy import RoundTrips  # noqa: E402

TOKEN = "123456789:BENCH-token-for-in-process-session"
UPDATES_PER_RESIDENT = 15


class InProcessSession(BaseSession):
    """Answers Bot API calls in memory and remembers each chat's last keyboard."""

    def __init__(self) -> None:
        super().__init__()
        self.ids = itertools.count(1)
        self.keyboards: dict[int, Any] = {}
        self.calls = 0

    async def make_request(self, bot: Bot, method: TelegramMethod[TelegramType],
                           timeout: int | None = None) -> TelegramType:
        self.calls += 1
        result: Any
        if isinstance(method, SendMessage):
            chat = int(method.chat_id)
            markup = method.reply_markup
            inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
            if inline is not None:
                self.keyboards[chat] = inline
            result = Message(message_id=next(self.ids), date=datetime.now(UTC),
                             chat=Chat(id=chat, type="private"), text=method.text,
                             reply_markup=inline)
        elif isinstance(method, GetMe):
            result = User(id=123456789, is_bot=True, first_name="Prima", username="PrimaBench")
        elif isinstance(method, AnswerCallbackQuery | EditMessageText | EditMessageReplyMarkup
                        | SetMyCommands):
            result = True
        else:
            raise NotImplementedError(type(method).__name__)
        return result

    async def close(self) -> None:
        return None

    async def stream_content(self, url: str, headers: dict[str, Any] | None = None,
                             timeout: int = 30, chunk_size: int = 65536,
                             raise_for_status: bool = True) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError
        yield b""  # pragma: no cover


class Updates:
    """Builds raw updates like Telegram's, numbering them (never reusing an update_id)."""

    counter = itertools.count(1)

    def __init__(self) -> None:
        self.ids = Updates.counter

    def user(self, uid: int) -> dict[str, Any]:
        return {"id": uid, "is_bot": False, "first_name": f"Warga {uid}", "language_code": "id"}

    def text(self, uid: int, text: str) -> dict[str, Any]:
        n = next(self.ids)
        return {"update_id": n, "message": {
            "message_id": n, "date": 1, "chat": {"id": uid, "type": "private", "first_name": "W"},
            "from": self.user(uid), "text": text}}

    def press(self, uid: int, keyboard: Any, row: int) -> dict[str, Any]:
        n = next(self.ids)
        button = keyboard.inline_keyboard[row][0]
        return {"update_id": n, "callback_query": {
            "id": f"cb{n}", "from": self.user(uid), "chat_instance": "ci", "data": button.callback_data,
            "message": {"message_id": n, "date": 1, "chat": {"id": uid, "type": "private"},
                        "text": "?", "reply_markup": keyboard.model_dump(exclude_none=True)}}}


RUNTIME_CPU = [0.0]  # CPU seconds inside Runtime.handle during the last Prima run
SETTLE = [True]  # --no-settle: leave start-up's heap to the collector (the old behaviour)
BY_TURN: dict[str, list[float]] = {}  # Runtime.handle CPU seconds per kind of turn (--by-turn)
PROFILE_TURN = [""]  # --profile-turn: profile only the turns whose kind contains this
RUNTIME_PROFILE: list[cProfile.Profile] = []  # set by --profile: Runtime.handle's own thread
CPU: list[float] = []  # process CPU seconds of each run: steadier than wall time on a busy host
Feed = Callable[[dict[str, Any]], Awaitable[Any]]


async def resident(uid: int, feed: Feed, session: InProcessSession, make: Updates,
                   latencies: list[float], record: list[dict[str, Any]]) -> None:
    """One resident's full survey; each step waits for the bot, as a person would."""
    # consent, menu "Nilai layanan", first agency, first service, nine answers (best first)
    script: list[str | int] = ["/start", 0, 0, 0, 0, *([0] * 9),
                               "Pelayanan cepat, petugas ramah, antrean tertib."]
    for step in script:
        update = make.text(uid, step) if isinstance(step, str) else \
            make.press(uid, session.keyboards[uid], step)
        record.append(update)
        t0 = time.perf_counter()
        await feed(update)
        latencies.append(time.perf_counter() - t0)


async def run_pool(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> float:
    queue = list(reversed(jobs))

    async def worker() -> None:
        while queue:
            await queue.pop()()

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    CPU.append(time.process_time() - c0)
    return time.perf_counter() - t0


def figures(name: str, n: int, elapsed: float, lat: list[float]) -> float:
    lat = sorted(lat)
    rate = n / elapsed
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print(f"{name:<22} {n:>6} updates {elapsed:6.2f} s {rate:7.0f} upd/s  "
          f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  CPU {CPU[-1] / n * 1000:5.2f} ms/update")
    return rate


async def bench_prima(app: App, residents: int, concurrency: int,
                      ) -> tuple[int, float, list[float], list[list[dict[str, Any]]]]:
    session = InProcessSession()
    bot = Bot(TOKEN, session=session)
    channel = TelegramChannel(app.runtime, bot, app.texts)
    handle = app.runtime.handle

    def timed_handle(inbound: Any) -> Any:  # CPU of the runtime alone, in its own thread
        ev = inbound.event
        kind = f"{ev.text[:30]!r}" if ev.text else f"button q{ev.q} {ev.choice}"
        profile = RUNTIME_PROFILE and PROFILE_TURN[0] in kind
        t0 = time.thread_time()
        if profile:
            RUNTIME_PROFILE[0].enable()
        try:
            return handle(inbound)
        finally:
            if profile:
                RUNTIME_PROFILE[0].disable()
            spent = time.thread_time() - t0
            RUNTIME_CPU[0] += spent
            BY_TURN.setdefault(kind, []).append(spent)

    RUNTIME_CPU[0] = 0.0
    app.runtime.handle = timed_handle  # type: ignore[method-assign]
    await channel.setup()
    dp = channel.dispatcher()
    make = Updates()
    latencies: list[float] = []
    records: list[list[dict[str, Any]]] = [[] for _ in range(residents)]

    async def feed(update: dict[str, Any]) -> Any:
        return await dp.feed_raw_update(bot, update)

    base = 10_000_000 + uuid.uuid4().int % 1_000_000 * 100  # fresh residents every run
    def job(i: int) -> Callable[[], Awaitable[None]]:
        return lambda: resident(base + i, feed, session, make, latencies, records[i])

    jobs = [job(i) for i in range(residents)]
    elapsed = await run_pool(jobs, concurrency)
    channel.close()
    app.runtime.handle = handle  # type: ignore[method-assign]
    return sum(map(len, records)), elapsed, latencies, records


async def bench_echo(records: list[list[dict[str, Any]]], concurrency: int,
                     ) -> tuple[int, float, list[float]]:
    """The same updates through a bare aiogram bot that echoes text and acknowledges buttons."""
    bot = Bot(TOKEN, session=InProcessSession())
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    @dp.callback_query()
    async def ack(query: CallbackQuery) -> None:
        await query.answer()
        await bot.send_message(query.from_user.id, query.data or "?")

    latencies: list[float] = []

    async def replay(updates: list[dict[str, Any]]) -> None:
        for update in updates:
            t0 = time.perf_counter()
            await dp.feed_raw_update(bot, update)
            latencies.append(time.perf_counter() - t0)

    def job(updates: list[dict[str, Any]]) -> Callable[[], Awaitable[None]]:
        return lambda: replay(updates)

    jobs = [job(r) for r in records]
    elapsed = await run_pool(jobs, concurrency)
    return sum(map(len, records)), elapsed, latencies


def count_statements(app: App) -> Callable[[], int]:
    """Count SQL statements from now on: a figure that does not depend on the host's load.

    Statements run through ``bot.storage.hotsql.Prepared`` bypass SQLAlchemy's events; they count too.
    """
    from sqlalchemy import event

    from bot.storage import hotsql

    counter = [0]
    prepared = hotsql.EXECUTED[0]

    def count(*_: Any) -> None:
        counter[0] += 1

    event.listen(app.engine, "before_cursor_execute", count)
    event.listen(app.engine, "begin", count)  # BEGIN IMMEDIATE goes to the driver directly
    event.listen(app.engine, "commit", count)
    return lambda: counter[0] + hotsql.EXECUTED[0] - prepared


async def count_round_trips(url: str, concurrency: int) -> float:
    """Round trips per update to PostgreSQL, over a counting proxy (a small separate pass)."""
    proxy = RoundTrips(url)
    app = make_app(proxy.url)
    try:
        await bench_prima(app, 4, concurrency)  # connections made, statements prepared
        proxy.count = 0
        n, *_ = await bench_prima(app, 40, concurrency)
        return proxy.count / n
    finally:
        app.engine.dispose()
        proxy.close()


def _delay_proxy(host: str, port: int, delay: float, ready: Any) -> None:
    """A TCP proxy that holds every chunk ``delay`` seconds each way (in a process of its own,
    so its work is not counted against the bot's): PostgreSQL as if on another machine."""

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, port)
        loop = asyncio.get_running_loop()

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

            async def release() -> None:
                while (item := await held.get())[1]:
                    if (wait := item[0] - loop.time()) > 0:
                        await asyncio.sleep(wait)
                    dst.write(item[1])
                    await dst.drain()
                dst.close()

            out = asyncio.create_task(release())
            while data := await src.read(65536):
                held.put_nowait((loop.time() + delay, data))
            held.put_nowait((0.0, b""))
            await out

        await asyncio.gather(pump(client_r, server_w), pump(server_r, client_w), return_exceptions=True)

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        ready.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def delayed(url: str, delay_ms: float) -> tuple[str, Callable[[], None]]:
    """``url`` through :func:`_delay_proxy`: the new URL and how to stop the proxy. Prints the
    round trip measured through it."""
    import multiprocessing

    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_delay_proxy, args=(u.host or "127.0.0.1", u.port or 5432,
                                                  delay_ms / 2000, there), daemon=True)
    proc.start()
    port = here.recv()
    proxied = u.set(host="127.0.0.1", port=port)
    with psycopg.connect(host="127.0.0.1", port=port, user=u.username, dbname=u.database,
                         autocommit=True) as conn:
        times = []
        for _ in range(100):
            t0 = time.perf_counter()
            conn.execute("SELECT 1")
            times.append(time.perf_counter() - t0)
    print(f"PostgreSQL through a proxy adding {delay_ms:g} ms per round trip: "
          f"SELECT 1 takes {statistics.median(times) * 1000:.2f} ms (median)")
    return proxied.render_as_string(hide_password=False), proc.terminate


def _both(first: Callable[[], None], then: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        first()
        then()
    return run


def make_app(url: str) -> App:
    settings = Settings(database_url=url, log_level="WARNING")
    app = build_app(settings)
    if SETTLE[0]:
        settle_heap()  # as `python bot.py` does before serving
    return app


async def main_async(args: argparse.Namespace) -> int:
    residents = max(1, args.updates // UPDATES_PER_RESIDENT)
    PROFILE_TURN[0] = args.profile_turn
    SETTLE[0] = not args.no_settle
    print(f"{residents} residents x {UPDATES_PER_RESIDENT} updates, concurrency {args.concurrency}")
    backends: list[tuple[str, str, Callable[[], None]]] = []
    tmp = tempfile.TemporaryDirectory()
    if not args.postgres_only:
        backends.append(("SQLite", f"sqlite:///{tmp.name}/bench.db", lambda: None))
    if args.postgres:
        url, drop = scratch_schema(args.postgres, prefix="bench_")
        if args.network_delay:
            url, stop = delayed(url, args.network_delay)
            drop = _both(stop, drop)
        backends.append(("PostgreSQL", url, drop))
    ok = True
    try:
        for name, url, _ in backends:
            app = make_app(url)
            await bench_prima(app, max(1, residents // 10), args.concurrency)  # warm-up
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                RUNTIME_PROFILE[:] = [cProfile.Profile()]
                profiler.enable()
            statements = count_statements(app)
            BY_TURN.clear()
            n, elapsed, lat, records = await bench_prima(app, residents, args.concurrency)
            if profiler:
                profiler.disable()
                print("== event loop thread (aiogram, channel, sends) ==")
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(45)
                print("== Runtime.handle (the turn's own thread) ==")
                turns = pstats.Stats(RUNTIME_PROFILE[0]) if RUNTIME_PROFILE[0].getstats() else None
                if turns is None:
                    print(f"  no turn matched --profile-turn {args.profile_turn!r}")
                else:
                    turns.sort_stats(args.sort).print_stats(45)
                    if args.callers:
                        turns.print_callers(args.callers)
                RUNTIME_PROFILE.clear()
            if args.by_turn or profiler:
                print("== Runtime.handle CPU by kind of turn (the costliest first) ==")
                for k, v in sorted(BY_TURN.items(), key=lambda kv: -sum(kv[1])):
                    print(f"  {k:<34} {len(v):6} turns {sum(v) / len(v) * 1000:6.2f} ms each")
            rate = figures(f"Prima + {name}", n, elapsed, lat)
            print(f"  SQL statements per update: {statements() / n:.1f} (BEGIN/COMMIT included); "
                  f"Runtime.handle CPU {RUNTIME_CPU[0] / n * 1000:.2f} ms/update")
            if name == "PostgreSQL":
                print(f"  round trips per update: {await count_round_trips(url, args.concurrency):.1f} "
                      "(counted by a proxy in a separate pass; BEGIN/COMMIT included)")
            en, eelapsed, elat = await bench_echo(records, args.concurrency)
            echo_rate = figures("bare aiogram echo", en, eelapsed, elat)
            p99 = sorted(lat)[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
            print(f"  ratio to bare echo: {rate / echo_rate:.2f}")
            if name == "SQLite":  # the targets; the ratio is what a busy host keeps
                met = rate >= 1500 and p99 < 30 and rate / echo_rate >= 0.3
                ok = ok and met
                print(f"  target (>= 1,500 upd/s, p99 < 30 ms, >= 0.3 of the echo): "
                      f"{'met' if met else 'NOT met'}")
            else:
                met = rate >= 1000 and p99 < 50
                print(f"  target (>= 1,000 upd/s, p99 < 50 ms): {'met' if met else 'NOT met'}")
            app.engine.dispose()
    finally:
        for _, _, drop in backends:
            drop()
        tmp.cleanup()
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--updates", type=int, default=3000, help="updates per backend (default 3000)")
    p.add_argument("--concurrency", type=int, default=16, help="residents in flight at once")
    p.add_argument("--postgres", metavar="URL", help="also measure PostgreSQL (a schema is created)")
    p.add_argument("--postgres-only", action="store_true", help="with --postgres: skip SQLite")
    p.add_argument("--network-delay", metavar="MS", type=float, default=0.0,
                   help="with --postgres: reach it through a proxy (its own process) that adds MS "
                        "milliseconds to each round trip, as a server on another machine would")
    p.add_argument("--profile", action="store_true", help="print a cProfile of the Prima run")
    p.add_argument("--no-settle", action="store_true",
                   help="do not freeze start-up's heap (bot.app.settle_heap) first: the baseline for it")
    p.add_argument("--by-turn", action="store_true",
                   help="print Runtime.handle's CPU per kind of turn (button, typed text)")
    p.add_argument("--profile-turn", metavar="TEXT", default="",
                   help="with --profile: profile only the turns whose kind (as printed) contains TEXT")
    p.add_argument("--callers", metavar="NAME", help="with --profile: who calls NAME in the runtime")
    p.add_argument("--sort", default="cumulative", help="cProfile order: cumulative or tottime")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiogram").setLevel(logging.WARNING)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
