"""Statements on the per-message hot path, built once.

SQLAlchemy memoises the cache key of a statement object, so a statement built at import
and executed with bound parameters skips construction and compilation; building the same
statement on every message cost more than running it. Each dialect gets its own ``INSERT
... ON CONFLICT`` flavour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable

from bot.models import (
    Contact,
    ConversationSession,
    InboundEvent,
    OutboxMessage,
    SurveyAnswer,
    SurveyResponse,
)

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
        response_find=select(RESPONSES.c.id).where(RESPONSES.c.response_key == bindparam("key")),
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
