"""How long a Prometheus scrape of ``/metrics`` takes with 100,000 outbox rows.

The outbox is filled with a realistic mix (mostly sent, some pending, failed, waiting for
WhatsApp's window, a few claimed) on two channels, plus some open cases. Reported, each as the
median and the slowest of ``--scrapes`` runs on the same database in the same run:

- ``GET /metrics`` through the bot's real aiohttp app (handler, collector, exposition);
- the collector alone (``generate_latest`` of the app's registry);
- the baseline: a bare ``SELECT status, channel, count(*) FROM outbox GROUP BY status, channel``,
  the one query the outbox gauges need;
- ``GET /healthz`` uncached (two index range counts plus the scheduler's beat).

The four take turns within each round, so load from elsewhere on the host hits them alike.

    python bench/bench_metrics.py                                   # SQLite only
    python bench/bench_metrics.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/bench_metrics.py --without-index ...   # drop ix_outbox_status_channel_due first

The schema carries ``ix_outbox_status_channel_due`` (status, channel, due_at, id; migration
0016_outbox_index), which answers the GROUP BY from the index; ``--without-index`` drops it to
show the figure before that migration.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402

from bot.app import App, build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.desk.cases import open_case  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import Agency, OutboxMessage  # noqa: E402
from bot.web.server import HEALTH, build_web_app  # noqa: E402

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
# (status, share of rows): what a year of traffic leaves behind, roughly
MIX = (("sent", 0.90), ("pending", 0.05), ("failed", 0.02), ("waiting", 0.01),
       ("cancelled", 0.015), ("unknown", 0.004), ("claimed", 0.001))


def fill(app: App, rows: int, cases: int, index: bool = True) -> None:
    made = 0
    batch: list[dict[str, Any]] = []
    with app.engine.begin() as conn:
        for status, share in MIX:
            for _ in range(int(rows * share)):
                channel = "whatsapp" if status == "waiting" or made % 3 == 0 else "telegram"
                due = NOW + timedelta(hours=1) if status == "pending" and made % 2 else NOW - timedelta(minutes=1)
                batch.append({"channel": channel, "chat_id": str(100_000 + made % 20_000), "kind": "reply",
                              "payload": {"text": f"Halo {made}", "choices": []}, "status": status,
                              "due_at": due, "attempts": 1, "created_at": NOW,
                              "claimed_at": NOW if status == "claimed" else None,
                              "urgent": True, "uncertain": 0})
                made += 1
                if len(batch) == 5000:
                    conn.execute(insert(OutboxMessage), batch)
                    batch = []
        if batch:
            conn.execute(insert(OutboxMessage), batch)
    with app.factory() as db, db.begin():
        agencies = list(db.scalars(select(Agency)))
        for n in range(cases):
            open_case(db, agency=agencies[n % len(agencies)], source_key=f"bench:{n}", trigger="manual",
                      reasons=[], summary="bench", now=NOW - timedelta(days=n % 40), actor="bench",
                      immediate=False)
    with app.engine.begin() as conn:
        if not index:  # the schema before migration 0016_outbox_index
            conn.execute(text("DROP INDEX ix_outbox_status_channel_due"))
    if app.engine.dialect.name == "postgresql":  # what autovacuum does after a bulk load: the
        # visibility map lets an index-only scan skip the table
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE outbox"))
    else:
        with app.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def bare_group_by(app: App) -> None:
    with app.engine.connect() as conn:
        conn.execute(text("SELECT status, channel, count(*) FROM outbox GROUP BY status, channel")).all()


async def timed(fns: dict[str, Callable[[], Awaitable[object]]], repeat: int,
                ) -> dict[str, tuple[float, float]]:
    """name -> (median, slowest) milliseconds of ``repeat`` runs, after one warm-up run each.

    The runs take turns (one of each per round), so a neighbour's load hits them all alike.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        await fn()
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            await fn()
            samples[name].append((time.perf_counter() - t0) * 1000)
    return {name: (statistics.median(v), max(v)) for name, v in samples.items()}


async def measure(url: str, rows: int, cases: int, scrapes: int, index: bool,
                  ) -> list[tuple[str, float, float]]:
    app = build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml"), clock=lambda: NOW)
    try:
        t0 = time.perf_counter()
        fill(app, rows, cases, index)
        print(f"  filled {rows:,} outbox rows and {cases} cases in {time.perf_counter() - t0:.1f} s",
              flush=True)
        web_app = build_web_app(app=app)
        web_app[HEALTH].cache_seconds = 0
        registry = app.metrics.registry
        async with TestClient(TestServer(web_app)) as client:
            async def scrape() -> None:
                async with client.get("/metrics") as resp:
                    assert resp.status == 200
                    await resp.read()

            async def health() -> None:
                async with client.get("/healthz") as resp:
                    await resp.read()

            async def collect() -> None:
                generate_latest(registry)

            async def bare() -> None:
                bare_group_by(app)

            timings = await timed({"GET /metrics (HTTP, whole)": scrape, "collector alone": collect,
                                   "bare GROUP BY (baseline)": bare,
                                   "GET /healthz, uncached": health}, scrapes)
            results = [(name, median, worst) for name, (median, worst) in timings.items()]
            body = generate_latest(registry).decode()
            print(f"  exposition: {len(body.splitlines())} lines, {len(body):,} bytes", flush=True)
        return results
    finally:
        app.engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--scrapes", type=int, default=30)
    p.add_argument("--postgres", help="also on PostgreSQL (a scratch schema, dropped after)")
    p.add_argument("--without-index", action="store_true",
                   help="drop the index on outbox (status, channel, due_at, id) first (before 0016)")
    args = p.parse_args()
    runs: list[tuple[str, str, Callable[[], None]]] = [
        ("SQLite", f"sqlite:///{tempfile.mkdtemp()}/bench.db", lambda: None)]
    if args.postgres:
        url, drop = scratch_schema(args.postgres, prefix="bench_")
        runs.append(("PostgreSQL", url, drop))
    table = []
    for label, url, drop in runs:
        print(f"{label}:", flush=True)
        try:
            for name, median, worst in asyncio.run(measure(url, args.rows, args.cases, args.scrapes,
                                                                   not args.without_index)):
                table.append((label, name, median, worst))
        finally:
            drop()
    extra = " (without the index of 0016_outbox_index)" if args.without_index else ""
    print(f"\n{args.rows:,} outbox rows, {args.cases} cases; {args.scrapes} runs each{extra}\n")
    print("| database | what | median ms | slowest ms |\n|---|---|---|---|")
    for label, name, median, worst in table:
        print(f"| {label} | {name} | {median:.1f} | {worst:.1f} |")


if __name__ == "__main__":
    main()
