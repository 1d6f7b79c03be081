"""SLA checks over many open cases, and working-time arithmetic, each against a baseline.

The scheduler runs :func:`bot.desk.deadlines.sla_tick` every few minutes over every open case, so the
tick with nothing to flag must cost about what counting the open cases costs. Measured in
the same run, on the same database:

- baseline: ``SELECT count(*)`` of the open cases;
- the idle tick (every breach already flagged), and the tick that flags a batch of breaches;
- one deadline (:func:`bot.worktime.add_working_hours`, across a weekend) against a plain
  ``datetime + timedelta``: with the bundled catalog's working time (office hours with breaks,
  Indonesia's public holidays and cuti bersama, the regency's local days; the calendar cached
  per agency and year) and with plain 08:00-16:00 and no holidays.

    python bench/bench_cases.py                         # SQLite, 20,000 open cases
    python bench/bench_cases.py --cases 200000          # the full size
    python bench/bench_cases.py --postgres postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App, build_app  # noqa: E402
from bot.catalog import read_catalog  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.desk import deadlines, states  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import Agency, Case  # noqa: E402
from bot.worktime import OfficeHours, add_working_hours, policy_from_settings  # noqa: E402

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Monday 10:00 WIB


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def fill(app: App, n: int, late: int) -> None:
    """``n`` open cases; ``late`` of them past their first-response limit and not yet flagged."""
    with app.factory() as db, db.begin():
        agencies = list(db.scalars(select(Agency.id)))
    rows = []
    for i in range(n):
        due = NOW - timedelta(hours=1) if i < late else NOW + timedelta(days=3)
        rows.append({
            "source_key": f"bench:{i}", "ticket": f"B{i:07d}"[:9], "agency_id": agencies[i % len(agencies)],
            "channel": "telegram", "trigger": "serious", "reasons": {"reasons": []}, "summary": "x",
            "confidential": False, "status": "new", "level": "staff", "relay": False,
            "created_at": NOW - timedelta(days=1), "updated_at": NOW - timedelta(days=1),
            "first_response_due": due, "resolution_due": NOW + timedelta(days=9),
        })
    with app.engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(Case), rows[start:start + 5000])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=20_000, help="open cases in the table")
    p.add_argument("--late", type=int, default=200, help="of which past their limit (flagged by one tick)")
    p.add_argument("--postgres", help="a PostgreSQL URL (a scratch schema is created and dropped)")
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()

    if args.postgres:
        url, drop = scratch_schema(args.postgres, prefix="bench_")
    else:
        url, drop = f"sqlite:///{tempfile.mkdtemp()}/bench.db", _nothing
    try:
        app = build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml"), clock=lambda: NOW)
        fill(app, args.cases, args.late)

        def count() -> int:
            with app.factory() as db:
                return db.scalar(select(func.count()).select_from(Case)
                                 .where(Case.status.in_(states.ACTIVE))) or 0

        def tick() -> int:
            with app.factory() as db, db.begin():
                return deadlines.sla_tick(db, NOW)

        assert count() == args.cases
        start = time.perf_counter()
        flagged = tick()
        flag_s = time.perf_counter() - start
        assert flagged == args.late, flagged
        baseline = timed(count, args.repeat)
        idle = timed(tick, args.repeat)
        spec = read_catalog(ROOT / "catalog.yaml")
        office = policy_from_settings("Asia/Jakarta", spec.sla_for(spec.agencies[0]).settings()).hours
        bare = OfficeHours()
        friday = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
        n = 20_000
        plain = timed(lambda: [friday + timedelta(hours=8) for _ in range(n)], 3) / n
        working = timed(lambda: [add_working_hours(friday, 8, office) for _ in range(n)], 3) / n
        no_calendar = timed(lambda: [add_working_hours(friday, 8, bare) for _ in range(n)], 3) / n
        db_name = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{db_name}, {args.cases:,} open cases, {args.late} past their limit")
        print(f"  baseline count of open cases : {baseline * 1000:8.2f} ms")
        print(f"  idle SLA tick (nothing new)  : {idle * 1000:8.2f} ms  ({idle / baseline:.1f}x baseline)")
        print(f"  tick flagging {args.late:>5} breaches : {flag_s * 1000:8.2f} ms  "
              f"({flag_s / args.late * 1000:.2f} ms per breach, topic + head rows)")
        print(f"  deadline across a weekend    : {working * 1e6:8.2f} us  "
              f"(08:00-16:00, no holidays: {no_calendar * 1e6:.2f} us; "
              f"datetime + timedelta: {plain * 1e6:.2f} us)")
        app.engine.dispose()
    finally:
        drop()
    return 0


def _nothing() -> None:
    """No schema to drop on SQLite."""


if __name__ == "__main__":
    raise SystemExit(main())
