"""/data/ikm.json (or the public page, --path /) under concurrent requests, against a static
file served by the same server.

A database is seeded with survey answers and complaints for every agency in the current
quarter; the bot's web app (``build_web_app(app=...)``, so the real open data routes and their
cache) also serves a static copy of the same JSON. Each target gets ``--concurrency`` clients
looping for ``--seconds`` over HTTP on 127.0.0.1; client and server share one event loop, so
the two figures carry the same client overhead and compare fairly. The first (uncached)
computation is timed apart.

    python bench/bench_opendata.py                         # SQLite, 50 clients, 5 s each
    python bench/bench_opendata.py --respondents 20000
    python bench/bench_opendata.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, TCPConnector, web
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App, build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import Complaint, Service, SurveyAnswer, SurveyResponse  # noqa: E402
from bot.web.server import build_web_app  # noqa: E402

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def seed(app: App, respondents: int, complaints: int) -> None:
    rng = random.Random(15)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    span = (NOW - start).total_seconds()
    with app.factory() as db, db.begin():
        services = [(s.id, s.agency_id) for s in db.scalars(select(Service).order_by(Service.id))]
    with app.engine.begin() as conn:
        for chunk in range(0, respondents, 1000):
            n = min(1000, respondents - chunk)
            picks = [(rng.choice(services), start + timedelta(seconds=rng.random() * span)) for _ in range(n)]
            ids = conn.execute(insert(SurveyResponse).returning(SurveyResponse.id), [
                {"response_key": f"bench:{chunk + i}", "agency_id": ag, "service_id": sid,
                 "channel": "telegram", "status": "complete", "started_at": at, "completed_at": at,
                 "updated_at": at}
                for i, ((sid, ag), at) in enumerate(picks)
            ]).scalars().all()
            conn.execute(insert(SurveyAnswer), [
                {"response_id": rid, "agency_id": ag, "service_id": sid, "element": e,
                 "score": rng.choice((1, 2, 3, 3, 4, 4, None)), "answered_at": at, "counted_at": at}
                for rid, ((sid, ag), at) in zip(ids, picks, strict=True) for e in range(1, 10)
            ])
        conn.execute(insert(Complaint), [
            {"ticket": f"PRM-B{i:05d}", "agency_id": ag, "service_id": sid, "channel": "telegram",
             "description": "bench", "category": "penundaan", "attachments": {}, "confidential": i % 7 == 0,
             "contact_consent": False, "status": "resolved" if i % 2 else "new",
             "created_at": at, "updated_at": at, "resolved_at": at + timedelta(days=3) if i % 2 else None,
             "source_key": f"bench:{i}"}
            for i, ((sid, ag), at) in enumerate(
                (rng.choice(services), start + timedelta(seconds=rng.random() * span * 0.9))
                for _ in range(complaints))
        ])


async def load(http: ClientSession, url: str, concurrency: int, seconds: float) -> tuple[float, float, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with http.get(url) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            latencies.append(time.perf_counter() - t0)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, p50 * 1000, p99 * 1000


async def run(url: str, args: argparse.Namespace) -> None:
    app = build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml"), clock=lambda: NOW)
    t0 = time.perf_counter()
    seed(app, args.respondents, args.complaints)
    print(f"seeded {args.respondents} respondents ({args.respondents * 9} answers), "
          f"{args.complaints} complaints in {time.perf_counter() - t0:.1f} s")
    web_app = build_web_app(app=app)
    static = Path(tempfile.mkdtemp(prefix="bench-opendata-"))
    web_app.router.add_static("/static", static)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    try:
        async with ClientSession(connector=TCPConnector(limit=args.concurrency)) as http:
            t0 = time.perf_counter()
            async with http.get(base + args.path) as resp:
                body = await resp.read()
                assert resp.status == 200, resp.status
            print(f"first {args.path} (computed, {len(body)} bytes): {(time.perf_counter() - t0) * 1000:.0f} ms")
            (static / "copy").write_bytes(body)
            results: dict[str, Any] = {}
            for name, path in ((f"{args.path} (cached)", args.path),
                               ("static file, same bytes", "/static/copy")):
                results[name] = await load(http, base + path, args.concurrency, args.seconds)
            print(f"{args.concurrency} concurrent clients, {args.seconds:g} s each:")
            for name, (rps, p50, p99) in results.items():
                print(f"  {name:26s} {rps:8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    finally:
        await runner.cleanup()
        app.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a PostgreSQL URL (a scratch schema is used); default SQLite")
    parser.add_argument("--respondents", type=int, default=5000)
    parser.add_argument("--complaints", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--path", default="/data/ikm.json",
                        help="what to load: /data/ikm.json (default), / (the public page), /a/<agency>")
    args = parser.parse_args()
    if args.postgres:
        url, drop = scratch_schema(args.postgres, prefix="bench_")
        try:
            asyncio.run(run(url, args))
        finally:
            drop()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run(f"sqlite:///{tmp}/prima.db", args))


if __name__ == "__main__":
    main()
