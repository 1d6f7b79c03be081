"""A broadcast: 100,000 due follow-ups per channel drain at the allowed rate, memory flat.

The outbox holds ``--due`` follow-ups due now on Telegram and as many on WhatsApp (one
resident each, outside WhatsApp's 24-hour window, so each goes as the approved template). The
bot's real scheduler, dispatcher and senders (aiogram against the fake Bot API, which answers
429 above 30 messages/s; the WhatsApp sender against the fake Graph API) send for ``--window``
seconds after ``--warm`` seconds of warm-up. Reported:

- per channel, messages/s over the window against the allowed rate (Telegram 30/s, WhatsApp
  80/s; target >= 0.95) and the fake Bot API's 429s (target 0);
- the process's RSS before the scheduler starts, after the warm-up and at the end (target: flat,
  the backlog is never loaded, a tick claims at most what it can send);
- one claim (the only part of a tick that reads the backlog: the SQL that picks and marks the
  next rows of each channel, then hands them back) with 1,000 due rows per channel and with
  ``--due`` rows per channel, median of ``--repeat`` (target: about the same).

    python bench/bench_broadcast.py                           # SQLite, 100,000 per channel, 60 s
    python bench/bench_broadcast.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/bench_outbox.py --only broadcast ...         # the same, from the outbox benchmark
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bot.app import App, build_app  # noqa: E402
from bot.channels.telegram.sender import TelegramSender, make_bot  # noqa: E402
from bot.channels.whatsapp.graph import GraphClient  # noqa: E402
from bot.channels.whatsapp.sender import Templates, WhatsAppSender  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.outbox.dispatcher import Dispatcher  # noqa: E402
from bot.outbox.ratelimit import RateLimiter  # noqa: E402
from bot.outbox.store import Sender  # noqa: E402
from bot.scheduler import build_scheduler, channel_limits, stop_background  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import OutboxMessage  # noqa: E402
from tests import fake_graph as fg  # noqa: E402
from tests.fake_telegram import TOKEN, FakeTelegram  # noqa: E402

ALLOWED = {"telegram": 30.0, "whatsapp": 80.0}


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def chat_of(channel: str, i: int) -> str:
    return str(200_000_000 + i) if channel == "telegram" else f"62812{i:08d}"


def add_due(app: App, channel: str, start: int, n: int) -> None:
    """``n`` follow-ups due a minute ago, one resident each (no agency: no quiet hours)."""
    now = datetime.now(UTC)
    for lo in range(start, start + n, 5000):
        rows = [{"channel": channel, "chat_id": chat_of(channel, i), "kind": "followup_checkin",
                 "payload": {"text": f"Apakah masalah Anda sudah selesai? ({i})", "choices": []},
                 "status": "pending", "due_at": now - timedelta(minutes=1), "attempts": 0,
                 "created_at": now, "dedupe_key": f"broadcast:{channel}:{i}", "urgent": False,
                 "uncertain": 0} for i in range(lo, min(start + n, lo + 5000))]
        with app.factory() as db, db.begin():
            db.execute(insert(OutboxMessage), rows)
    with app.engine.begin() as conn:  # what autovacuum does after a bulk insert
        conn.execute(text("ANALYZE outbox" if app.engine.dialect.name == "postgresql" else "ANALYZE"))


class NullSender:
    def __init__(self, channel: str) -> None:
        self.channel = channel

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        return "1"


def claim_ms(apps: list[App], repeat: int) -> list[float]:
    """Median milliseconds of one claim of every channel (then handed back unsent), per app.

    The apps take turns, so load from elsewhere on the host hits them alike.
    """
    ds = [Dispatcher(app.factory, {ch: NullSender(ch) for ch in ALLOWED}, RateLimiter(channel_limits(app)),
                     clock=lambda: datetime.now(UTC)) for app in apps]
    samples: list[list[float]] = [[] for _ in apps]
    for n in range(repeat + 1):
        for d, times in zip(ds, samples, strict=True):
            t0 = time.perf_counter()
            rows = d.claim(datetime.now(UTC), 1.0)
            if n:  # the first is a warm-up
                times.append((time.perf_counter() - t0) * 1000)
            d.release([r.id for r in rows])
            d._held.clear()  # the next claim may take the same chats again
    return [statistics.median(t) for t in samples]


class TimedSender:
    """The real sender, noting when each message was accepted."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.channel = inner.channel
        self.times: list[float] = []

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        result = await self.inner.send(chat_id, payload)
        self.times.append(time.monotonic())
        return result


async def drain(app: App, window: float, warm: float) -> dict[str, Any]:
    tg = FakeTelegram()
    tg.rate_limit = ALLOWED["telegram"]
    await tg.start()
    graph = fg.FakeGraph()
    await graph.start()
    bot = make_bot(TOKEN, tg.base_url)
    client = GraphClient(fg.TOKEN, fg.PHONE_NUMBER_ID, graph.base_url)
    clock = lambda: datetime.now(UTC)  # noqa: E731
    senders = {"telegram": TimedSender(TelegramSender(bot)),
               "whatsapp": TimedSender(WhatsAppSender(client, app.factory, clock, app.texts,
                                                      Templates("prima_tindak_lanjut")))}
    scheduler = build_scheduler(app, senders, clock=clock)
    gc.collect()
    rss = {"before": rss_mb()}
    start = time.monotonic()
    cpu0 = time.process_time()
    scheduler.start()
    try:
        end = start + warm + window
        while time.monotonic() < end:
            await asyncio.sleep(1.0)
            # The fakes keep what they received; only the counts matter here.
            for kept in (tg.sent, tg.requests, tg.answered_at):
                kept.clear()
            tg._by_key.clear()
            graph.sent.clear()
            if "warm" not in rss and time.monotonic() >= start + warm:
                gc.collect()
                rss["warm"] = rss_mb()
        gc.collect()
        rss["after"] = rss_mb()
    finally:
        await stop_background(scheduler)
        cpu = time.process_time() - cpu0
        await bot.session.close()
        await client.close()
        await tg.stop()
        await graph.stop()
    lo, hi = start + warm, start + warm + window
    rates = {ch: sum(lo <= t < hi for t in s.times) / window for ch, s in senders.items()}
    sent = sum(len(s.times) for s in senders.values())
    with app.factory() as db:
        left = {ch: n for ch, n in db.execute(select(OutboxMessage.channel, func.count()).where(
            OutboxMessage.status == "pending").group_by(OutboxMessage.channel))}
    return {"rates": rates, "rss": rss, "http_429": tg.throttled, "sent": sent,
            "cpu_ms_per_msg": cpu / max(1, sent) * 1000, "left": left}


async def run(urls: tuple[str, str], postgres: bool, due: int, window: float, warm: float,
              repeat: int) -> bool:
    """``urls``: an empty database for the 1,000-row baseline and one for the broadcast."""
    small, big = (build_app(Settings(database_url=u, catalog_path=ROOT / "catalog.yaml")) for u in urls)
    try:
        print(f"# broadcast ({'PostgreSQL' if postgres else 'SQLite'}): {due:,} due follow-ups "
              f"per channel, {window:g} s window after {warm:g} s warm-up", flush=True)
        base_rows = min(1000, due)
        for ch in ALLOWED:
            add_due(small, ch, 0, base_rows)
            add_due(big, ch, 0, due)
        base, big_ms = claim_ms([small, big], repeat)
        print(f"claim of one tick (both channels, 30 + 80 rows), median of {repeat}: "
              f"{base:.1f} ms with {base_rows:,} due per channel, {big_ms:.1f} ms with {due:,} "
              f"(x{big_ms / base:.2f}; target about 1)", flush=True)
        ok = big_ms < base * 2 + 5
        if window <= 0:
            print("PASS" if ok else "FAIL")
            return ok
        r = await drain(big, window, warm)
    finally:
        small.engine.dispose()
        big.engine.dispose()
    for ch, rate in r["rates"].items():
        ratio = rate / ALLOWED[ch]
        ok = ok and ratio >= 0.95
        print(f"{ch:<9} {rate:6.2f} msg/s of {ALLOWED[ch]:g} allowed: {ratio:.3f} (target >= 0.95), "
              f"{r['left'].get(ch, 0):,} still due at the end")
    rss = r["rss"]
    print(f"429s from the fake Bot API: {r['http_429']} (target 0); {r['sent']:,} sent, process CPU "
          f"{r['cpu_ms_per_msg']:.2f} ms per message (the fake servers included)")
    print(f"RSS: {rss['before']:.0f} MB before the scheduler started, {rss.get('warm', float('nan')):.0f} MB "
          f"after the warm-up, {rss['after']:.0f} MB at the end")
    ok = ok and r["http_429"] == 0 and rss["after"] - rss.get("warm", rss["after"]) < 20
    print("PASS" if ok else "FAIL")
    return ok


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--due", type=int, default=100_000, help="due follow-ups per channel")
    p.add_argument("--window", type=float, default=60.0,
                   help="seconds over which the rate is measured (0: only the claim cost)")
    p.add_argument("--warm", type=float, default=5.0, help="seconds of sending before the window")
    p.add_argument("--repeat", type=int, default=20, help="claims timed for the median")
    p.add_argument("--database", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> int:
    drops = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.database:  # scratch schemas: the benchmark never touches real tables
            urls = []
            for _ in range(2):
                url, drop = scratch_schema(args.database, prefix="bench_")
                urls.append(url)
                drops.append(drop)
        else:
            urls = [f"sqlite:///{tmp}/baseline.db", f"sqlite:///{tmp}/broadcast.db"]
        try:
            ok = await run((urls[0], urls[1]), bool(args.database), args.due, args.window, args.warm,
                           args.repeat)
        finally:
            for drop in drops:
                drop()
    return 0 if ok else 1


def main() -> int:
    return asyncio.run(amain(parse()))


if __name__ == "__main__":
    sys.exit(main())
