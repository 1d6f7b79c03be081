"""Outbox benchmarks: sustained send rate under a server-enforced limit, and a tick over 100k rows.

1. Rate: the local fake Bot API enforces 30 messages/s (answering 429 above it); the bot
   process runs its real scheduler (APScheduler ticks), dispatcher and aiogram Bot. Reported:
   achieved rate / allowed rate (target >= 0.95) and the 429s the server had to send
   (target 0). Baseline in the same run: the same messages with no limit on either side,
   which shows how far below its capacity the bot runs when paced.
2. Scale: 100,000 pending follow-ups (not yet due) plus a batch that is due. Reported: the
   time of one dispatcher tick and the process's memory, against a baseline tick over an
   outbox holding only the due batch.
3. Slow chats: the same messages as the rate run, plus two chats whose sends answer only
   after ``--hang`` seconds (35 by default). Reported: how long everyone else's messages
   took, with and without the two (target: about the same), and how many copies the slow
   chats received meanwhile.
4. Order: 300 chats with 5 messages each under the per-chat limit (1/s, burst 3), so rows are
   handed back at the end of ticks, and a newer message for every chat written 0.3 s in.
   Reported: chats that received their messages out of order (target 0).

    python bench/bench_outbox.py                       # a few minutes at most
    python bench/bench_outbox.py --messages 1800 --pending 100000 --database postgresql+psycopg://...
    python bench/bench_outbox.py --only broadcast --window 60   # bench/bench_broadcast.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bot.app import App, build_app  # noqa: E402
from bot.channels.telegram.sender import TelegramSender, make_bot  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.outbox.dispatcher import DispatchConfig, Dispatcher  # noqa: E402
from bot.outbox.ratelimit import RateLimiter  # noqa: E402
from bot.scheduler import build_scheduler, stop_background  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import OutboxMessage  # noqa: E402
from tests.fake_telegram import TOKEN, FakeTelegram  # noqa: E402


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make(database: str | None, tmp: Path, name: str, **settings: Any) -> App:
    url = database or f"sqlite:///{tmp / (name + '.db')}"
    app = build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml", **settings))
    with app.factory() as db, db.begin():
        db.execute(text("DELETE FROM outbox"))
    return app


def add_rows(app: App, n: int, due: datetime, chats: int, start: int = 0, kind: str = "reply") -> None:
    now = datetime.now(UTC)
    for lo in range(start, start + n, 5000):
        rows = [{"channel": "telegram", "chat_id": str(100_000 + i % chats), "kind": kind,
                 "payload": {"text": f"Halo {i}", "choices": []}, "status": "pending", "due_at": due,
                 "attempts": 0, "created_at": now, "dedupe_key": f"bench:{i}", "urgent": True,
                 "uncertain": 0} for i in range(lo, min(start + n, lo + 5000))]
        with app.factory() as db, db.begin():
            db.execute(insert(OutboxMessage), rows)


class TimedSender:
    """Wraps the real sender to note when each message went out."""

    def __init__(self, inner: TelegramSender) -> None:
        self.inner = inner
        self.channel = inner.channel
        self.times: list[float] = []

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        result = await self.inner.send(chat_id, payload)
        self.times.append(time.monotonic())
        return result


async def rate_run(app: App, n: int, limited: bool, server_limit: float) -> dict[str, float]:
    """Send ``n`` due messages through the real scheduler; returns rate and 429 figures."""
    server = FakeTelegram()
    server.rate_limit = server_limit if limited else None
    await server.start()
    bot = make_bot(TOKEN, server.base_url)
    sender = TimedSender(TelegramSender(bot))
    add_rows(app, n, datetime.now(UTC) - timedelta(seconds=1), chats=max(n, 1))
    scheduler = build_scheduler(app, {"telegram": sender}, clock=lambda: datetime.now(UTC))
    start = time.monotonic()
    scheduler.start()
    try:
        await server.wait_for(lambda: len(server.sent) >= n, timeout=n / 10 + 60)
    finally:
        await stop_background(scheduler)
        await bot.session.close()
        await server.stop()
    elapsed = sender.times[-1] - sender.times[0] if len(sender.times) > 1 else float("nan")
    requests = len(server.calls("sendMessage"))
    return {"sent": len(server.sent), "rate": (len(sender.times) - 1) / elapsed,
            "http_429": requests - len(server.sent), "wall": time.monotonic() - start}


class NullSender:
    channel = "telegram"

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        return "1"


async def tick_run(app: App, pending: int, due: int, start: int) -> dict[str, float]:
    """One dispatcher tick after adding ``pending`` future rows and ``due`` due ones."""
    now = datetime.now(UTC)
    add_rows(app, pending, now + timedelta(days=7), chats=20_000, start=start, kind="followup_checkin")
    add_rows(app, due, now - timedelta(minutes=1), chats=due, start=start + pending, kind="followup_checkin")
    with app.factory() as db:
        total = db.scalar(select(func.count()).select_from(OutboxMessage)) or 0
        waiting = db.scalar(select(func.count()).select_from(OutboxMessage)
                            .where(OutboxMessage.status == "pending")) or 0
    d = Dispatcher(app.factory, {"telegram": NullSender()}, RateLimiter({}), clock=lambda: datetime.now(UTC),
                   config=DispatchConfig(batch=due, tick_budget=60))
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    stats = await d.tick()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"rows": total, "pending": waiting, "sent": stats.sent, "tick_s": seconds,
            "peak_alloc_mb": peak / 2**20, "rss_mb": rss_mb()}


async def slow_run(app: App, n: int, hang: float, slow: int) -> dict[str, float]:
    """``n`` messages to ordinary chats plus ``slow`` chats whose sends answer after ``hang`` s."""
    server = FakeTelegram()
    await server.start()
    bot = make_bot(TOKEN, server.base_url)
    sender = TimedSender(TelegramSender(bot))
    due = datetime.now(UTC) - timedelta(seconds=1)
    add_rows(app, n, due, chats=max(n // 3, 1))
    slow_ids = [900_000 + k for k in range(slow)]
    for k, chat in enumerate(slow_ids):  # due first: they are claimed before everyone else
        server.slow[chat] = hang
        with app.factory() as db, db.begin():
            db.execute(insert(OutboxMessage), [
                {"channel": "telegram", "chat_id": str(chat), "kind": "reply",
                 "payload": {"text": f"Lambat {k}.{j}", "choices": []}, "status": "pending",
                 "due_at": due - timedelta(seconds=1), "attempts": 0, "created_at": due,
                 "dedupe_key": f"slow:{chat}:{j}", "urgent": True, "uncertain": 0} for j in range(3)])
    others = {str(100_000 + i % max(n // 3, 1)) for i in range(n)}
    scheduler = build_scheduler(app, {"telegram": sender}, clock=lambda: datetime.now(UTC))
    start = time.monotonic()
    scheduler.start()
    try:
        await server.wait_for(lambda: sum(str(s.chat_id) in others for s in server.sent) >= n,
                              timeout=n / 10 + 120)
        done = max(t for c, t in server.answered_at if str(c) in others) - start
    finally:
        await stop_background(scheduler, timeout=60)
        await bot.session.close()
        await server.stop()
    copies = [len(server.chat(c)) for c in slow_ids]
    return {"others_s": done, "slow_copies": max(copies, default=0), "slow_msgs": 3}


async def order_run(app: App, chats: int = 300, per_chat: int = 5) -> dict[str, float]:
    """Per-chat limit 1/s (burst 3), 5 messages per chat, one more per chat written 0.3 s in."""
    server = FakeTelegram()
    await server.start()
    bot = make_bot(TOKEN, server.base_url)
    sender = TelegramSender(bot)
    now = datetime.now(UTC)
    add_rows(app, chats * per_chat, now - timedelta(seconds=1), chats=chats)
    scheduler = build_scheduler(app, {"telegram": sender}, clock=lambda: datetime.now(UTC))
    scheduler.start()
    total = chats * (per_chat + 1)
    try:
        await asyncio.sleep(0.3)  # after the first tick, before the rows handed back are due
        add_rows(app, chats, datetime.now(UTC), chats=chats, start=chats * per_chat)
        await server.wait_for(lambda: len(server.sent) >= total, timeout=120)
    finally:
        await stop_background(scheduler)
        await bot.session.close()
        await server.stop()
    with app.factory() as db:
        expected: dict[str, list[str]] = {}
        for chat, payload in db.execute(select(OutboxMessage.chat_id, OutboxMessage.payload)
                                        .order_by(OutboxMessage.id)):
            expected.setdefault(chat, []).append(payload["text"])
    got: dict[str, list[str]] = {}
    for sent in server.sent:
        got.setdefault(str(sent.chat_id), []).append(sent.text or "")
    bad = sum(got.get(c) != texts for c, texts in expected.items())
    return {"chats": len(expected), "out_of_order": bad, "sent": len(server.sent)}


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=450, help="messages for the rate run (default 450: 15 s)")
    p.add_argument("--limit", type=float, default=30.0, help="server and bot limit, messages/s")
    p.add_argument("--pending", type=int, default=100_000, help="future follow-ups for the tick run")
    p.add_argument("--due", type=int, default=200, help="due rows in the tick run")
    p.add_argument("--database", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    p.add_argument("--hang", type=float, default=35.0, help="seconds the slow chats' sends take to answer")
    p.add_argument("--only", choices=("all", "rate", "scale", "slow", "order", "broadcast"), default="all",
                   help="broadcast: bench/bench_broadcast.py (100,000 due per channel, not part of 'all')")
    args, _ = p.parse_known_args()
    if args.only == "broadcast":  # its own options: --due, --window, --warm, --repeat
        import bench_broadcast

        argv = sys.argv[1:]
        at = argv.index("--only") if "--only" in argv else None
        own = argv[:at] + argv[at + 2:] if at is not None else [a for a in argv if a != "--only=broadcast"]
        return await bench_broadcast.amain(bench_broadcast.parse(own))
    drop = None
    if args.database:  # a scratch schema: the benchmark never touches real tables
        args.database, drop = scratch_schema(args.database, prefix="bench_")
    try:
        return await run(args)
    finally:
        if drop is not None:
            drop()


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        print(f"# outbox benchmark ({'PostgreSQL' if args.database else 'SQLite'})")
        ok = True
        if args.only in ("all", "rate"):
            fast = make(args.database, tmp, "fast", telegram_rate_total=0, telegram_rate_chat=0)
            base = await rate_run(fast, args.messages, limited=False, server_limit=args.limit)
            fast.engine.dispose()
            print(f"baseline, no limits:           {base['rate']:8.1f} msg/s  ({base['sent']:.0f} sent)")
            paced = make(args.database, tmp, "paced", telegram_rate_total=args.limit)
            res = await rate_run(paced, args.messages, limited=True, server_limit=args.limit)
            paced.engine.dispose()
            ratio = res["rate"] / args.limit
            print(f"server limit {args.limit:g}/s, bot limit {args.limit:g}/s: {res['rate']:8.2f} msg/s  "
                  f"achieved/allowed {ratio:.3f} (target >= 0.95), 429s from the server: "
                  f"{res['http_429']:.0f} (target 0), {res['sent']:.0f} sent in {res['wall']:.1f} s")

            ok = ok and ratio >= 0.95 and res["http_429"] == 0
        if args.only in ("all", "scale"):
            app = make(args.database, tmp, "scale")
            await tick_run(app, 0, args.due, 0)  # warm-up: imports, connections, statement caches
            b = await tick_run(app, 0, args.due, 1_000_000)
            r = await tick_run(app, args.pending, args.due, 2_000_000)
            app.engine.dispose()
            for label, x in (("baseline", b), (f"{args.pending:,} pending", r)):
                print(f"tick, {label:>16}: {x['tick_s'] * 1000:7.1f} ms for {x['sent']:.0f} due of "
                      f"{x['pending']:,.0f} pending ({x['rows']:,.0f} rows), peak alloc during the tick "
                      f"{x['peak_alloc_mb']:.1f} MB, process RSS {x['rss_mb']:.0f} MB")
            print(f"tick time with {args.pending:,} pending / baseline: x{r['tick_s'] / b['tick_s']:.2f}")
        if args.only in ("all", "slow"):
            plain = make(args.database, tmp, "plain")
            without = await slow_run(plain, args.messages, args.hang, slow=0)
            plain.engine.dispose()
            slowdb = make(args.database, tmp, "slow")
            with_slow = await slow_run(slowdb, args.messages, args.hang, slow=2)
            slowdb.engine.dispose()
            print(f"slow chats: {args.messages} messages to others delivered in {without['others_s']:.1f} s "
                  f"without, {with_slow['others_s']:.1f} s with 2 chats answering after {args.hang:g} s "
                  f"(x{with_slow['others_s'] / without['others_s']:.2f}); a slow chat received "
                  f"{with_slow['slow_copies']:.0f} message(s) for its {with_slow['slow_msgs']:.0f} "
                  "meanwhile (resends after unknown outcomes, each counted on its row)")
            ok = ok and with_slow["others_s"] < without["others_s"] * 1.5 + 1
        if args.only in ("all", "order"):
            ordered = make(args.database, tmp, "order", telegram_rate_total=0)
            o = await order_run(ordered)
            ordered.engine.dispose()
            print(f"order: {o['out_of_order']:.0f} of {o['chats']:.0f} chats received messages out of "
                  f"order (target 0), {o['sent']:.0f} sent")
            ok = ok and o["out_of_order"] == 0
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
