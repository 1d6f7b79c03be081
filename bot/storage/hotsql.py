"""The runtime's hot path in SQL: the nine or ten statements one resident message runs, built once.

Why it exists: a turn (store the update, load and save the session, record answers, queue
the reply) runs about ten statements. Building them on every message cost more than running
them, and even a cached compilation went through SQLAlchemy's execute machinery (execution
context, events, result wrapping) at about 60 us per statement, more than SQLite took to run
it. Here each statement is built once at import (``HotSQL``, one ``INSERT ... ON CONFLICT``
flavour per dialect) and compiled once per dialect (``Prepared``), keeping SQLAlchemy's SQL
text and its bind and result processors, and dropping the rest.

What it may touch: only the tables of one turn (inbound events, sessions, survey responses
and answers, outbox rows, contacts), from ``bot.runtime`` inside the turn's own transaction, on
the cursor of ``db.connection()``, so it commits or rolls back with the ORM work; and the
channels' per-message bookkeeping (sent rows, WhatsApp's stored bodies), each inside its own
Core transaction. Nothing else in Prima should use it: the ORM is the default everywhere else.

What it relies on: SQLAlchemy's compiler, through ``bot.storage.prepared`` (which says what
exactly); ``pyproject.toml`` admits only the SQLAlchemy minors the tests ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, literal_column, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable

from bot.storage.models import (
    Contact,
    ConversationSession,
    InboundEvent,
    OutboxMessage,
    SurveyAnswer,
    SurveyResponse,
)
from bot.storage.pgpipe import batch as batch
from bot.storage.pgpipe import plain as plain
from bot.storage.prepared import EXECUTED as EXECUTED
from bot.storage.prepared import Prepared as Prepared

EVENTS = cast(Table, InboundEvent.__table__)
SESSIONS = cast(Table, ConversationSession.__table__)
RESPONSES = cast(Table, SurveyResponse.__table__)
ANSWERS = cast(Table, SurveyAnswer.__table__)
OUTBOX = cast(Table, OutboxMessage.__table__)
CONTACTS = cast(Table, Contact.__table__)


@dataclass(frozen=True)
class HotSQL:
    first_delivery: Executable
    session_state: Executable
    session_insert: Executable
    session_update: Executable
    response_find: Executable
    response_insert: Executable
    response_update: Executable
    response_complete: Executable
    answers_upsert: Executable
    answers_prune: Executable
    reminder_push: Executable
    reminder_cancel: Executable
    contact_seen: Executable


def _build(insert: Any) -> HotSQL:
    upsert = insert(ANSWERS)
    return HotSQL(
        first_delivery=insert(EVENTS).on_conflict_do_nothing().returning(EVENTS.c.id),
        session_state=select(SESSIONS.c.state).where(SESSIONS.c.contact_id == bindparam("cid")),
        session_insert=insert(SESSIONS).on_conflict_do_nothing(),
        session_update=update(SESSIONS)
        .where(SESSIONS.c.contact_id == bindparam("cid"))
        .values(state=bindparam("state"), updated_at=bindparam("at")),
        # the id, and the first answer's time every answer of the questionnaire is counted at
        response_find=select(RESPONSES.c.id, RESPONSES.c.started_at)
        .where(RESPONSES.c.response_key == bindparam("key")),
        response_insert=insert(RESPONSES).returning(RESPONSES.c.id),
        response_update=update(RESPONSES)
        .where(RESPONSES.c.id == bindparam("rid"))
        .values(status=bindparam("status"), updated_at=bindparam("at")),
        response_complete=update(RESPONSES)
        .where(RESPONSES.c.id == bindparam("rid"))
        .values(status="complete", updated_at=bindparam("at"), completed_at=bindparam("at"),
                suggestion=bindparam("suggestion")),
        answers_upsert=upsert.on_conflict_do_update(
            index_elements=[ANSWERS.c.response_id, ANSWERS.c.element],
            set_={"score": upsert.excluded.score, "answered_at": upsert.excluded.answered_at},
            where=ANSWERS.c.score.is_distinct_from(upsert.excluded.score),
        ),
        # Answers are numbered 1..n: anything above n was undone with "back".
        answers_prune=delete(ANSWERS).where(
            ANSWERS.c.response_id == bindparam("rid"), ANSWERS.c.element > bindparam("n")
        ),
        reminder_push=update(OUTBOX)
        .where(OUTBOX.c.dedupe_key == bindparam("key"), OUTBOX.c.status == "pending")
        .values(due_at=bindparam("due")),
        reminder_cancel=update(OUTBOX)
        .where(OUTBOX.c.dedupe_key == bindparam("key"), OUTBOX.c.status == "pending")
        .values(status="cancelled"),
        contact_seen=update(CONTACTS)
        .where(CONTACTS.c.id == bindparam("cid"))
        .values(last_inbound_at=bindparam("now"), unreachable_at=None),
    )


SQLITE = _build(sqlite.insert)
POSTGRES = _build(postgresql.insert)


def for_dialect(name: str) -> HotSQL:
    return POSTGRES if name == "postgresql" else SQLITE


def _values(table: Table, *names: str) -> dict[str, Any]:
    return {name: bindparam(name) for name in names}


class RawSQL:
    """The per-message statements as :class:`Prepared`, for one engine's dialect."""

    def __init__(self, dialect: Any) -> None:
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        hot = POSTGRES if dialect.name == "postgresql" else SQLITE

        shared: dict[Any, Any] = {}

        def prep(stmt: Any) -> Prepared:
            return Prepared(stmt, dialect, shared)

        self.first_delivery = prep(
            insert(EVENTS).values(_values(EVENTS, "channel", "event_key", "received_at"))
            .on_conflict_do_nothing().returning(EVENTS.c.id))
        # The contact, locked (serialising one resident's turns, also across processes on
        # PostgreSQL), with its session state in the same round trip. On PostgreSQL the state
        # is a statement of its own after the lock (sent with it, see ``batch``): a joined row
        # comes from the snapshot taken before waiting for the lock, so a turn that waited for
        # another process's turn of the same resident would read the state it replaced.
        by_resident = (CONTACTS.c.channel == bindparam("channel"),
                       CONTACTS.c.external_id == bindparam("external_id"))
        extra = [CONTACTS.c[name] for name in CONTACT_EXTRA]
        self.session_after_lock: Prepared | None = None
        if dialect.name == "postgresql":
            self.contact_state = prep(
                select(CONTACTS.c.id, CONTACTS.c.language, CONTACTS.c.consent_at,
                       CONTACTS.c.display_name, null(), null(), *extra)
                .where(*by_resident).with_for_update())
            self.session_after_lock = prep(
                select(SESSIONS.c.contact_id, SESSIONS.c.state)
                .where(SESSIONS.c.contact_id == select(CONTACTS.c.id).where(*by_resident)
                       .scalar_subquery()))
        else:  # BEGIN IMMEDIATE already serialised whole transactions
            self.contact_state = prep(
                select(CONTACTS.c.id, CONTACTS.c.language, CONTACTS.c.consent_at,
                       CONTACTS.c.display_name, SESSIONS.c.contact_id, SESSIONS.c.state, *extra)
                .select_from(CONTACTS.outerjoin(SESSIONS, SESSIONS.c.contact_id == CONTACTS.c.id))
                .where(*by_resident).with_for_update(of=CONTACTS))
        self.contact_seen = prep(hot.contact_seen)
        # a new resident (identity.arrive); the name waits for the consent
        self.contact_insert = prep(
            insert(CONTACTS).values(_values(CONTACTS, "channel", "external_id", "language", "created_at"))
            .on_conflict_do_nothing())
        # the resident's latest questionnaire for a service in its period (surveys.survey_check)
        self.survey_prev = prep(
            select(RESPONSES.c.response_key, RESPONSES.c.started_at, RESPONSES.c.status)
            .where(RESPONSES.c.contact_id == bindparam("cid"),
                   RESPONSES.c.service_id == bindparam("sid"),
                   RESPONSES.c.started_at >= bindparam("since"))
            .order_by(RESPONSES.c.started_at.desc(), RESPONSES.c.id.desc()).limit(1))
        # once per questionnaire: the profile its response keeps a snapshot of
        self.contact_profile = prep(
            select(*(CONTACTS.c[name] for name in PROFILE_COLUMNS))
            .where(CONTACTS.c.id == bindparam("cid")))
        self.contact_language = prep(
            update(CONTACTS).where(CONTACTS.c.id == bindparam("cid"))
            .values(language=bindparam("language")))
        # the consent, with the channel's name when it gave one (the old one kept otherwise)
        self.contact_consent = prep(
            update(CONTACTS).where(CONTACTS.c.id == bindparam("cid"))
            .values(consent_at=bindparam("now"),
                    display_name=func.coalesce(bindparam("name", type_=CONTACTS.c.display_name.type),
                                               CONTACTS.c.display_name)))
        # the respondent profile (runtime.surveys.save_profile): asked once, then each answer
        # on the contact and on the questionnaire it was asked after
        self.profile_asked = prep(
            update(CONTACTS).where(CONTACTS.c.id == bindparam("cid"), CONTACTS.c.profile_at.is_(None))
            .values(profile_at=bindparam("now")))
        self.profile_contact = {
            name: prep(update(CONTACTS).where(CONTACTS.c.id == bindparam("cid"))
                       .values({name: bindparam("value")}))
            for name in PROFILE_COLUMNS}
        self.profile_response = {
            name: prep(update(RESPONSES).where(RESPONSES.c.response_key == bindparam("key"),
                                               RESPONSES.c.contact_id == bindparam("cid"))
                       .values({name: bindparam("value")}))
            for name in PROFILE_COLUMNS}
        self.session_insert = prep(
            insert(SESSIONS).values(_values(SESSIONS, "contact_id", "state", "updated_at"))
            .on_conflict_do_nothing())
        self.session_update = prep(hot.session_update)
        self.response_find = prep(hot.response_find)
        # A survey answer's response row: its new status, and what the answers need (the id, the
        # time they count at, the highest stored element: above the answers given, some were
        # undone) in the same statement. The subquery sees this transaction's own writes.
        # (spelt out: SQLite's RETURNING drops table names, and "id" would be the answer's own)
        stored = ANSWERS.alias("stored")
        highest = select(func.max(stored.c.element)).where(
            literal_column("stored.response_id") == literal_column("survey_responses.id"),
        ).scalar_subquery()
        touched = (RESPONSES.c.id, RESPONSES.c.started_at, highest)
        by_key = RESPONSES.c.response_key == bindparam("key")
        self.response_touch = prep(
            update(RESPONSES).where(by_key)
            .values(status=bindparam("status"), updated_at=bindparam("at")).returning(*touched))
        self.response_touch_complete = prep(
            update(RESPONSES).where(by_key)
            .values(status="complete", updated_at=bindparam("at"), completed_at=bindparam("at"),
                    suggestion=bindparam("suggestion")).returning(*touched))
        self.response_insert = prep(
            insert(RESPONSES).values(_values(
                RESPONSES, "response_key", "contact_id", "agency_id", "service_id", "channel",
                "status", "started_at", "updated_at", *PROFILE_COLUMNS)).returning(RESPONSES.c.id))
        self.response_update = prep(hot.response_update)
        self.response_complete = prep(hot.response_complete)
        self.answers_upsert = prep(
            _answers_upsert(insert))
        self.answers_prune = prep(hot.answers_prune)
        self.reminder_push = prep(hot.reminder_push)
        self.reminder_cancel = prep(hot.reminder_cancel)
        self.reminder_insert = prep(
            insert(OUTBOX).values(_values(OUTBOX, *REMINDER_COLUMNS))
            .on_conflict_do_nothing(index_elements=[OUTBOX.c.dedupe_key]).returning(OUTBOX.c.id))
        self.mark_sent = prep(
            update(OUTBOX).where(OUTBOX.c.id == bindparam("row_id"))
            .values(status="sent", sent_at=bindparam("now"),
                    provider_message_id=bindparam("provider_id"), attempts=OUTBOX.c.attempts + 1))
        self.reply_insert = prep(
            insert(OUTBOX).values(_values(OUTBOX, *REPLY_COLUMNS)).returning(OUTBOX.c.id))
        self._insert, self._prep = insert, prep
        self._replies: dict[int, Prepared] = {}

    def replies(self, n: int) -> Prepared:
        """One INSERT of ``n`` replies (``REPLY_COLUMNS`` suffixed ``_0`` .. ``_{n-1}``), RETURNING
        their ids: a turn's replies in one statement instead of one each."""
        if n not in self._replies:
            rows: list[dict[str, Any]] = [
                {c: bindparam(f"{c}_{i}", type_=OUTBOX.c[c].type) for c in REPLY_COLUMNS}
                for i in range(n)]
            self._replies[n] = self._prep(
                self._insert(OUTBOX).values(rows).returning(OUTBOX.c.id))
        return self._replies[n]


# Read with the contact (after the session state): whether this turn must mark the contact seen,
# and whether the respondent profile was asked (surveys.survey_check).
CONTACT_EXTRA = ("last_inbound_at", "unreachable_at", "profile_at")
# The respondent profile, on contacts and (as a snapshot) on survey_responses.
PROFILE_COLUMNS = ("profile_gender", "profile_age", "profile_education", "profile_job")
REMINDER_COLUMNS = ("contact_id", "channel", "chat_id", "kind", "payload", "status", "due_at",
                    "attempts", "created_at", "dedupe_key", "agency_id", "urgent", "ref", "uncertain")
REPLY_COLUMNS = ("contact_id", "channel", "chat_id", "kind", "payload", "status", "due_at",
                 "attempts", "claimed_at", "created_at", "urgent", "uncertain", "ref")


def _answers_upsert(insert: Any) -> Any:
    upsert = insert(ANSWERS).values(_values(
        ANSWERS, "response_id", "agency_id", "service_id", "element", "score", "answered_at",
        "counted_at"))
    return upsert.on_conflict_do_update(
        index_elements=[ANSWERS.c.response_id, ANSWERS.c.element],
        set_={"score": upsert.excluded.score, "answered_at": upsert.excluded.answered_at},
        where=ANSWERS.c.score.is_distinct_from(upsert.excluded.score),
    )
