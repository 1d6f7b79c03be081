"""Retention (UU 27/2022): each kind of personal data goes once its period ends, nothing sooner.

Rows are seeded just inside and just outside each period (one minute either side) with an
injected clock, on SQLite and PostgreSQL. Pending outbox rows, open complaints and the figures
(IKM, complaint counts) must come through untouched; a dry run must change nothing at all.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import logs
from bot.app import App
from bot.config import ConfigError, load_settings
from bot.privacy.retention import REMOVED, Policy, run_retention, run_retention_job
from bot.reports.digest.data import collect, find_agency
from bot.runtime.types import Inbound
from bot.storage.models import (
    Base,
    Case,
    CaseEvent,
    Complaint,
    Contact,
    ConversationSession,
    InboundEvent,
    OutboxMessage,
    Service,
    StatusChange,
    SurveyAnswer,
    SurveyResponse,
    WhatsAppWebhook,
)
from flows.machine.types import Event
from tests.conftest import ROOT, FakeClock, make_app

MINUTE = timedelta(minutes=1)
PHONE = "6281234567890"
NAME = "Siti Aminah"
TEXT = "Nama saya Siti Aminah, hp 0812-3456-7890, petugas minta uang 50 ribu"


@pytest.fixture(autouse=True)
def retention_logs() -> Any:
    """The module's log lines are asserted on: a logging.config call elsewhere in the session
    (import-linter's, in tests/test_architecture.py) disables loggers that existed before it."""
    logger = logging.getLogger("bot.privacy.retention")
    disabled, logger.disabled = logger.disabled, False
    yield
    logger.disabled = disabled


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


@pytest.fixture
def rapp(db_url: str, clock: FakeClock, media: Path) -> Any:
    application = make_app(db_url, clock, whatsapp_media_dir=media)
    yield application
    application.engine.dispose()


def policy(app: App) -> Policy:
    # keys kept longer than bodies, so both rules show
    return replace(Policy.from_settings(app.settings), inbound_keys=60)


@dataclass
class Seeded:
    ids: dict[str, int]
    files: dict[str, Path]


def _ago(clock: FakeClock, days: int, minutes: int) -> datetime:
    """``days`` ago, moved ``minutes`` later (inside, positive) or earlier (outside, negative)."""
    return clock.now - timedelta(days=days) + minutes * MINUTE


def _photo(media: Path, name: str, at: datetime | None = None) -> dict[str, Any]:
    path = media / f"{name}.jpg"
    path.write_bytes(b"\xff\xd8 photo")
    if at is not None:
        os.utime(path, (at.timestamp(), at.timestamp()))
    return {"media_id": name, "mime_type": "image/jpeg", "path": str(path), "caption": "depan rumah"}


def seed(app: App, clock: FakeClock, media: Path) -> Seeded:
    p = policy(app)
    ids: dict[str, int] = {}
    files: dict[str, Path] = {}
    now = clock.now
    with app.factory() as db, db.begin():
        svc = db.scalars(select(Service).order_by(Service.id)).first()
        assert svc is not None
        person = Contact(channel="whatsapp", external_id=PHONE, display_name=NAME, language="id",
                         consent_at=now - timedelta(days=2000), created_at=now - timedelta(days=2000))
        other = Contact(channel="telegram", external_id="7001", display_name="Budi", language="id",
                        consent_at=now, created_at=now)
        db.add_all([person, other])
        db.flush()
        raw = {"update_id": 1, "message": {"text": TEXT, "from": {"id": 7001}}}
        for name, days, minutes in (("raw_out", p.inbound, -1), ("raw_in", p.inbound, 1),
                                    ("key_out", p.inbound_keys, -1), ("key_in", p.inbound_keys, 1)):
            ev = InboundEvent(channel="telegram", event_key=name, received_at=_ago(clock, days, minutes),
                              raw=raw if name.startswith("raw") else None)
            db.add(ev)
            db.flush()
            ids[name] = ev.id
        for name, status, days, minutes in (
            ("out_sent_old", "sent", p.outbox, -1), ("out_sent_new", "sent", p.outbox, 1),
            ("out_failed_old", "failed", p.outbox, -1), ("out_pending_old", "pending", 200, 0),
            ("out_claimed_old", "claimed", 200, 0),
        ):
            at = _ago(clock, days, minutes)
            row = OutboxMessage(contact_id=person.id, channel="whatsapp", chat_id=PHONE, kind="reply",
                                payload={"text": f"Terima kasih {NAME}"}, status=status, due_at=at,
                                created_at=at, sent_at=at if status == "sent" else None)
            db.add(row)
            db.flush()
            ids[name] = row.id
        db.add(ConversationSession(contact_id=person.id, state={"flow": "complaint", "data": {"d": TEXT}},
                                   updated_at=_ago(clock, p.sessions, -1)))
        db.add(ConversationSession(contact_id=other.id, state={"flow": "menu"},
                                   updated_at=_ago(clock, p.sessions, 1)))
        for name, minutes in (("hook_out", -1), ("hook_in", 1)):
            hook = WhatsAppWebhook(body={"entry": [{"text": TEXT, "wa_id": PHONE}]},
                                   received_at=_ago(clock, p.webhook_bodies, minutes))
            db.add(hook)
            db.flush()
            ids[name] = hook.id

        def complaint(name: str, status: str, resolved: datetime | None) -> Complaint:
            photo = _photo(media, name)
            files[name] = Path(photo["path"])
            c = Complaint(ticket=f"T-{name}"[:16], contact_id=person.id, agency_id=svc.agency_id,
                          service_id=svc.id, channel="whatsapp", description=TEXT, category="pungli",
                          occurred="kemarin", attachments={"photos": [photo]}, latitude=-6.914744,
                          longitude=107.609810, location_text="Jl. Melati 5, depan rumah Siti Aminah",
                          contact_consent=True, reporter_name=NAME, status=status,
                          created_at=now - timedelta(days=2000), updated_at=now, resolved_at=resolved,
                          source_key=f"src-{name}")
            db.add(c)
            db.flush()
            ids[name] = c.id
            return c

        old = complaint("c_old", "closed", _ago(clock, p.complaints, -1))
        complaint("c_recent", "closed", _ago(clock, p.complaints, 1))  # photos past RETENTION_MEDIA_DAYS
        complaint("c_media_in", "resolved", _ago(clock, p.media, 1))
        opened = complaint("c_open", "open", None)
        for name, c, minutes in (("audit_out", old, -1), ("audit_in", old, 1), ("audit_open", opened, -1)):
            change = StatusChange(complaint_id=c.id, from_status="new", to_status="open", actor="staff",
                                  reason=f"telepon {NAME} di 081234567890", at=_ago(clock, p.audit, minutes))
            db.add(change)
            db.flush()
            ids[name] = change.id

        def case(name: str, closed: datetime, c: Complaint | None) -> Case:
            k = Case(source_key=f"case-{name}", ticket=f"K-{name}"[:16], agency_id=svc.agency_id,
                     service_id=svc.id, complaint_id=c.id if c else None, contact_id=person.id,
                     channel="whatsapp", chat_id=PHONE, trigger="person", reasons={"reasons": ["person"]},
                     summary=TEXT, reporter_name=NAME, status="closed", relay=False,
                     created_at=now - timedelta(days=2000), updated_at=closed,
                     first_response_due=now, resolution_due=now, closed_at=closed, resolved_at=closed)
            db.add(k)
            db.flush()
            ids[name] = k.id
            db.add(CaseEvent(case_id=k.id, kind="from_resident", actor="resident",
                             reason="rumah saya di Jl Melati 5", at=closed - timedelta(days=1)))
            db.add(CaseEvent(case_id=k.id, kind="note", actor="staff", reason=f"{NAME} 081234567890",
                             at=closed - timedelta(days=1)))
            return k

        case("case_old", _ago(clock, p.complaints, -1), old)
        case("case_new", _ago(clock, p.complaints, 1), None)
        audit_case = case("case_audit", _ago(clock, p.audit + 10, 0), None)
        db.add(CaseEvent(case_id=audit_case.id, kind="status", actor="staff", reason="x",
                         at=_ago(clock, p.audit, 1)))
        for name, minutes in (("survey_out", -1), ("survey_in", 1)):
            at = _ago(clock, p.surveys, minutes)
            r = SurveyResponse(response_key=f"{person.id}:{name}", contact_id=person.id,
                               agency_id=svc.agency_id, service_id=svc.id, channel="whatsapp",
                               status="complete", suggestion=f"Saya {NAME}, hubungi 081234567890",
                               started_at=at, completed_at=at, updated_at=at)
            db.add(r)
            db.flush()
            ids[name] = r.id
            for element in range(1, 10):
                db.add(SurveyAnswer(response_id=r.id, agency_id=svc.agency_id, service_id=svc.id,
                                    element=element, score=1 + element % 4, answered_at=at,
                                    counted_at=at))
    files["orphan_out"] = Path(_photo(media, "orphan_out", _ago(clock, p.media, -1))["path"])
    files["orphan_in"] = Path(_photo(media, "orphan_in", _ago(clock, p.media, 1))["path"])
    return Seeded(ids, files)


def figures(app: App, clock: FakeClock) -> Any:
    """What the agency reports: per-week IKM and complaint counts, and complaints by attribute."""
    with app.factory() as db:
        svc = db.scalars(select(Service).order_by(Service.id)).first()
        assert svc is not None
        agency = find_agency(db, svc.agency.slug)
        weeks = []
        for days in (90, 365, 2000):
            year, week, _ = (clock.now - timedelta(days=days)).isocalendar()
            data = collect(db, agency, f"{year}-W{week:02d}")
            c = data.complaints
            weeks.append((data.week_ikm, data.ytd_ikm, data.respondents_week, data.respondents_ytd,
                          c.new, c.resolved, c.open, c.by_category, c.by_service, c.median_days))
        rows = db.execute(select(Complaint.id, Complaint.ticket, Complaint.service_id, Complaint.category,
                                 Complaint.status, Complaint.created_at, Complaint.resolved_at)
                          .order_by(Complaint.id)).all()
        answers = db.execute(select(SurveyAnswer.response_id, SurveyAnswer.element, SurveyAnswer.score)
                             .order_by(SurveyAnswer.id)).all()
    return weeks, rows, answers


def snapshot(app: App) -> dict[str, list[Any]]:
    out = {}
    with app.factory() as db:
        for table in Base.metadata.sorted_tables:
            out[table.name] = [tuple(json.dumps(v, sort_keys=True, default=str) for v in row)
                               for row in db.execute(select(table).order_by(*table.primary_key.columns))]
    return out


def test_each_kind_goes_just_after_its_period(rapp: App, clock: FakeClock, media: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    s = seed(rapp, clock, media)
    before = figures(rapp, clock)
    with caplog.at_level(logging.INFO, logger="bot.privacy.retention"):
        outcomes = run_retention(rapp.factory, policy(rapp), clock.now)
    counts = {o.kind: o.count for o in outcomes}
    assert counts == {"inbound_texts": 1, "inbound_keys": 1, "outbox_texts": 2, "sessions": 1,
                      "webhook_bodies": 1, "media": 3, "complaints": 1, "cases": 2, "surveys": 1,
                      "audit": 3}
    by_kind = {r.message.split(":")[0]: r for r in caplog.records}
    assert {getattr(r, "count", None) for r in by_kind.values()} >= {1, 2, 3}
    assert all(getattr(r, "job", None) == "retention" for r in by_kind.values())
    assert len(by_kind) == 10
    i = s.ids
    with rapp.factory() as db:
        # inbound: the body goes after RETENTION_INBOUND_DAYS, the key after its own period
        assert db.get(InboundEvent, i["raw_out"]).raw is None  # type: ignore[union-attr]
        assert db.get(InboundEvent, i["raw_in"]).raw is not None  # type: ignore[union-attr]
        assert db.get(InboundEvent, i["key_out"]) is None
        assert db.get(InboundEvent, i["key_in"]) is not None
        # outbox: settled rows lose text and chat id; pending and claimed ones are untouched
        for name in ("out_sent_old", "out_failed_old"):
            row = db.get(OutboxMessage, i[name])
            assert row is not None and row.payload == {} and row.chat_id == ""
        for name in ("out_sent_new", "out_pending_old", "out_claimed_old"):
            row = db.get(OutboxMessage, i[name])
            assert row is not None and row.chat_id == PHONE and NAME in row.payload["text"]
        assert db.scalar(select(func.count()).select_from(ConversationSession)) == 1
        assert db.scalars(select(ConversationSession)).one().state == {"flow": "menu"}
        assert db.get(WhatsAppWebhook, i["hook_out"]) is None
        assert db.get(WhatsAppWebhook, i["hook_in"]) is not None
        # the complaint finished a year ago: anonymised, counted as before
        old = db.get(Complaint, i["c_old"])
        assert old is not None and old.anonymised_at == clock.now
        assert old.contact_id is None and old.reporter_name is None and not old.contact_consent
        assert "Siti" not in old.description and "0812" not in old.description
        assert "petugas minta uang" in old.description
        assert "Siti" not in (old.location_text or "")
        assert (old.latitude, old.longitude) == (-6.91, 107.61)
        assert old.attachments == {"photos": [], "photos_removed": 1}
        assert old.category == "pungli" and old.status == "closed"
        recent = db.get(Complaint, i["c_recent"])
        assert recent is not None and recent.reporter_name == NAME and recent.anonymised_at is None
        assert recent.attachments == {"photos": [], "photos_removed": 1}  # RETENTION_MEDIA_DAYS
        for name in ("c_media_in", "c_open"):
            kept = db.get(Complaint, i[name])
            assert kept is not None and len(kept.attachments["photos"]) == 1
            assert kept.reporter_name == NAME
        # cases: the finished one forgets the resident and the conversation, keeps who and when
        case = db.get(Case, i["case_old"])
        assert case is not None and case.contact_id is None and case.chat_id is None
        assert case.reporter_name is None and "Siti" not in case.summary
        events = {e.kind: e.reason for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))}
        assert events["from_resident"] == REMOVED and "081234567890" not in (events["note"] or "")
        kept_case = db.get(Case, i["case_new"])
        assert kept_case is not None and kept_case.chat_id == PHONE and kept_case.summary == TEXT
        # surveys: unlinked after RETENTION_SURVEY_LINK_DAYS, scores stay
        out, inside = db.get(SurveyResponse, i["survey_out"]), db.get(SurveyResponse, i["survey_in"])
        assert out is not None and out.contact_id is None and "Siti" not in (out.suggestion or "")
        assert out.response_key == f"anon:{out.id}"
        assert inside is not None and inside.contact_id is not None
        # audit rows of finished complaints and cases after RETENTION_AUDIT_DAYS; open ones stay
        assert db.get(StatusChange, i["audit_out"]) is None
        assert db.get(StatusChange, i["audit_in"]) is not None
        assert db.get(StatusChange, i["audit_open"]) is not None
        left = db.scalars(select(CaseEvent.reason).where(CaseEvent.case_id == i["case_audit"])
                          .order_by(CaseEvent.id)).all()
        assert left == ["x", "retention: personal data removed"]  # the older events went
    # photos on disk: of finished complaints past the period, and orphans past it
    assert not s.files["c_old"].exists() and not s.files["c_recent"].exists()
    assert not s.files["orphan_out"].exists()
    for name in ("c_media_in", "c_open", "orphan_in"):
        assert s.files[name].exists()
    assert figures(rapp, clock) == before  # IKM and complaint figures unchanged
    again = run_retention(rapp.factory, policy(rapp), clock.now)  # nothing left to do
    assert {o.kind: o.count for o in again} == dict.fromkeys(counts, 0)


def test_dry_run_changes_nothing_and_counts_exactly(rapp: App, clock: FakeClock, media: Path,
                                                    tmp_path: Path) -> None:
    seed(rapp, clock, media)
    before, files = snapshot(rapp), sorted(media.iterdir())
    dry = run_retention(rapp.factory, policy(rapp), clock.now, dry_run=True, batch=2)
    assert snapshot(rapp) == before and sorted(media.iterdir()) == files
    assert all("would be" in o.line() for o in dry)
    real = run_retention(rapp.factory, policy(rapp), clock.now, batch=2)
    assert [(o.kind, o.count) for o in dry] == [(o.kind, o.count) for o in real]


def test_small_batches_cover_a_backlog(sqlite_app: App, clock: FakeClock) -> None:
    with sqlite_app.factory() as db, db.begin():
        for n in range(25):
            db.add(InboundEvent(channel="telegram", event_key=f"k{n}", received_at=clock.now - timedelta(days=40),
                                raw={"n": n}))
    pol = Policy(inbound_keys=0)
    out = run_retention(sqlite_app.factory, pol, clock.now, batch=4)
    assert {o.kind: o.count for o in out}["inbound_texts"] == 25
    with sqlite_app.factory() as db:
        assert all(raw is None for raw in db.scalars(select(InboundEvent.raw)))
        assert db.scalar(select(func.count()).select_from(InboundEvent)) == 25  # keys kept (0: forever)
    assert "kept forever" in next(o.line() for o in out if o.kind == "inbound_keys")


def test_redelivered_old_update_is_still_a_duplicate(app: App, clock: FakeClock) -> None:
    def deliver() -> list[OutboxMessage]:
        return app.runtime.handle(Inbound("telegram", "555", "555", Event("text", "upd-1", text="halo"),
                                          event_key="upd-1"))

    assert deliver()  # first delivery: answered
    clock.advance(days=40)  # bodies (30 days) are past, the key (60 days) is not
    run_retention(app.factory, policy(app), clock.now)
    assert deliver() == []  # recognised, not answered twice
    clock.advance(days=21)
    assert {o.kind: o.count for o in run_retention(app.factory, policy(app), clock.now)}["inbound_keys"] == 1


def test_job_runs_daily_in_the_regency_zone_and_logs_json(sqlite_app: App, clock: FakeClock) -> None:
    from bot.scheduler import build_scheduler

    scheduler = build_scheduler(sqlite_app, {}, clock)
    job = scheduler.get_job("retention")
    assert job is not None
    trigger = job.trigger
    assert str(trigger.timezone) == "Asia/Jakarta"
    assert {f.name: str(f) for f in trigger.fields}["hour"] == "2"
    assert {f.name: str(f) for f in trigger.fields}["minute"] == "30"
    with sqlite_app.factory() as db, db.begin():
        db.add(WhatsAppWebhook(body={"x": PHONE}, received_at=clock.now - timedelta(days=31)))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    logger = logging.getLogger("bot.privacy.retention")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        run_retention_job(sqlite_app.factory, Policy(), clock)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    hooks = next(line for line in lines if line["event"].startswith("retention webhook_bodies"))
    assert hooks["count"] == 1 and hooks["job"] == "retention"
    assert PHONE not in stream.getvalue()


def test_periods_too_short_for_redelivery_are_refused() -> None:
    with pytest.raises(ConfigError, match="RETENTION_INBOUND_KEYS_DAYS"):
        load_settings(retention_inbound_keys_days=3)
    with pytest.raises(ConfigError, match="RETENTION_MEDIA_DAYS"):
        load_settings(retention_media_days=7)
    assert load_settings(retention_media_days=0).retention_media_days == 0


def test_cli_dry_run(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                     tmp_path: Path) -> None:
    from bot.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CATALOG_PATH", str(ROOT / "catalog.yaml"))
    assert main(["retention", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run (nothing changed)" in out
    assert "RETENTION_CLOSED_COMPLAINT_PERSONAL_DAYS" in out and "would be anonymised" in out
    assert main(["retention"]) == 0
    assert "0 deleted" in capsys.readouterr().out


def test_readme_documents_every_retention_setting() -> None:
    from bot.config import Settings

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        if name.startswith("retention_"):
            assert readme.count(f"`{name.upper()}`") >= 2, name  # configuration table and Retention


def test_a_cleared_outbox_row_cannot_be_requeued(sqlite_app: App, clock: FakeClock) -> None:
    from bot.outbox.recovery import requeue

    old = clock.now - timedelta(days=100)
    with sqlite_app.factory() as db, db.begin():
        rows = [OutboxMessage(channel="telegram", chat_id="7001", kind="reply", payload={"text": "hai"},
                              status="failed", due_at=at, created_at=at) for at in (old, clock.now)]
        db.add_all(rows)
    run_retention(sqlite_app.factory, Policy(), clock.now)
    assert requeue(sqlite_app.factory, [rows[0].id, rows[1].id], clock.now) == 1  # only the recent one


def test_a_failing_kind_does_not_stop_the_others(sqlite_app: App, clock: FakeClock,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    from bot.privacy import retention

    def boom(run: Any, cutoff: datetime) -> int:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(retention, "RULES", (replace(retention.RULES[0], apply=boom), *retention.RULES[1:]))
    with sqlite_app.factory() as db, db.begin():
        db.add(WhatsAppWebhook(body={"x": 1}, received_at=clock.now - timedelta(days=31)))
    with caplog.at_level(logging.INFO, logger="bot.privacy.retention"):
        out = {o.kind: o for o in run_retention(sqlite_app.factory, Policy(), clock.now)}
    assert out["inbound_texts"].error == "RuntimeError" and "FAILED" in out["inbound_texts"].line()
    assert out["webhook_bodies"].count == 1
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
