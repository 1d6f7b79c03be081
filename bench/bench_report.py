"""The annual periodic report over many questionnaires, next to a bare GROUP BY in the same run.

One agency gets ``--responses`` questionnaires (nine answers each, about 5% "tidak tahu", spread
over the 52 weeks up to 27 December 2026, across its services) plus some complaints, loaded in
bulk exactly as bench/bench_digest.py does. Then, on the same database and warm cache:

- baseline: ``SELECT element, avg(score) FROM survey_answers GROUP BY element`` (every row);
- aggregation: ``bot.reports.periodic.data.collect`` for the year 2026 (every element and
  service, the previous year, the six-year trend, weakest elements with themes, complaints,
  the plan): everything the report says;
- PDF: aggregation + the two charts + the signable PDF;
- XLSX: the workbook, including every questionnaire of the year (shown, not a target).

Targets: aggregation within 3x of the baseline; the whole PDF under 30 s. Medians of --repeat.

    python bench/bench_report.py                                   # SQLite, 100,000 questionnaires
    python bench/bench_report.py --responses 1000000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_digest  # noqa: E402 - the same bulk loader

from bot.app import build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.reports.periodic.data import collect  # noqa: E402
from bot.reports.periodic.pdf import render_pdf  # noqa: E402
from bot.reports.periodic.period import parse_period  # noqa: E402
from bot.reports.periodic.xlsx import write_xlsx  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402

AGENCY = "disdukcapil"
YEAR = parse_period("2026")
bench_digest.WEEK = "2026-W52"  # the loader spreads questionnaires over the 52 weeks up to it


def run(url: str, label: str, n: int, repeat: int, out: Path) -> dict[str, float]:
    settings = Settings(database_url=url, catalog_path=ROOT / "catalog.yaml", report_dir=out)
    app = build_app(settings)
    try:
        load = bench_digest.seed(app, n, random.Random(14))
        with app.factory() as db:
            rows = db.scalar(select(func.count()).select_from(text("survey_answers"))) or 0

            def bare() -> None:
                db.execute(text(bench_digest.BARE)).all()

            def aggregate() -> None:
                collect(db, AGENCY, YEAR)

            def pdf() -> None:
                render_pdf(collect(db, AGENCY, YEAR), out / f"{label}.pdf", "id")

            import matplotlib.pyplot  # noqa: F401 - a running bot has these loaded already
            import openpyxl  # noqa: F401

            bare()  # warm the cache for both
            t_bare = bench_digest.timed(bare, repeat)
            t_agg = bench_digest.timed(aggregate, repeat)
            t_pdf = bench_digest.timed(pdf, 1)
            data = collect(db, AGENCY, YEAR)
            t0 = time.perf_counter()
            write_xlsx(db, data, out / f"{label}.xlsx", "id")
            t_xlsx = time.perf_counter() - t0
    finally:
        app.engine.dispose()
    print(f"{label:10} questionnaires={n:,} answers={rows:,} load={load:.1f}s")
    print(f"{'':10} bare GROUP BY element     {t_bare * 1000:9.0f} ms")
    print(f"{'':10} annual report aggregation {t_agg * 1000:9.0f} ms   {t_agg / t_bare:.2f}x bare")
    print(f"{'':10} whole PDF (+charts)       {t_pdf * 1000:9.0f} ms")
    print(f"{'':10} XLSX (every questionnaire){t_xlsx * 1000:9.0f} ms"
          f"   (2026: {data.respondents:,} questionnaires, IKM {data.ikm.value})")
    return {"bare": t_bare, "aggregate": t_agg, "pdf": t_pdf, "xlsx": t_xlsx}


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
            ok = r["aggregate"] <= 3 * r["bare"] and r["pdf"] < 30
            failed |= not ok
            print(f"{name}: aggregation {'within' if r['aggregate'] <= 3 * r['bare'] else 'NOT within'} 3x "
                  f"of the bare query; PDF {'under' if r['pdf'] < 30 else 'NOT under'} 30 s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
