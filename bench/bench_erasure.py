"""Erasure cost: one resident's deletion in a database that holds many other people's data.

Erasure searches every text and JSON column of every table for the person's identifiers
(bot/privacy/erasure.py), inside the turn's transaction, so its time grows with the database. This
bulk-loads other residents' complaints, survey suggestions, outbox rows and case events, then
times ``erase_contact`` for one resident with a complaint, a survey and a case; baseline in the
same run: one LIKE for one term over the same columns (the floor of any search).

    python bench/bench_erasure.py                                  # 100,000 outbox rows, SQLite
    python bench/bench_erasure.py --rows 100000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, or_, select  # noqa: E402

from bot.app import App, build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.privacy import erasure  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.models import (  # noqa: E402
    Base,
    Case,
    CaseEvent,
    Complaint,
    Contact,
    OutboxMessage,
    Service,
    SurveyResponse,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def load(app: App, rows: int) -> int:
    """Other residents' data, in bulk; returns the erased resident's contact id."""
    with app.factory() as db, db.begin():
        svc = db.scalars(select(Service)).first()
        assert svc is not None
        others = [{"channel": "telegram", "external_id": str(10_000 + i), "display_name": f"Warga {i}",
                   "language": "id", "created_at": NOW, "consent_at": NOW} for i in range(rows // 10)]
        db.execute(insert(Contact), others)
        ids = list(db.scalars(select(Contact.id).order_by(Contact.id)))
        n = len(ids)
        db.execute(insert(Complaint), [
            {"ticket": f"T{i:07d}", "contact_id": ids[i % n], "agency_id": svc.agency_id,
             "service_id": svc.id, "channel": "telegram", "category": "penundaan",
             "description": f"Antrian lama sekali di loket {i % 7}, sudah {i % 5} jam menunggu",
             "attachments": {"photos": []}, "created_at": NOW, "updated_at": NOW,
             "source_key": f"s{i}", "reporter_name": f"Warga {i % n}"} for i in range(rows // 10)])
        db.execute(insert(SurveyResponse), [
            {"response_key": f"r{i}", "contact_id": ids[i % n], "agency_id": svc.agency_id,
             "service_id": svc.id, "channel": "telegram", "status": "complete",
             "suggestion": f"Tolong tambah loket nomor {i % 9}", "started_at": NOW, "updated_at": NOW}
            for i in range(rows // 10)])
        db.execute(insert(OutboxMessage), [
            {"contact_id": ids[i % n], "channel": "telegram", "chat_id": str(10_000 + i % n),
             "kind": "reply", "status": "sent", "due_at": NOW, "created_at": NOW, "attempts": 1,
             "payload": {"text": f"Terima kasih, tiket T{i:07d} sudah kami terima.", "choices": [], "q": None}}
            for i in range(rows)])
        me = Contact(channel="telegram", external_id="7345012345", display_name="Siti Aminah",
                     language="id", created_at=NOW, consent_at=NOW)
        db.add(me)
        db.flush()
        c = Complaint(ticket="K7QM3XHD", contact_id=me.id, agency_id=svc.agency_id, service_id=svc.id,
                      channel="telegram", category="pungli", attachments={"photos": []},
                      description="Nama saya Siti Aminah, NIK 3201 0123 4567 0001, HP 0812-3456-7890",
                      created_at=NOW, updated_at=NOW, source_key="me", reporter_name="Siti Aminah")
        db.add(c)
        db.flush()
        case = Case(source_key="case:me", ticket="K7QM3XHD", agency_id=svc.agency_id, complaint_id=c.id,
                    contact_id=me.id, channel="telegram", chat_id="7345012345", trigger="serious",
                    summary=c.description, reporter_name="Siti Aminah", created_at=NOW, updated_at=NOW,
                    first_response_due=NOW, resolution_due=NOW)
        db.add(case)
        db.flush()
        db.add(CaseEvent(case_id=case.id, kind="from_resident", actor="resident", at=NOW,
                         reason="nomor saya 0812-3456-7890"))
        db.add(OutboxMessage(contact_id=None, channel="telegram", chat_id="-1001234", kind="staff",
                             status="sent", due_at=NOW, created_at=NOW, attempts=1, ref=f"case:{case.id}",
                             payload={"text": "📋 Kasus K7QM3XHD\nPelapor: Siti Aminah"}))
        return me.id


def baseline(app: App) -> float:
    """The floor of any search: one LIKE for one term over the same columns of every table."""
    sqlite = app.engine.dialect.name == "sqlite"
    start = time.perf_counter()
    with app.factory() as db:
        for table in Base.metadata.sorted_tables:
            cols = list(erasure._text_columns(table))
            if cols and table.name not in erasure.NOT_SWEPT:
                cond = or_(*(erasure._like(erasure._as_text(c), "Siti Aminah", sqlite) for c in cols))
                db.scalar(select(func.count()).select_from(table).where(cond))
    return time.perf_counter() - start


def erase(app: App, contact_id: int) -> tuple[float, Any]:
    start = time.perf_counter()
    with app.factory() as db, db.begin():
        contact = db.get(Contact, contact_id)
        assert contact is not None
        result = erasure.erase_contact(db, contact, NOW)
    return time.perf_counter() - start, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="outbox rows (a tenth as many complaints, "
                                                              "surveys and contacts)")
    ap.add_argument("--postgres", help="a PostgreSQL URL (a scratch schema is used and dropped)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        drop = None
        url = f"sqlite:///{Path(tmp) / 'erasure.db'}"
        if args.postgres:
            url, drop = scratch_schema(args.postgres, prefix="bench_")
        try:
            app = build_app(Settings(database_url=url, catalog_path=ROOT / "catalog.yaml",
                                     digest_dir=Path(tmp) / "digests"))
            me = load(app, args.rows)
            base = min(baseline(app) for _ in range(3))
            took, result = erase(app, me)
            db_name = "PostgreSQL" if args.postgres else "SQLite"
            print(f"{db_name}: {args.rows:,} outbox rows, {args.rows // 10:,} complaints/surveys/contacts")
            print(f"  one term searched in every table (baseline): {base * 1000:.0f} ms")
            print(f"  erase_contact: {took * 1000:.0f} ms ({took / base:.1f}x), {result}")
            app.engine.dispose()
        finally:
            if drop:
                drop()


if __name__ == "__main__":
    main()
