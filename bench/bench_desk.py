"""The web desk's queue page with 20,000 open cases in one agency: server time per request,
against a bare ``SELECT count(*)`` of those cases in the same run.

A signed-in staff member of the agency asks for the queue over HTTP (127.0.0.1, the real
aiohttp app with the desk's routes, session check and CSRF token lookup included); the server
time is measured by a middleware around the whole handling (session lookup, the queries, the
Jinja2 rendering). Variants: the default view (active cases, newest resident message first),
overdue only, one category, a search by ticket. The baseline is the cheapest question the page
must answer, ``SELECT count(*) FROM cases WHERE agency_id = ? AND status IN (active)``, timed on
the same database in the same run. Target: under 100 ms server time.

    python bench/bench_desk.py                        # SQLite, 20,000 cases
    python bench/bench_desk.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import CookieJar, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App, build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.desk import signin, staff  # noqa: E402
from bot.desk.states import ACTIVE  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import Agency, Case, Complaint, Contact, Service  # noqa: E402
from bot.web.desk.base import DeskHooks  # noqa: E402
from bot.web.desk.routes import add_desk_routes  # noqa: E402
from bot.web.server import build_web_app  # noqa: E402
from flows.helpers.skm import CATEGORIES  # noqa: E402

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def fill(app: App, n: int) -> tuple[int, str, str]:
    """``n`` open cases (with their complaints) in Disdukcapil; returns (agency id, a ticket, a
    staff member's contact external id)."""
    rnd = random.Random(13)
    with app.factory() as db, db.begin():
        agency = db.scalars(select(Agency).where(Agency.slug == "disdukcapil")).one()
        services = list(db.scalars(select(Service.id).where(Service.agency_id == agency.id)))
        complaints, cases = [], []
        for i in range(n):
            at = NOW - timedelta(minutes=rnd.randint(0, 60 * 24 * 30))
            ticket = f"B{i // 10000:03d}-{i % 10000:04d}"
            complaints.append({"id": i + 1, "ticket": ticket, "agency_id": agency.id,
                               "service_id": services[i % len(services)], "channel": "telegram",
                               "description": f"Keluhan nomor {i}", "category": CATEGORIES[i % len(CATEGORIES)],
                               "attachments": {}, "confidential": False, "contact_consent": False,
                               "status": "new", "created_at": at, "updated_at": at,
                               "source_key": f"bench:{i}"})
            cases.append({"source_key": f"complaint:{i + 1}", "ticket": ticket, "agency_id": agency.id,
                          "service_id": services[i % len(services)], "complaint_id": i + 1,
                          "channel": "telegram" if i % 3 else "whatsapp", "trigger": "serious",
                          "reasons": {"reasons": []}, "summary": f"Keluhan nomor {i} tentang layanan",
                          "confidential": bool(i % 2), "status": ACTIVE[i % len(ACTIVE)], "level": "staff",
                          "relay": False, "created_at": at, "updated_at": at, "last_resident_at": at,
                          "first_response_due": at + timedelta(days=1), "resolution_due": at + timedelta(days=14)})
        for chunk in range(0, n, 2000):
            db.execute(insert(Complaint), complaints[chunk:chunk + 2000])
            db.execute(insert(Case), cases[chunk:chunk + 2000])
        contact = Contact(channel="telegram", external_id="7001", display_name="Budi", language="id",
                          created_at=NOW)
        db.add(contact)
        db.flush()
        code = staff.create_invite(db, "disdukcapil", "staff", NOW)
        assert staff.register(db, contact, "7001", code, NOW).ok
        if app.engine.dialect.name == "postgresql":  # the sequence after explicit ids
            db.execute(text("SELECT setval('complaints_id_seq', (SELECT max(id) FROM complaints))"))
    # as autovacuum would have done by then: statistics, and PostgreSQL's visibility map
    # (index-only scans for the counts)
    with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if app.engine.dialect.name == "postgresql" else "ANALYZE"))
    return agency.id, str(cases[n // 2]["ticket"]), "7001"


def baseline(app: App, agency_id: int, rounds: int) -> list[float]:
    times = []
    stmt = text("SELECT count(*) FROM cases WHERE agency_id = :a AND status IN ('new', 'open', 'pending', 'reopened')")
    with app.engine.connect() as conn:
        for _ in range(rounds):
            start = time.perf_counter()
            conn.execute(stmt, {"a": agency_id}).scalar()
            times.append((time.perf_counter() - start) * 1000)
    return times


async def measure(app: App, paths: dict[str, str], rounds: int) -> dict[str, list[float]]:
    spent: list[float] = []

    @web.middleware
    async def timing(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        start = time.perf_counter()
        try:
            return await handler(request)
        finally:
            spent.append((time.perf_counter() - start) * 1000)

    web_app = build_web_app()
    web_app.middlewares.append(timing)
    add_desk_routes(web_app, app, DeskHooks())
    client: TestClient[Any, Any] = TestClient(TestServer(web_app), cookie_jar=CookieJar(unsafe=True))
    await client.start_server()
    results: dict[str, list[float]] = {}
    try:
        with app.factory() as db, db.begin():
            contact = db.scalars(select(Contact).where(Contact.external_id == "7001")).one()
            link = signin.issue_link(db, contact, app.runtime.clock(), "http://bench")
        assert link is not None
        resp = await client.post(f"/desk/login/{link.rsplit('/', 1)[1]}", allow_redirects=False)
        assert resp.status == 303
        for name, path in paths.items():
            for _ in range(3):  # warm up (templates compiled, caches filled)
                assert (await client.get(path)).status == 200
            spent.clear()
            for _ in range(rounds):
                resp = await client.get(path)
                assert resp.status == 200
                await resp.read()
            results[name] = list(spent)
    finally:
        await client.close()
    return results


def summary(times: list[float]) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return f"median {statistics.median(times):7.2f} ms   p95 {p95:7.2f} ms"


def run(url: str, n: int, rounds: int) -> None:
    app = build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml"), clock=lambda: NOW)
    try:
        start = time.perf_counter()
        agency_id, ticket, _ = fill(app, n)
        print(f"{app.engine.dialect.name}: {n} open cases in one agency, filled in "
              f"{time.perf_counter() - start:.1f} s")
        paths = {"queue (default)": "/desk/", "overdue": "/desk/?overdue=1",
                 "one category": f"/desk/?category={CATEGORIES[1]}", "search ticket": f"/desk/?q={ticket}",
                 "assignee: nobody, Telegram": "/desk/?assignee=none&channel=telegram"}
        results = asyncio.run(measure(app, paths, rounds))
        base = baseline(app, agency_id, rounds)
        print(f"  {'SELECT count(*) baseline':30s} {summary(base)}")
        for name, times in results.items():
            ratio = statistics.median(times) / max(statistics.median(base), 1e-6)
            print(f"  {name:30s} {summary(times)}   ({ratio:.0f}x the count)")
    finally:
        app.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--postgres", help="a PostgreSQL URL (a scratch schema is used and dropped)")
    args = parser.parse_args()
    if args.postgres:
        url, drop = scratch_schema(args.postgres, prefix="bench_desk_")
        try:
            run(url, args.cases, args.rounds)
        finally:
            drop()
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'desk.db'}", args.cases, args.rounds)


if __name__ == "__main__":
    main()
