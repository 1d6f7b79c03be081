"""SQLAlchemy 2 models. Times are stored as naive UTC and read back as aware UTC.

Why one module for every table (about 460 lines): it is the schema, one declarative ``Base``
and one ``MetaData``, and it is read as one. Relationships and foreign keys name tables of
other areas (a complaint's service, a survey's agency, a case's complaint); Alembic
(bot/storage/migrations/env.py) compares migrations against ``Base.metadata``; and the erasure
sweep (bot/privacy/erasure.py) and the privacy tests walk ``Base.metadata.sorted_tables`` to
cover every table without a hand-kept list. Split over several modules, a table would exist
only once its module had been imported, and a table whose module nobody imported would silently
escape both. Nothing here but the UTC time type, columns, constraints and indexes: the logic
over them lives with each area.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Identifier columns (chat ids, user ids, message ids and keys built from them). Telegram ids
# are 64-bit integers (20 characters as text); Meta's business-scoped user id is a country
# code, a period and up to 128 characters (a parent id adds "ENT."), and a wamid is an opaque
# base64 string. 256 holds all of them with room; SQLite does not enforce lengths at all.
ID_LEN = 256

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Store UTC without a zone (portable across SQLite and PostgreSQL), return aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def as_utc(when: datetime) -> datetime:
    """A datetime read past :class:`UTCDateTime` (an aggregate, a raw column on SQLite) comes
    back naive; it is UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(80))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Jakarta")
    followup_days: Mapped[int] = mapped_column(Integer, default=7)
    quiet_start: Mapped[str] = mapped_column(String(5), default="21:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="07:00")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    services: Mapped[list[Service]] = relationship(back_populates="agency", order_by="Service.id")


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"aliases": [...]}
    free_by_law: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # 0012_skm_data: service users per period (the Krejcie-Morgan population, bot/reports/
    # sample.py) and how often one resident may rate the service ("day" or hours, e.g. "12").
    population: Mapped[int | None] = mapped_column(Integer)
    population_per: Mapped[str | None] = mapped_column(String(16))  # year | semester | quarter | month
    survey_once_per: Mapped[str | None] = mapped_column(String(16))  # NULL: one per local day

    agency: Mapped[Agency] = relationship(back_populates="services")


class Contact(Base):
    """A resident (or staff member) on one channel."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_contacts_channel_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(ID_LEN))  # Telegram user id, wa_id or BSUID
    display_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="id")
    consent_at: Mapped[datetime | None] = mapped_column()
    unreachable_at: Mapped[datetime | None] = mapped_column()
    last_inbound_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    # 0012_skm_data: the SKM respondent profile (codes of flows/helpers/profile.py; NULL = not
    # given or "Tidak ingin menjawab"); profile_at: when it was first asked (NULL: never).
    profile_gender: Mapped[str | None] = mapped_column(String(16))
    profile_age: Mapped[str | None] = mapped_column(String(16))
    profile_education: Mapped[str | None] = mapped_column(String(16))
    profile_job: Mapped[str | None] = mapped_column(String(16))
    profile_at: Mapped[datetime | None] = mapped_column()


class ConversationSession(Base):
    """The engine's state for one contact; one row, updated in the event's transaction."""

    __tablename__ = "sessions"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column()


class InboundEvent(Base):
    """De-duplication of inbound deliveries (Telegram update_id, WhatsApp message id...)."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("channel", "event_key", name="uq_inbound_events_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    event_key: Mapped[str] = mapped_column(String(ID_LEN))  # update_id or wamid
    received_at: Mapped[datetime] = mapped_column(index=True)
    # The update as delivered, kept only when it could not be handled (unparseable, or a bug):
    # an operator can look at it without personal data ever going to the logs.
    raw: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class SurveyResponse(Base):
    """One SKM questionnaire; kept even when incomplete (answered elements still count)."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        Index("ix_survey_responses_agency_started", "agency_id", "started_at"),
        # questionnaires still answered after a period's boundary (bot/reports/periodic/data.py)
        Index("ix_survey_responses_agency_updated", "agency_id", "updated_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_key: Mapped[str] = mapped_column(String(ID_LEN), unique=True)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="partial")  # partial | complete
    suggestion: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    # 0012_skm_data: the respondent's profile as it was when they answered (a later edit in
    # "Data saya" does not rewrite history); cleared when the resident erases their data.
    profile_gender: Mapped[str | None] = mapped_column(String(16))
    profile_age: Mapped[str | None] = mapped_column(String(16))
    profile_education: Mapped[str | None] = mapped_column(String(16))
    profile_job: Mapped[str | None] = mapped_column(String(16))
    # 0014_kiosks: the counter tablet it was answered on (channel "kiosk", no contact).
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"), index=True)

    answers: Mapped[list[SurveyAnswer]] = relationship(
        back_populates="response", cascade="all, delete-orphan", order_by="SurveyAnswer.element"
    )


class SurveyAnswer(Base):
    """Score 1-4 for one of the nine elements; NULL score means "tidak tahu" (skipped)."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("response_id", "element", name="uq_survey_answers_element"),
        Index("ix_survey_answers_agency_element", "agency_id", "answered_at", "element"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_responses.id", ondelete="CASCADE"))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    element: Mapped[int] = mapped_column(SmallInteger)
    score: Mapped[int | None] = mapped_column(SmallInteger)
    answered_at: Mapped[datetime] = mapped_column()
    # 0012_skm_data: the questionnaire's first answer (its response's started_at), copied here so
    # every report counts the whole questionnaire in one week and period with one index scan.
    counted_at: Mapped[datetime] = mapped_column()

    response: Mapped[SurveyResponse] = relationship(back_populates="answers")


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (
        Index("ix_complaints_agency_created", "agency_id", "created_at"),
        Index("ix_complaints_category", "category"),  # the web desk's category filter
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket: Mapped[str] = mapped_column(String(16), unique=True)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    channel: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    occurred: Mapped[str | None] = mapped_column(String(200))
    attachments: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"photos": [...]}
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    location_text: Mapped[str | None] = mapped_column(String(300))
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    reporter_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="new")
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    anonymised_at: Mapped[datetime | None] = mapped_column()
    source_key: Mapped[str] = mapped_column(String(ID_LEN), unique=True)
    # 0015_web_chat: a complaint filed on the web chat has a short secret (shown once; its
    # SHA-256 here) asked with the ticket to see its status, and, while the resident moves to
    # Telegram or WhatsApp, a one-time claim code (hash) valid until ``web_claim_until``.
    web_secret_hash: Mapped[str | None] = mapped_column(String(64))
    web_claim_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    web_claim_until: Mapped[datetime | None] = mapped_column()

    service: Mapped[Service] = relationship()
    history: Mapped[list[StatusChange]] = relationship(
        back_populates="complaint", order_by="StatusChange.id"
    )


class StatusChange(Base):
    """Audit trail: who changed a complaint's status, when, from what, to what, and why."""

    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column()

    complaint: Mapped[Complaint] = relationship(back_populates="history")


class OutboxMessage(Base):
    """Every outbound message. Immediate replies are sent right after commit; the rest by the dispatcher."""

    __tablename__ = "outbox"
    # 0016_outbox_index: the dispatcher's claim (oldest due rows of a channel, in order) and
    # the /metrics GROUP BY status, channel read this index, not the table.
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "due_at"),
        Index("ix_outbox_status_channel_due", "status", "channel", "due_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(ID_LEN))  # Telegram chat id, wa_id or BSUID
    kind: Mapped[str] = mapped_column(String(32), default="reply")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # pending | claimed | sent | failed | cancelled
    due_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    provider_message_id: Mapped[str | None] = mapped_column(String(ID_LEN), index=True)  # statuses by wamid
    dedupe_key: Mapped[str | None] = mapped_column(String(ID_LEN), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    # 0002_outbox: scheduled messages (follow-ups) know their agency for quiet hours, say
    # whether they may wait for the morning, name what they are about (to cancel them), and
    # count sends whose outcome was unknowable (a possible duplicate on the resident's side).
    agency_id: Mapped[int | None] = mapped_column(Integer)
    urgent: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    ref: Mapped[str | None] = mapped_column(String(64), index=True)
    uncertain: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # 0004_whatsapp: what the platform reported after accepting the message (WhatsApp
    # status webhooks): sent -> delivered -> read, or failed with the platform's error code.
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivered_at: Mapped[datetime | None] = mapped_column()
    read_at: Mapped[datetime | None] = mapped_column()
    error_code: Mapped[str | None] = mapped_column(String(16))


class StaffMember(Base):
    """A head, staff member or admin of one agency, reached on the chat they registered from."""

    __tablename__ = "staff_members"
    __table_args__ = (UniqueConstraint("agency_id", "contact_id", name="uq_staff_members_agency_contact"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # head | staff | admin
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(ID_LEN))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column()


class StaffInvite(Base):
    """A one-time registration code; only its SHA-256 is stored."""

    __tablename__ = "staff_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    used_by: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))


class StaffInviteAttempt(Base):
    """A failed /daftar attempt, kept to limit guessing per contact."""

    __tablename__ = "staff_invite_attempts"
    __table_args__ = (Index("ix_staff_invite_attempts_contact_at", "contact_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column()


class Digest(Base):
    """One weekly digest per agency and ISO week: the unique key makes production happen once."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("agency_id", "week", name="uq_digests_agency_week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    week: Mapped[str] = mapped_column(String(10))  # ISO week, e.g. 2026-W47
    produced_at: Mapped[datetime] = mapped_column()
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)


class FollowupAnswer(Base):
    """A resident's answer to a follow-up ("is it resolved?", a 1-5 rating): kept as asked."""

    __tablename__ = "followup_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    question: Mapped[str] = mapped_column(String(16))  # checkin | rating
    answer: Mapped[str] = mapped_column(String(16))  # yes | notyet | no | 1..5
    at: Mapped[datetime] = mapped_column()


class WhatsAppWebhook(Base):
    """A signed WhatsApp webhook body, stored before answering 200 and deleted once processed.

    Meta wants a quick 200; processing happens after it. A body whose processing failed stays
    here (``attempts``, ``last_error``) and is retried, so nothing a resident sent is lost.
    """

    __tablename__ = "whatsapp_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class WhatsAppIdentity(Base):
    """A business-scoped user id (BSUID) seen together with a ``wa_id``: one resident, not two."""

    __tablename__ = "whatsapp_identities"

    user_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    wa_id: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column()


class StaffRoom(Base):
    """An agency's staff room: a Telegram supergroup with topics, one topic per case."""

    __tablename__ = "staff_rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64), unique=True)
    linked_by: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    linked_at: Mapped[datetime] = mapped_column()


class Case(Base):
    """A conversation in human review. One per source (complaint, survey, request): ``source_key``.

    Status: new -> open (taken) -> pending (waiting for the resident) -> resolved -> closed,
    and reopened. Every complaint has one (``complaint:<id>``). Deadlines are working time
    (bot/worktime.py, per agency and complaint category), stored in UTC.
    """

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_agency_status", "agency_id", "status"),
        # the SLA tick looks for deadlines already past: a range scan, not the whole table
        Index("ix_cases_first_response_due", "first_response_due"),
        Index("ix_cases_resolution_due", "resolution_due"),
        # the web desk's queue: an agency's cases, newest resident message first
        Index("ix_cases_agency_last_resident", "agency_id", "last_resident_at"),
        # ... and its counts (per status, overdue) read from the index alone
        Index("ix_cases_agency_deadlines", "agency_id", "status", "resolution_due", "first_response_due",
              "first_response_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_key: Mapped[str] = mapped_column(String(ID_LEN), unique=True)
    ticket: Mapped[str] = mapped_column(String(16), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    survey_response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_responses.id"))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str | None] = mapped_column(String(ID_LEN))  # where the resident is answered
    # complaint | person | serious | low_survey | not_resolved | manual
    trigger: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"reasons": [...]}
    summary: Mapped[str] = mapped_column(Text, default="")
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    reporter_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="new")
    # urgent (a serious trigger, or raised by staff) | normal: urgent cases come first in every view
    priority: Mapped[str] = mapped_column(String(16), default="normal", server_default="normal")
    level: Mapped[str] = mapped_column(String(16), default="staff")  # staff | head
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id", ondelete="SET NULL"))
    relay: Mapped[bool] = mapped_column(Boolean, default=False)  # resident's messages go to staff
    room_chat_id: Mapped[str | None] = mapped_column(String(64))
    topic_id: Mapped[int | None] = mapped_column(Integer)
    card_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    first_response_due: Mapped[datetime] = mapped_column()
    resolution_due: Mapped[datetime] = mapped_column()
    first_response_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    first_overdue_at: Mapped[datetime | None] = mapped_column()  # when the breach was flagged
    resolution_overdue_at: Mapped[datetime | None] = mapped_column()
    notice_at: Mapped[datetime | None] = mapped_column()  # last "your message went to staff"
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    # a duplicate follows the surviving case: its resident gets that case's updates
    last_resident_at: Mapped[datetime | None] = mapped_column()  # opened, or the resident's latest message
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)

    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")


class CaseEvent(Base):
    """Audit trail of a case: who, when, from what, to what, why; also notes and relayed messages."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # status | note | to_resident | from_resident | overdue | rating | refused | priority
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    # a relayed photo: what the channel gave (file id, media id, saved path) and "channel"
    media: Mapped[dict[str, Any] | None] = mapped_column()
    at: Mapped[datetime] = mapped_column()

    case: Mapped[Case] = relationship(back_populates="events")


class SendBudgetKey(Base):
    """One key of the send budget shared by several processes (SEND_BUDGET=postgres).

    ``tat`` is the GCRA's theoretical arrival time of the key's next message, in seconds since
    the epoch on the database server's clock (so every process reads the same clock). A key
    names a channel, the bot or phone number, and a hash of the chat (no chat id is stored);
    a key whose time has passed means the same as none and is pruned. The step itself is the
    function ``send_budget_reserve`` (migration 0009, bot/outbox/budget.py). Unused on SQLite.
    """

    __tablename__ = "send_budget"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[float] = mapped_column(Float)


class DeskLoginToken(Base):
    """A one-time sign-in link for the web desk (``/masuk``): only a SHA-256 of it is stored."""

    __tablename__ = "desk_login_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class DeskSession(Base):
    """A signed-in web desk browser: the cookie's SHA-256, its CSRF token and its idle clock."""

    __tablename__ = "desk_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="id")
    created_at: Mapped[datetime] = mapped_column()
    seen_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()


class CannedReply(Base):
    """An agency's ready-made answer that staff pick in the desk's reply box."""

    __tablename__ = "desk_canned_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column()


# Covering index for the weekly digest (migration 0003b, on counted_at since 0012_skm_data):
# its GROUP BY reads only the index.
Index(
    "ix_survey_answers_digest",
    SurveyAnswer.agency_id, SurveyAnswer.counted_at, SurveyAnswer.service_id, SurveyAnswer.element,
    SurveyAnswer.score,
)


class PlanAction(Base):
    """One improvement action of the follow-up plan (rencana tindak lanjut) for an SKM element.

    Heads and admins record it from the bot (/rencana); the digest and the periodic report show
    it next to the element it addresses. ``service_id`` NULL means every service of the agency.
    """

    __tablename__ = "plan_actions"
    __table_args__ = (Index("ix_plan_actions_agency_status", "agency_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    element: Mapped[int] = mapped_column(SmallInteger)  # 1..9 (U1..U9)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    what: Mapped[str] = mapped_column(Text)
    who: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="planned")  # planned | in_progress | done
    done_text: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class PeriodicReport(Base):
    """One periodic report per scope (an agency slug, or "*" for the regency) and period: the
    unique key makes the automatic production happen once."""

    __tablename__ = "periodic_reports"
    __table_args__ = (UniqueConstraint("scope", "period", name="uq_periodic_reports_scope_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(8))  # 2026-Q4 | 2026-S2 | 2026
    produced_at: Mapped[datetime] = mapped_column()
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Kiosk(Base):
    """A tablet at an agency's counter that collects one service's SKM (bot/web/kiosk/).

    Only a SHA-256 of its URL token is stored; ``last_completed_at`` bounds ballot stuffing
    (one questionnaire per ``KIOSK_MIN_INTERVAL``). Its questionnaires are ordinary
    ``survey_responses`` with channel "kiosk", no contact and ``kiosk_id`` set.
    """

    __tablename__ = "kiosks"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_completed_at: Mapped[datetime | None] = mapped_column()
