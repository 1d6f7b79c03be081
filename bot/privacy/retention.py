"""Retention (UU 27/2022 Pasal 42-44): personal data goes once its period ends.

One rule per kind of data, each with a setting in days (0 keeps that kind forever), run daily
by the scheduler and by hand with ``python bot.py retention [--dry-run]``. Each rule deletes or
anonymises what is older than its period and nothing else the product still needs:

- the de-duplication key of an inbound delivery outlives its body (a platform may redeliver);
- outbox rows still pending or claimed are never touched, settled ones lose text and chat id;
- a resolved or closed complaint keeps its ticket, service, category, status and dates (the
  complaint figures and the IKM do not change) and loses the reporter, the link to the
  resident, names and numbers in its texts (the scrubber), its photos and its exact location.

Work goes in batches of a few thousand rows, each its own short transaction, so a backlog never
holds a long lock; files are deleted only after the transaction that forgot them committed. A
dry run does the same work and rolls every batch back (it touches no file), so its counts are
exact. The README's "Retention" section gives each default and the reason for it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, Text, cast, delete, null, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog import DEFAULT_ZONE, agency_zone
from bot.config import Settings
from bot.privacy.erasure import bot_words, catalog_words
from bot.privacy.media import delete_files, media_file, named_files, unnamed_files, without_photos
from bot.privacy.scrub import Scrubber, digits
from bot.storage.models import (
    Agency,
    Case,
    CaseEvent,
    Complaint,
    Contact,
    ConversationSession,
    InboundEvent,
    OutboxMessage,
    StatusChange,
    SurveyResponse,
    WhatsAppWebhook,
)

log = logging.getLogger(__name__)

BATCH = 2000  # rows per statement and transaction: a backlog never holds a long lock
FINISHED = ("resolved", "closed")
SETTLED = ("sent", "failed", "cancelled", "unknown")  # pending and claimed rows are never touched
REMOVED = "[dihapus]"  # what a relayed message reads as once its text is gone
REASON = "retention: personal data removed"
LOCATION_DECIMALS = 2  # about 1 km: the area stays on a map, the house does not
RETENTION_JOB = "retention"

# Rows (photos for media) this process removed since it started, by kind: for the metrics.
TOTALS: Counter[str] = Counter()


@dataclass(frozen=True)
class Policy:
    """Days per kind (0: keep forever) and where saved photos are."""

    inbound: int = 30
    inbound_keys: int = 30
    outbox: int = 90
    sessions: int = 30
    webhook_bodies: int = 30
    media: int = 90
    complaints: int = 365
    surveys: int = 90
    audit: int = 1825
    media_dir: Path | None = None

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        return cls(
            inbound=s.retention_inbound_days, inbound_keys=s.retention_inbound_keys_days,
            outbox=s.retention_outbox_days, sessions=s.retention_sessions_days,
            webhook_bodies=s.retention_webhook_bodies_days, media=s.retention_media_days,
            complaints=s.retention_closed_complaint_personal_days,
            surveys=s.retention_survey_link_days, audit=s.retention_audit_days,
            media_dir=s.whatsapp_media_dir,
        )


@dataclass
class Outcome:
    """One kind's result: how many rows (photos for media) were or would be changed."""

    kind: str
    label: str
    setting: str
    days: int
    action: str
    count: int
    dry_run: bool
    error: str | None = None  # the rule failed (logged); the others still ran

    def line(self) -> str:
        if not self.days:
            return f"{self.label}: kept forever ({self.setting}=0)"
        if self.error:
            return f"{self.label}: FAILED ({self.error}, see the log; the next run goes on)"
        verb = f"would be {self.action}" if self.dry_run else self.action
        return f"{self.label}: {self.count} {verb} ({self.setting}={self.days} days)"


@dataclass
class _Run:
    factory: sessionmaker[Session]
    policy: Policy
    now: datetime
    dry_run: bool
    batch: int
    files: list[Path] = field(default_factory=list)  # to delete once their batch committed
    _vocab: frozenset[str] | None = None

    def batches(self, ids: Select[Any], key: Any, apply: Callable[[Session, list[Any]], int | None]) -> int:
        """Page through the ids ``ids`` selects (keyset on ``key``), each page in its own
        transaction: ``apply`` changes those rows and returns a count (default: the rows)."""
        total, last = 0, None
        while True:
            with self.factory() as db:
                page = ids if last is None else ids.where(key > last)
                chunk = list(db.scalars(page.order_by(key).limit(self.batch)))
                if not chunk:
                    return total
                n = apply(db, chunk)
                if self.dry_run:
                    db.rollback()
                    self.files.clear()
                else:
                    db.commit()
                    delete_files(self.files)
                    self.files.clear()
            total += len(chunk) if n is None else n
            last = chunk[-1]
            if len(chunk) < self.batch:
                return total

    def scrubber(self, db: Session, names: Iterable[str | None], contact: Contact | None) -> Scrubber:
        """A scrubber for one resident: their names and number, besides NIK, phones, e-mails."""
        if self._vocab is None:
            self._vocab = bot_words() | catalog_words(db)
        all_names = [n for n in (*names, contact.display_name if contact else None) if n]
        numbers = [contact.external_id] if contact and digits(contact.external_id) == contact.external_id else []
        return Scrubber(names=all_names, numbers=numbers, keep_words=self._vocab)

    def drop_photos(self, attachments: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
        """Attachments without photos; their files are deleted once the batch commits."""
        kept, removed, files = without_photos(attachments, self.policy.media_dir)
        self.files += files
        return kept, removed


def _sql(statement: Callable[[list[Any]], Any]) -> Callable[[Session, list[Any]], None]:
    """An ``apply`` that runs one bulk statement over the page's ids."""
    def apply(db: Session, chunk: list[Any]) -> None:
        db.execute(statement(chunk).execution_options(synchronize_session=False))
    return apply


# ---------------------------------------------------------------- the rules, one per kind


def _inbound_texts(run: _Run, cutoff: datetime) -> int:
    raw = InboundEvent.raw
    ids = select(InboundEvent.id).where(InboundEvent.received_at < cutoff, raw.is_not(None),
                                        cast(raw, Text) != "null")
    return run.batches(ids, InboundEvent.id, _sql(
        lambda chunk: update(InboundEvent).where(InboundEvent.id.in_(chunk)).values(raw=null())))


def _inbound_keys(run: _Run, cutoff: datetime) -> int:
    ids = select(InboundEvent.id).where(InboundEvent.received_at < cutoff)
    return run.batches(ids, InboundEvent.id, _sql(
        lambda chunk: delete(InboundEvent).where(InboundEvent.id.in_(chunk))))


def _outbox_texts(run: _Run, cutoff: datetime) -> int:
    ids = select(OutboxMessage.id).where(OutboxMessage.status.in_(SETTLED),
                                         OutboxMessage.created_at < cutoff, OutboxMessage.chat_id != "")
    return run.batches(ids, OutboxMessage.id, _sql(
        lambda chunk: update(OutboxMessage)
        .where(OutboxMessage.id.in_(chunk), OutboxMessage.status.in_(SETTLED))  # not claimed since
        .values(payload={}, chat_id="")))


def _sessions(run: _Run, cutoff: datetime) -> int:
    key = ConversationSession.contact_id
    ids = select(key).where(ConversationSession.updated_at < cutoff)
    return run.batches(ids, key, _sql(  # unless the resident wrote since the page was read
        lambda chunk: delete(ConversationSession)
        .where(key.in_(chunk), ConversationSession.updated_at < cutoff)))


def _webhook_bodies(run: _Run, cutoff: datetime) -> int:
    ids = select(WhatsAppWebhook.id).where(WhatsAppWebhook.received_at < cutoff)
    return run.batches(ids, WhatsAppWebhook.id, _sql(
        lambda chunk: delete(WhatsAppWebhook).where(WhatsAppWebhook.id.in_(chunk))))


def _media(run: _Run, cutoff: datetime) -> int:
    """Photos of complaints finished before the cutoff, then saved files nobody refers to."""
    ids = select(Complaint.id).where(Complaint.status.in_(FINISHED), Complaint.resolved_at < cutoff,
                                     cast(Complaint.attachments, Text).like('%id"%'))

    def apply(db: Session, chunk: list[int]) -> int:
        n = 0
        for complaint in db.scalars(select(Complaint).where(Complaint.id.in_(chunk)).with_for_update()):
            complaint.attachments, removed = run.drop_photos(complaint.attachments)
            n += removed
        return n

    return run.batches(ids, Complaint.id, apply) + _orphan_files(run, cutoff)


def _orphan_files(run: _Run, cutoff: datetime) -> int:
    """Saved photos no complaint, conversation or relayed case message names (a complaint never sent)."""
    if run.policy.media_dir is None:
        return 0
    with run.factory() as db:
        named = named_files([
            *db.scalars(select(Complaint.attachments).where(cast(Complaint.attachments, Text).like('%"path"%'))),
            *db.scalars(select(ConversationSession.state)
                        .where(cast(ConversationSession.state, Text).like('%"path"%'))),
            *db.scalars(select(CaseEvent.media).where(cast(CaseEvent.media, Text).like('%"path"%')))])
    old = unnamed_files(run.policy.media_dir, named, cutoff.timestamp())
    if not run.dry_run:
        delete_files(old)
    return len(old)


def _complaints(run: _Run, cutoff: datetime) -> int:
    ids = select(Complaint.id).where(Complaint.status.in_(FINISHED), Complaint.resolved_at < cutoff,
                                     Complaint.anonymised_at.is_(None))

    def apply(db: Session, chunk: list[int]) -> None:
        for c in db.scalars(select(Complaint).where(Complaint.id.in_(chunk)).with_for_update()):
            contact = db.get(Contact, c.contact_id) if c.contact_id else None
            scrubber = run.scrubber(db, [c.reporter_name], contact)
            c.description = scrubber.scrub(c.description)
            c.occurred = scrubber.scrub(c.occurred) if c.occurred else c.occurred
            c.location_text = scrubber.scrub(c.location_text) if c.location_text else c.location_text
            c.latitude = round(c.latitude, LOCATION_DECIMALS) if c.latitude is not None else None
            c.longitude = round(c.longitude, LOCATION_DECIMALS) if c.longitude is not None else None
            c.attachments, _ = run.drop_photos(c.attachments)
            c.contact_id, c.reporter_name, c.contact_consent = None, None, False
            c.anonymised_at = run.now
            for change in db.scalars(select(StatusChange).where(StatusChange.complaint_id == c.id)):
                change.reason = scrubber.scrub(change.reason) if change.reason else change.reason
            db.add(StatusChange(complaint_id=c.id, from_status=c.status, to_status=c.status,
                                actor="system", reason=REASON, at=run.now))

    return run.batches(ids, Complaint.id, apply)


def _finished_cases(cutoff: datetime) -> Any:
    return ((Case.status == "closed") & (Case.closed_at < cutoff)) \
        | ((Case.status == "resolved") & (Case.resolved_at < cutoff))


def _cases(run: _Run, cutoff: datetime) -> int:
    linked = Case.contact_id.is_not(None) | Case.chat_id.is_not(None) | Case.reporter_name.is_not(None)
    ids = select(Case.id).where(_finished_cases(cutoff), linked)

    def apply(db: Session, chunk: list[int]) -> None:
        for case in db.scalars(select(Case).where(Case.id.in_(chunk)).with_for_update()):
            contact = db.get(Contact, case.contact_id) if case.contact_id else None
            scrubber = run.scrubber(db, [case.reporter_name], contact)
            case.summary = scrubber.scrub(case.summary)
            case.reasons = scrubber.scrub_value(case.reasons)
            case.contact_id, case.chat_id, case.reporter_name, case.relay = None, None, None, False
            for event in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)):
                if event.media:  # a relayed photo goes with the conversation
                    run.files += [p for p in [media_file(run.policy.media_dir, event.media)] if p]
                    event.media = None
                if event.reason and event.kind in ("from_resident", "to_resident"):
                    event.reason = REMOVED  # the conversation itself: who and when stay
                elif event.reason:
                    event.reason = scrubber.scrub(event.reason)
            db.add(CaseEvent(case_id=case.id, kind="status", actor="system", from_status=case.status,
                             to_status=case.status, reason=REASON, at=run.now))

    return run.batches(ids, Case.id, apply)


def _surveys(run: _Run, cutoff: datetime) -> int:
    ids = select(SurveyResponse.id).where(SurveyResponse.contact_id.is_not(None),
                                          SurveyResponse.updated_at < cutoff)

    def apply(db: Session, chunk: list[int]) -> None:
        for r in db.scalars(select(SurveyResponse).where(SurveyResponse.id.in_(chunk)).with_for_update()):
            if r.suggestion:
                r.suggestion = run.scrubber(db, [], db.get(Contact, r.contact_id)).scrub(r.suggestion)
            r.contact_id = None
            r.response_key = f"anon:{r.id}"  # the key began with the contact's id

    return run.batches(ids, SurveyResponse.id, apply)


def _audit(run: _Run, cutoff: datetime) -> int:
    done = select(Complaint.id).where(Complaint.status.in_(FINISHED))
    changes = select(StatusChange.id).where(StatusChange.at < cutoff, StatusChange.complaint_id.in_(done))
    n = run.batches(changes, StatusChange.id, _sql(
        lambda chunk: delete(StatusChange).where(StatusChange.id.in_(chunk))))
    finished = select(Case.id).where(Case.status.in_(FINISHED))
    events = select(CaseEvent.id).where(CaseEvent.at < cutoff, CaseEvent.case_id.in_(finished))
    return n + run.batches(events, CaseEvent.id, _sql(
        lambda chunk: delete(CaseEvent).where(CaseEvent.id.in_(chunk))))


@dataclass(frozen=True)
class Rule:
    kind: str
    label: str
    setting: str  # the environment variable
    days: str  # the Policy attribute
    action: str
    apply: Callable[[_Run, datetime], int]


# Media before complaints: a photo's own period may be the shorter one.
RULES: tuple[Rule, ...] = (
    Rule("inbound_texts", "bodies of inbound updates kept for an operator", "RETENTION_INBOUND_DAYS",
         "inbound", "cleared", _inbound_texts),
    Rule("inbound_keys", "inbound de-duplication keys", "RETENTION_INBOUND_KEYS_DAYS",
         "inbound_keys", "deleted", _inbound_keys),
    Rule("outbox_texts", "texts and chat ids of settled outbox messages", "RETENTION_OUTBOX_DAYS",
         "outbox", "cleared", _outbox_texts),
    Rule("sessions", "idle conversation states", "RETENTION_SESSIONS_DAYS",
         "sessions", "deleted", _sessions),
    Rule("webhook_bodies", "unprocessed WhatsApp webhook bodies", "RETENTION_WEBHOOK_BODIES_DAYS",
         "webhook_bodies", "deleted", _webhook_bodies),
    Rule("media", "photos of finished complaints, and unused ones", "RETENTION_MEDIA_DAYS",
         "media", "deleted", _media),
    Rule("complaints", "personal data of finished complaints", "RETENTION_CLOSED_COMPLAINT_PERSONAL_DAYS",
         "complaints", "anonymised", _complaints),
    Rule("cases", "personal data of finished cases", "RETENTION_CLOSED_COMPLAINT_PERSONAL_DAYS",
         "complaints", "anonymised", _cases),
    Rule("surveys", "survey links to residents", "RETENTION_SURVEY_LINK_DAYS",
         "surveys", "unlinked", _surveys),
    Rule("audit", "audit rows of finished complaints and cases", "RETENTION_AUDIT_DAYS",
         "audit", "deleted", _audit),
)


def run_retention(factory: sessionmaker[Session], policy: Policy, now: datetime, *,
                  dry_run: bool = False, batch: int = BATCH) -> list[Outcome]:
    """Apply every rule once; one log line per kind (``count`` and ``job`` as fields)."""
    run = _Run(factory, policy, now, dry_run, batch)
    out: list[Outcome] = []
    for rule in RULES:
        days = int(getattr(policy, rule.days))
        result = Outcome(rule.kind, rule.label, rule.setting, days, rule.action, 0, dry_run)
        try:
            result.count = rule.apply(run, now - timedelta(days=days)) if days else 0
        except Exception as exc:  # one kind failing (a lock, a bad row) must not stop the others
            run.files.clear()
            result.error = type(exc).__name__
            log.exception("retention %s failed", rule.kind, extra={"job": RETENTION_JOB})
        out.append(result)
        if not dry_run:
            TOTALS[rule.kind] += result.count
            log.info("retention %s: %s", rule.kind, result.line(),
                     extra={"count": result.count, "job": RETENTION_JOB})
    return out


def run_retention_job(factory: sessionmaker[Session], policy: Policy, clock: Callable[[], datetime]) -> None:
    """The scheduler's daily run: a kind that fails is logged, the next day tries it again."""
    run_retention(factory, policy, clock())


def regency_zone(factory: sessionmaker[Session]) -> str:
    """The zone most active agencies use (they share one in a regency), else Asia/Jakarta."""
    with factory() as db:
        zones = Counter(agency_zone(a) for a in db.scalars(select(Agency).where(Agency.active)))
    return zones.most_common(1)[0][0] if zones else DEFAULT_ZONE


def register_retention_job(scheduler: Any, factory: sessionmaker[Session], policy: Policy,
                           clock: Callable[[], datetime], at: str = "02:30",
                           zone: str | None = None) -> None:
    """Daily at ``at`` local time (quiet hours: few residents write, no digest runs)."""
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger

    hour, minute = (int(x) for x in at.split(":"))
    trigger = CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(zone or regency_zone(factory)))
    scheduler.add_job(run_retention_job, trigger, args=[factory, policy, clock], id=RETENTION_JOB,
                      name="retention", max_instances=1, coalesce=True, misfire_grace_time=6 * 3600,
                      replace_existing=True)
