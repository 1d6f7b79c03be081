"""Weekly digest over many stored survey responses, next to a bare GROUP BY in the same run.

One agency gets ``--responses`` questionnaires (nine answers each, about 5% "tidak tahu",
spread over the 52 weeks up to the digest week, across its services) plus some complaints.
Then, on the same database and warm cache:

- baseline: ``SELECT element, avg(score) FROM survey_answers GROUP BY element`` (every row);
- aggregation: ``bot.reports.digest.data.collect`` (week, previous week, year to date, every service,
  12-week trend, complaints, themes): everything the digest says;
- full digest: aggregation + text + chart PNG + XLSX of the week's responses.

The target is aggregation within 3x of the baseline. Each figure is the median of --repeat runs.

    python bench/bench_digest.py                                   # SQLite, 100,000 responses
    python bench/bench_digest.py --responses 1000000               # the full size
    python bench/bench_digest.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App, build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.reports.digest.data import collect, find_agency  # noqa: E402
from bot.reports.digest.files import write_files  # noqa: E402
from bot.reports.digest.period import week_bounds  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import Agency, Service, SurveyAnswer, SurveyResponse  # noqa: E402

AGENCY = "disdukcapil"
WEEK = "2026-W47"
SUGGESTIONS = (
    "antrian terlalu lama di loket", "antrian lama sekali", "petugas kurang ramah",
    "mohon tambah kursi ruang tunggu", "toilet kotor", "pelayanan cepat terima kasih",
    "sistem online sering error", "informasi persyaratan kurang jelas",
)
BARE = "SELECT element, avg(score) FROM survey_answers GROUP BY element"


def seed(app: App, n: int, rnd: random.Random) -> float:
    """Bulk-load ``n`` responses (executemany on SQLite, COPY on PostgreSQL); returns seconds."""
    t0 = time.perf_counter()
    with app.factory() as db:
        agency = db.scalars(select(Agency).where(Agency.slug == AGENCY)).one()
        services = list(db.scalars(select(Service.id).where(Service.agency_id == agency.id)))
        agency_id = agency.id
    _, end = week_bounds(WEEK, "Asia/Jakarta")
    span = int(timedelta(weeks=52).total_seconds())
    fmt = "%Y-%m-%d %H:%M:%S.%f"

    def rows(first: int, count: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        resp, ans = [], []
        for rid in range(first, first + count):
            at = (end - timedelta(seconds=rnd.randrange(1, span))).replace(tzinfo=None)
            svc = rnd.choice(services)
            sug = rnd.choice(SUGGESTIONS) if rnd.random() < 0.1 else None
            resp.append((rid, f"b:{rid}", agency_id, svc, "telegram", "complete", sug, at, at, at))
            for e in range(1, 10):
                score = None if rnd.random() < 0.05 else rnd.choices((1, 2, 3, 4), (1, 2, 5, 4))[0]
                ans.append((rid * 10 + e, rid, agency_id, svc, e, score, at, at))  # counted at the first
        return resp, ans

    # Load without the secondary indexes, then build them once: the schema measured is the same.
    tables = [Table(m.__tablename__, SurveyAnswer.metadata) for m in (SurveyAnswer, SurveyResponse)]
    indexes = [index for table in tables for index in table.indexes]
    with app.engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    chunk = 50_000
    raw = app.engine.raw_connection()
    try:
        cur = raw.cursor()
        for first in range(1, n + 1, chunk):
            resp, ans = rows(first, min(chunk, n + 1 - first))
            if app.engine.dialect.name == "postgresql":
                with cur.copy(
                    "COPY survey_responses (id, response_key, agency_id, service_id, channel, status,"
                    " suggestion, started_at, completed_at, updated_at) FROM STDIN"
                ) as cp:
                    for r in resp:
                        cp.write_row(r)
                with cur.copy(
                    "COPY survey_answers (id, response_id, agency_id, service_id, element, score,"
                    " answered_at, counted_at) FROM STDIN"
                ) as cp:
                    for a in ans:
                        cp.write_row(a)
            else:
                cur.execute("BEGIN")
                cur.executemany(
                    "INSERT INTO survey_responses (id, response_key, agency_id, service_id, channel,"
                    " status, suggestion, started_at, completed_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(*r[:7], r[7].strftime(fmt), r[8].strftime(fmt), r[9].strftime(fmt)) for r in resp],
                )
                cur.executemany(
                    "INSERT INTO survey_answers (id, response_id, agency_id, service_id, element, score,"
                    " answered_at, counted_at) VALUES (?,?,?,?,?,?,?,?)",
                    [(*a[:6], a[6].strftime(fmt), a[7].strftime(fmt)) for a in ans],
                )
            raw.commit()
        complaints: list[tuple[Any, ...]] = []
        for i in range(max(10, n // 1000)):
            at = (end - timedelta(seconds=rnd.randrange(1, span))).replace(tzinfo=None)
            resolved = at + timedelta(days=rnd.randrange(1, 20)) if rnd.random() < 0.6 else None
            complaints.append((f"PRM-B{i:07d}", agency_id, rnd.choice(services), "telegram",
                               rnd.choice(SUGGESTIONS) + " sudah lama", rnd.choice(("penundaan", "pungli", "lainnya")),
                               "{}", False, False, "resolved" if resolved else "new", at, at, resolved, f"b:{i}"))
        if app.engine.dialect.name == "postgresql":
            cur.execute("BEGIN")
            ph = "%s"
        else:
            cur.execute("BEGIN")
            ph = "?"
            complaints = [(*c[:10], c[10].strftime(fmt), c[11].strftime(fmt),
                           c[12].strftime(fmt) if c[12] else None, c[13]) for c in complaints]
        cur.executemany(
            "INSERT INTO complaints (ticket, agency_id, service_id, channel, description, category,"
            " attachments, confidential, contact_consent, status, created_at, updated_at, resolved_at,"
            f" source_key) VALUES ({', '.join([ph] * 14)})",
            complaints,
        )
        raw.commit()
    finally:
        raw.close()
    with app.engine.begin() as conn:
        for index in indexes:
            index.create(conn)
    if app.engine.dialect.name == "postgresql":
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does: index-only scans need it
    else:
        with app.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - t0


def timed(fn: Callable[[], Any], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def run(url: str, label: str, n: int, repeat: int, out: Path) -> dict[str, float]:
    settings = Settings(database_url=url, catalog_path=ROOT / "catalog.yaml", digest_dir=out)
    app = build_app(settings)
    try:
        load = seed(app, n, random.Random(47))
        with app.factory() as db:
            rows = db.scalar(select(func.count()).select_from(text("survey_answers"))) or 0
            agency = find_agency(db, AGENCY)

            def bare() -> None:
                db.execute(text(BARE)).all()

            def aggregate() -> None:
                collect(db, agency, WEEK)

            def full() -> None:
                data = collect(db, agency, WEEK)
                write_files(db, data, out / label, "id")

            import matplotlib.pyplot  # noqa: F401 - a running bot has these loaded already
            import openpyxl  # noqa: F401

            bare()  # warm the cache for both
            t_bare = timed(bare, repeat)
            t_agg = timed(aggregate, repeat)
            t_full = timed(full, 1)
            data = collect(db, agency, WEEK)
    finally:
        app.engine.dispose()
    print(f"{label:10} responses={n:,} answers={rows:,} load={load:.1f}s")
    print(f"{'':10} bare GROUP BY element     {t_bare * 1000:9.0f} ms")
    print(f"{'':10} digest aggregation        {t_agg * 1000:9.0f} ms   {t_agg / t_bare:.2f}x bare")
    print(f"{'':10} full digest (+PNG, XLSX)  {t_full * 1000:9.0f} ms   {t_full / t_bare:.2f}x bare"
          f"   (week: {data.respondents_week:,} responses, IKM {data.week_ikm.value})")
    return {"bare": t_bare, "aggregate": t_agg, "full": t_full}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--responses", type=int, default=100_000, help="stored questionnaires (default 100,000)")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
    p.add_argument("--postgres", help="also run on this PostgreSQL URL (a temporary schema is used)")
    p.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        results = {}
        if not args.no_sqlite:
            results["sqlite"] = run(f"sqlite:///{out / 'bench.db'}", "sqlite", args.responses, args.repeat, out)
        if args.postgres:
            url, drop = scratch_schema(args.postgres, prefix="bench_")
            try:
                results["postgres"] = run(url, "postgres", args.responses, args.repeat, out)
            finally:
                drop()
        for name, r in results.items():
            ok = r["aggregate"] <= 3 * r["bare"]
            failed |= not ok
            print(f"{name}: aggregation {'within' if ok else 'NOT within'} 3x of the bare query")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
