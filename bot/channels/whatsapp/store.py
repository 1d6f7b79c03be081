"""WhatsApp's own database work: stored webhook bodies, identities, statuses, waiting rows.

A body is stored before it is answered and deleted once processed (it holds personal
data); one whose processing fails stays for a retry. Bodies that arrive together are stored
in one transaction, and the bookkeeping after the replies went out (rows sent, parked rows
due again, bodies done) is one transaction for many turns: a commit costs more than the rows.
A business-scoped user id seen with a ``wa_id`` maps to it; a changed number moves the contact.
Delivery statuses are written on the outbox row with that message id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, bindparam, case, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.whatsapp.graph import classify
from bot.channels.whatsapp.ids import CHANNEL, is_phone
from bot.channels.whatsapp.inbound import Incoming, Status
from bot.outbox.store import SendError, apply_failure
from bot.storage import roundtrips
from bot.storage.hotsql import Prepared, batch
from bot.storage.models import (
    Case,
    Contact,
    ConversationSession,
    OutboxMessage,
    WhatsAppIdentity,
    WhatsAppWebhook,
)

if TYPE_CHECKING:
    from bot.runtime.facade import Runtime

MAX_WEBHOOK_ATTEMPTS = 10
PHOTO_STEPS = {("complaint", "photos_done")}  # the questions that ask for a photo (flows/steps.py)
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3}
WEBHOOKS = cast(Table, WhatsAppWebhook.__table__)
OUTBOX = cast(Table, OutboxMessage.__table__)
CONTACTS = cast(Table, Contact.__table__)
_STORE = (insert(WEBHOOKS).values(body=bindparam("body"), received_at=bindparam("received_at"),
                                  attempts=bindparam("attempts")).returning(WEBHOOKS.c.id))
_RELEASE_ALL = (update(OUTBOX)
                .where(OUTBOX.c.channel == CHANNEL, OUTBOX.c.status == "waiting",
                       OUTBOX.c.chat_id == bindparam("chat"))
                .values(status="pending", due_at=bindparam("now"), claimed_at=None))
_RELEASE_BELOW = _RELEASE_ALL.where(OUTBOX.c.id < bindparam("below"))
_DONE = delete(WEBHOOKS).where(WEBHOOKS.c.id == bindparam("row_id"))
_CONTACT = select(CONTACTS.c.language, CONTACTS.c.last_inbound_at).where(
    CONTACTS.c.channel == CHANNEL, CONTACTS.c.external_id == bindparam("chat_id"))


def store_webhooks(factory: sessionmaker[Session], bodies: list[dict[str, Any]], now: datetime,
                   conn: Connection | None = None) -> list[int]:
    """Store signed bodies in one transaction; their ids, in the order given (arrival order).

    ``conn``: a connection the caller holds (no checkout, and on PostgreSQL no liveness ping,
    per batch); else one from the pool. Every body answered 200 goes through here, so it runs
    on the driver (:class:`bot.storage.hotsql.Prepared`): on PostgreSQL the bodies, BEGIN and
    COMMIT are one round trip (it was three).
    """
    if conn is None:
        with factory.kw["bind"].connect() as fresh:
            return _store(fresh, bodies, now)
    return _store(conn, bodies, now)


def _store(conn: Connection, bodies: list[dict[str, Any]], now: datetime) -> list[int]:
    prep = _prepared(_STORE, conn.dialect)
    with roundtrips.transaction(conn) as (cur, own):
        with batch(cur):  # PostgreSQL: BEGIN, every body and COMMIT in one round trip
            if own:
                roundtrips.begin(cur)
            sent = [prep.send(cur, {"body": b, "received_at": now, "attempts": 0}) for b in bodies]
            if own:
                roundtrips.commit(cur)
        return [_id(prep.fetch(c)) for c in sent]  # each body's id, in the order given


def _id(row: tuple[Any, ...] | None) -> int:
    if row is None:
        raise RuntimeError("INSERT ... RETURNING returned no row")
    return int(row[0])


_PREPARED: dict[tuple[int, str], Prepared] = {}


def _prepared(stmt: Any, dialect: Any) -> Prepared:
    """A module-level statement of this file, compiled once per dialect."""
    key = (id(stmt), dialect.name)
    if key not in _PREPARED:
        _PREPARED[key] = Prepared(stmt, dialect)
    return _PREPARED[key]


class HeldConnection:
    """The intake thread's own connection, kept between batches; replaced after a failure."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.engine = factory.kw["bind"]
        self._conn: Connection | None = None

    def get(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def close(self) -> None:
        """Give it back (after a failure: a broken connection is not kept for the next batch)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


def store_webhook(factory: sessionmaker[Session], body: dict[str, Any], now: datetime) -> int:
    """One body (see :func:`store_webhooks`)."""
    return store_webhooks(factory, [body], now)[0]


def contact_info(factory: sessionmaker[Session], chat_id: str) -> tuple[str | None, datetime | None]:
    """(language, last inbound message time) of the resident behind a WhatsApp chat."""
    with factory.kw["bind"].connect() as conn:
        row = conn.execute(_CONTACT, {"chat_id": chat_id}).first()
    return (row[0], row[1]) if row else (None, None)


_LANGUAGE = select(CONTACTS.c.language).where(CONTACTS.c.channel == bindparam("channel"),
                                               CONTACTS.c.external_id == bindparam("chat"))
_LANGUAGE_SQL: dict[str, tuple[str, tuple[str, ...] | None]] = {}


def contact_language(factory: sessionmaker[Session], chat_id: str) -> str | None:
    """The language of a resident who has just written (their window is open by then).

    Read after every turn that answers, so it skips SQLAlchemy's execution machinery, which
    cost several times the query: the statement is compiled once per dialect and run on a
    pooled driver connection, outside a transaction on SQLite (no write lock for a read).
    """
    engine = factory.kw["bind"]
    dialect = engine.dialect
    if dialect.name not in _LANGUAGE_SQL:
        compiled = _LANGUAGE.compile(dialect=dialect)
        _LANGUAGE_SQL[dialect.name] = (compiled.string, tuple(compiled.positiontup or ())
                                       if compiled.positional else None)
    sql, order = _LANGUAGE_SQL[dialect.name]
    values = {"channel": CHANNEL, "chat": chat_id}
    conn = engine.raw_connection()
    try:
        with roundtrips.single_read(conn):  # on PostgreSQL no transaction: one round trip, not three
            cur = conn.cursor()
            cur.execute(sql, tuple(values[k] for k in order) if order is not None else values)
            row = cur.fetchone()
            cur.close()
    finally:
        conn.close()  # back to the pool
    return str(row[0]) if row and row[0] else None


@dataclass
class Settle:
    """Bookkeeping after replies went out, recorded for many turns in one transaction."""

    sent: list[tuple[int, str | None]] = field(default_factory=list)  # (outbox id, Meta's id)
    # Residents who wrote: their rows parked before that (outbox id below the bound) are due
    # now. Not the replies to that very message: one Meta refused with 131047 stays parked.
    released: dict[str, int | None] = field(default_factory=dict)  # None: no bound
    done: list[int] = field(default_factory=list)  # processed bodies, deleted

    def __bool__(self) -> bool:
        return bool(self.sent or self.released or self.done)


def settle(runtime: Runtime, work: Settle, now: datetime) -> None:
    """Rows sent, parked rows of residents who wrote made due, processed bodies deleted.

    One transaction: a body is deleted only together with the release its messages asked
    for (a crash before it: the body is processed again, its messages are duplicates then,
    and the release happens with that). It runs about once per message under load, so its
    statements are executemany calls on the driver (:class:`bot.storage.hotsql.Prepared`, the
    sent rows with the turn's own ``mark_sent``): through SQLAlchemy's execute the four cost
    about a millisecond of CPU, more than the turn's own writes.
    """
    dialect = runtime.engine.dialect
    with roundtrips.short_transaction(runtime.engine) as conn:  # one round trip on PostgreSQL
        cur = conn.connection.cursor()
        if work.sent:
            runtime.raw.mark_sent.many(
                cur, [{"row_id": i, "provider_id": p, "now": now} for i, p in work.sent])
        below = [{"chat": c, "below": b, "now": now} for c, b in work.released.items() if b is not None]
        every = [{"chat": c, "now": now} for c, b in work.released.items() if b is None]
        if below:
            _prepared(_RELEASE_BELOW, dialect).many(cur, below)
        if every:
            _prepared(_RELEASE_ALL, dialect).many(cur, every)
        if work.done:
            _prepared(_DONE, dialect).many(cur, [{"row_id": i} for i in work.done])


def load_webhook(factory: sessionmaker[Session], row_id: int) -> tuple[dict[str, Any], int] | None:
    """(body, attempts so far) of a stored webhook, or None when it was already processed."""
    with factory() as db:
        row = db.get(WhatsAppWebhook, row_id)
        return (dict(row.body), row.attempts) if row is not None else None


def finish_webhook(factory: sessionmaker[Session], row_id: int, error: str | None) -> None:
    """Done: forget the body (it holds personal data). Failed: keep it for the next try."""
    with factory() as db, db.begin():
        if error is None:
            db.execute(delete(WhatsAppWebhook).where(WhatsAppWebhook.id == row_id))
        else:
            db.execute(update(WhatsAppWebhook).where(WhatsAppWebhook.id == row_id)
                       .values(attempts=WhatsAppWebhook.attempts + 1, last_error=error[:2000]))


def stored_webhooks(factory: sessionmaker[Session], before: datetime) -> list[int]:
    with factory() as db:
        return list(db.scalars(
            select(WhatsAppWebhook.id)
            .where(WhatsAppWebhook.received_at <= before, WhatsAppWebhook.attempts < MAX_WEBHOOK_ATTEMPTS)
            .order_by(WhatsAppWebhook.id)
        ))


def webhook_backlog(conn: Connection) -> tuple[int, int]:
    """(bodies whose processing failed and will be retried, bodies given up on) for /metrics."""
    retry = case((WhatsAppWebhook.attempts.between(1, MAX_WEBHOOK_ATTEMPTS - 1), 1), else_=0)
    given_up = case((WhatsAppWebhook.attempts >= MAX_WEBHOOK_ATTEMPTS, 1), else_=0)
    row = conn.execute(select(func.coalesce(func.sum(retry), 0),
                              func.coalesce(func.sum(given_up), 0))).one()
    return int(row[0]), int(row[1])


def resolve_identity(factory: sessionmaker[Session], wa_id: str | None, user_id: str | None,
                     now: datetime) -> str:
    """The resident's key: their ``wa_id``; a BSUID seen with it maps to it, else stands alone."""
    if wa_id and not user_id:
        return wa_id  # the usual message: nothing to look up or remember
    with factory() as db, db.begin():
        if wa_id and user_id:
            known = db.get(WhatsAppIdentity, user_id)
            if known is None:
                db.add(WhatsAppIdentity(user_id=user_id, wa_id=wa_id, seen_at=now))
            else:
                known.wa_id, known.seen_at = wa_id, now
            return wa_id
        if wa_id:
            return wa_id
        assert user_id
        known = db.get(WhatsAppIdentity, user_id)
        return known.wa_id if known is not None else user_id


def photo_wanted(factory: sessionmaker[Session], wa_id: str | None, user_id: str | None,
                 now: datetime, timeout: timedelta) -> bool:
    """Whether the resident's conversation is at a question that takes a photo (a complaint's
    evidence). Anything else (a photo at the menu, before consent) is never downloaded."""
    with factory() as db:
        key = wa_id
        if not key and user_id:
            known = db.get(WhatsAppIdentity, user_id)
            key = known.wa_id if known is not None else user_id
        row = db.execute(
            select(Contact.consent_at, ConversationSession.state)
            .join(ConversationSession, ConversationSession.contact_id == Contact.id)
            .where(Contact.channel == CHANNEL, Contact.external_id == key)
        ).first()
    if row is None or row[0] is None:
        return False
    state = row[1] or {}
    try:
        fresh = now - datetime.fromisoformat(str(state.get("at"))) <= timeout
    except ValueError:
        fresh = False
    return fresh and (state.get("flow"), state.get("step")) in PHOTO_STEPS


def change_number(factory: sessionmaker[Session], incoming: Incoming, now: datetime) -> bool:
    """The resident has a new number (or business-scoped id): move the contact's key, so the
    same person keeps consent, conversation and history; unsent messages follow them.

    Returns False when there was nobody to move (unknown, or the new key is already someone).
    """
    change = incoming.changed
    assert change is not None
    with factory() as db, db.begin():
        old = incoming.wa_id
        if not old and incoming.user_id:
            known = db.get(WhatsAppIdentity, incoming.user_id)
            old = known.wa_id if known is not None else incoming.user_id
        new = change.wa_id or (change.user_id if old == incoming.user_id else None) or old
        number = change.wa_id or (old if old and is_phone(old) else None)
        if change.user_id and number:  # the new business-scoped id belongs to this number
            known = db.get(WhatsAppIdentity, change.user_id)
            if known is None:
                db.add(WhatsAppIdentity(user_id=change.user_id, wa_id=number, seen_at=now))
            else:
                known.wa_id, known.seen_at = number, now
        if not old or not new or new == old:
            return False
        contact = db.scalars(select(Contact).where(Contact.channel == CHANNEL, Contact.external_id == old)
                             .with_for_update()).first()
        taken = db.scalar(select(Contact.id).where(Contact.channel == CHANNEL, Contact.external_id == new))
        if contact is None or taken is not None:
            return False
        contact.external_id = new
        db.execute(update(OutboxMessage)
                   .where(OutboxMessage.channel == CHANNEL, OutboxMessage.chat_id == old,
                          OutboxMessage.status.in_(("pending", "waiting")))
                   .values(chat_id=new))
        db.execute(update(Case).where(Case.channel == CHANNEL, Case.chat_id == old).values(chat_id=new))
        db.execute(update(WhatsAppIdentity).where(WhatsAppIdentity.wa_id == old).values(wa_id=new))
        return True


def record_statuses(factory: sessionmaker[Session], statuses: list[Status], now: datetime,
                    template: bool = False) -> list[Status]:
    """Write delivery statuses on their outbox rows; returns failures whose row was not found."""
    missing: list[Status] = []
    with factory() as db, db.begin():
        for st in statuses:
            row = db.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.channel == CHANNEL, OutboxMessage.provider_message_id == st.message_id)
                .with_for_update()
            ).first()
            if row is None:
                if st.status == "failed":
                    missing.append(st)
                continue
            when = st.at or now
            if st.status in STATUS_RANK:
                if row.delivery_status != "failed" and (
                    STATUS_RANK[st.status] > STATUS_RANK.get(row.delivery_status or "", 0)
                ):
                    row.delivery_status = st.status
                if st.status in ("delivered", "read") and (
                    row.delivered_at is None or (st.status == "delivered" and when < row.delivered_at)
                ):
                    row.delivered_at = when  # "read" implies delivered; the real time wins
                if st.status == "read" and row.read_at is None:
                    row.read_at = when
            elif st.status == "failed":
                _record_failed(db, row, st, now, template)
    return missing


def _record_failed(db: Session, row: OutboxMessage, st: Status, now: datetime, template: bool) -> None:
    row.delivery_status = "failed"
    row.error_code = str(st.error_code) if st.error_code is not None else None
    reason = f"{st.error_code}: {st.error or 'failed'}"
    error = classify(st.error_code, 200, reason)
    if error.wait_for_contact and template and not row.payload.get("wa_template"):
        row.payload = {**row.payload, "wa_template": True}  # resend it as the template
        error = SendError(reason, retry_after=0.0)
    if row.status != "sent":
        return  # already retried or failed by someone else
    apply_failure(db, row, error, now)
