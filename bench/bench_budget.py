"""Send budget shared by two processes: together they stay within Telegram's 30 messages/s.

The fake Bot API (tests/fake_telegram.py) enforces 30 messages/s for all its clients
together, as Telegram does per bot token, and answers 429 above it. Two real bot processes
(subprocesses of this script) drain one PostgreSQL outbox through the real dispatcher
(bot/scheduler.py ``build_dispatcher``, the real aiogram sender), each configured for 30/s.
Reported per SEND_BUDGET:

- ``local`` (the baseline): each process paces itself alone, so together they try twice the
  limit and the server answers 429s (the overshoot);
- ``postgres`` and ``redis``: one budget shared by both; target: total rate >= 0.95 x 30/s
  and zero 429s.

The rate is taken at the server: messages accepted, from the first to the last. Each mode
sends ``--messages`` rows to distinct chats (only the total limit applies); both processes
start together. The processes are started once and run every mode in turn (importing aiogram
is most of a start), each mode with its own app and budget in a scratch PostgreSQL schema.

    python bench/bench_budget.py                     # about a minute: 300 messages per mode
    python bench/bench_budget.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test \
        --redis redis://127.0.0.1:6379/0 --messages 600 --modes postgres,redis
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asyncio.subprocess import Process  # noqa: E402

from sqlalchemy import delete, func, insert, select  # noqa: E402

from bot.app import App, build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import OutboxMessage, SendBudgetKey  # noqa: E402
from tests.fake_telegram import TOKEN, FakeTelegram  # noqa: E402

PROCESSES = 2


def settings(database: str, mode: str, redis: str, base_url: str, rate: float) -> Settings:
    return Settings(database_url=database, catalog_path=ROOT / "catalog.yaml", send_budget=mode,  # type: ignore[arg-type]
                    redis_url=redis if mode == "redis" else None, telegram_bot_token=TOKEN,
                    telegram_api_base=base_url, telegram_rate_total=rate)


def add_rows(app: App, n: int) -> None:
    now = datetime.now(UTC)
    rows = [{"channel": "telegram", "chat_id": str(100_000 + i), "kind": "reply",
             "payload": {"text": f"Halo {i}", "choices": []}, "status": "pending",
             "due_at": now - timedelta(seconds=1), "attempts": 0, "created_at": now,
             "dedupe_key": f"budget:{i}", "urgent": True, "uncertain": 0} for i in range(n)]
    with app.factory() as db, db.begin():
        db.execute(insert(OutboxMessage), rows)


def unsent(app: App) -> int:
    with app.factory() as db:
        return db.scalar(select(func.count()).select_from(OutboxMessage)
                         .where(OutboxMessage.status.in_(("pending", "claimed")))) or 0


# ---------------------------------------------------------------------- one bot process


async def worker(args: argparse.Namespace) -> int:
    """One bot process, started once for every mode (imports are the slow part of a start).

    For each line "<mode> <database url>" on stdin: its own app, budget and dispatcher, then
    "ready"; on "go" it drains the outbox and prints its totals as JSON. "quit" ends it.
    """
    from bot.channels.telegram.sender import TelegramSender, make_bot
    from bot.scheduler import build_dispatcher

    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            return 0
        mode, database = line
        app = build_app(settings(database, mode, args.redis, args.base_url, args.rate))
        bot = make_bot(TOKEN, args.base_url)
        dispatcher = build_dispatcher(app, {"telegram": TelegramSender(bot)})
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # both processes start together
        try:
            while True:
                stats = await dispatcher.tick()
                if not stats.claimed and not dispatcher.in_flight:
                    if not await asyncio.to_thread(unsent, app):
                        break
                    await asyncio.sleep(0.1)  # rows backing off after a 429
            await dispatcher.idle()
        finally:
            await bot.session.close()
            if app.limiter is not None and hasattr(app.limiter, "aclose"):
                await app.limiter.aclose()
            app.engine.dispose()
        t = dispatcher.totals
        print(json.dumps({"sent": t.sent, "retry": t.retry, "failed": t.failed}), flush=True)


# ---------------------------------------------------------------------- the benchmark


async def say(procs: list[Process], line: str) -> None:
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(line.encode() + b"\n")
        await p.stdin.drain()


async def hear(p: Process, timeout: float) -> str:
    assert p.stdout is not None
    line = await asyncio.wait_for(p.stdout.readline(), timeout)
    if not line:
        raise RuntimeError("a bot process stopped (see its error above)")
    return line.decode().strip()


async def run_mode(mode: str, args: argparse.Namespace, url: str, server: FakeTelegram,
                   procs: list[Process]) -> dict[str, Any]:
    app = build_app(settings(url, mode, args.redis, server.base_url, args.rate))
    with app.factory() as db, db.begin():
        db.execute(delete(OutboxMessage))
        db.execute(delete(SendBudgetKey))
    add_rows(app, args.messages)
    server.sent.clear()
    server.answered_at.clear()
    server.requests.clear()
    server.throttled = 0
    await say(procs, f"{mode} {url}")
    for p in procs:
        if (line := await hear(p, 120)) != "ready":
            raise RuntimeError(f"a bot process did not start: {line!r}")
    await say(procs, "go")
    timeout = args.messages / args.rate * 4 + 60
    per_process = [json.loads(line) for line in
                   await asyncio.gather(*(hear(p, timeout) for p in procs))]
    left = unsent(app)
    app.engine.dispose()
    times = sorted(t for _, t in server.answered_at)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    attempts = len(server.calls("sendMessage"))
    return {"mode": mode, "sent": len(server.sent), "rate": (len(times) - 1) / span,
            "tried_rate": attempts / span, "http_429": server.throttled, "span": span, "left": left,
            "per_process": [p["sent"] for p in per_process]}


async def main(args: argparse.Namespace) -> int:
    if not args.database:
        print("bench_budget needs PostgreSQL: --database postgresql+psycopg://... "
              "(or PRIMA_TEST_POSTGRES_URL)", file=sys.stderr)
        return 2
    server = FakeTelegram()
    server.rate_limit = args.rate
    await server.start()
    url, drop = scratch_schema(args.database, prefix="bench_")  # never the real tables
    build_app(settings(url, "local", args.redis, server.base_url, args.rate)).engine.dispose()
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--worker", "--redis", args.redis, "--base-url", server.base_url,
        "--rate", str(args.rate), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "LOG_LEVEL": "ERROR"}) for _ in range(PROCESSES)]
    ok = True
    print(f"# send budget: {PROCESSES} processes, one PostgreSQL outbox, fake Bot API enforcing "
          f"{args.rate:g} msg/s for all clients, {args.messages} messages per mode", flush=True)
    try:
        for mode in args.modes.split(","):
            r = await run_mode(mode, args, url, server, procs)
            ratio = r["rate"] / args.rate
            print(f"SEND_BUDGET={mode:8} total {r['rate']:6.2f} msg/s accepted ({ratio:.3f} of "
                  f"{args.rate:g}/s), tried {r['tried_rate']:6.2f} msg/s, 429s: {r['http_429']:4d}, "
                  f"sent {r['sent']} in {r['span']:.1f} s (per process: "
                  f"{', '.join(str(n) for n in r['per_process'])}), unsent {r['left']}", flush=True)
            if mode == "local":
                continue  # the baseline: shows the overshoot, not judged
            ok = ok and ratio >= 0.95 and r["http_429"] == 0 and r["left"] == 0
        await say(procs, "quit")
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 30)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await server.stop()
        drop()
    print("target for the shared budgets: >= 0.95 of the limit and 0 429s:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", default=os.environ.get("PRIMA_TEST_POSTGRES_URL", ""),
                   help="PostgreSQL URL (a scratch schema is used and dropped)")
    p.add_argument("--redis", default=os.environ.get("PRIMA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--messages", type=int, default=300, help="messages per mode (default 300: 10 s)")
    p.add_argument("--rate", type=float, default=30.0, help="server limit and each bot's limit, msg/s")
    p.add_argument("--modes", default="local,postgres,redis")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    ns = parse()
    sys.exit(asyncio.run(worker(ns) if ns.worker else main(ns)))
