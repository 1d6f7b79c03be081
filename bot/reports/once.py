"""Produce once, deliver to each person in their own language: what the weekly digest and the
periodic report share.

A report is claimed by inserting its row with a unique key (``ON CONFLICT DO NOTHING
RETURNING id``) in the same transaction as its outbox rows, so a second process or a retry
finds the row and queues nothing, and a failure before the commit leaves nothing behind. The
files are rendered before that transaction, once per language the recipients read; someone
who registered in another language meanwhile gets theirs rendered on the spot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.storage.models import Contact, OutboxMessage, StaffMember

Files = TypeVar("Files")


def languages(db: Session, people: Sequence[StaffMember], default: str) -> set[str]:
    """The languages the recipients read (the default when there is nobody yet)."""
    ids = [p.contact_id for p in people]
    return set(db.scalars(select(Contact.language).where(Contact.id.in_(ids)))) or {default}


def claim(db: Session, table: Any, **values: Any) -> int | None:
    """Insert the report's unique row; its id, or None when another run already has it."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    return db.scalar(insert(table).values(**values).on_conflict_do_nothing().returning(table.id))


def queue(db: Session, people: Sequence[StaffMember], files: dict[str, Files], *,
          render: Callable[[str], Files], payloads: Callable[[Files, str], list[dict[str, Any]]],
          kind: str, key: str, default: str, now: datetime) -> int:
    """One outbox row per payload per person, in the person's language; how many were queued.

    ``key`` prefixes each row's dedupe key (``<key>:<person>:<n>``)."""
    count = 0
    for person in people:
        contact = db.get(Contact, person.contact_id)
        lang = contact.language if contact else default
        if lang not in files:  # registered in another language while the files were rendered
            files[lang] = render(lang)
        for i, payload in enumerate(payloads(files[lang], lang)):
            db.add(OutboxMessage(
                contact_id=person.contact_id, channel=person.channel, chat_id=person.chat_id,
                kind=kind, payload=payload, status="pending", due_at=now,
                dedupe_key=f"{key}:{person.id}:{i}", created_at=now,
            ))
            count += 1
    return count
