"""One turn inside the resident's transaction: run the engine, apply its effects in order,
answer its calls and resume it, then store the session state.

:class:`Turn` holds the turn's state and the engine loop; what each effect or call does to
stored rows lives with its concern (identity, surveys, complaints, relay, status, erasure),
as functions of the turn, so a turn builds no other objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.instrumentation import manager_of_class

from bot.desk import rating, states
from bot.runtime import complaints, erasure, identity, plan, relay, status, surveys, webtickets
from bot.runtime.types import Inbound, reply_payload
from bot.storage import hotsql, roundtrips
from bot.storage.models import Contact, OutboxMessage
from flows import engine
from flows.machine.types import (
    Call,
    Context,
    Effect,
    Event,
    RecordConsent,
    Reply,
    SaveProfile,
    SetLanguage,
    StepResult,
    SurveyCancelled,
    UpsertSurvey,
)

if TYPE_CHECKING:
    from bot.runtime.facade import Runtime

log = logging.getLogger(__name__)
MAX_RESUMES = 8
REPLIES_PER_INSERT = 16  # a turn's replies per INSERT statement (each count compiled once)

# The engine's calls: name -> what answers it (called with the turn and the call's arguments).
CALLS: dict[str, Callable[..., dict[str, Any]]] = {
    "create_complaint": complaints.create_complaint,
    "followup": complaints.followup,
    "request_person": relay.request_person,
    "register_staff": relay.register_staff,
    "desk_login": relay.desk_login,
    "plan_open": plan.plan_open,
    "plan_save": plan.plan_save,
    "plan_update": plan.plan_update,
    "my_tickets": status.my_tickets,
    "lookup_ticket": status.lookup_ticket,
    "my_data": erasure.my_data,
    "survey_check": surveys.survey_check,
    "delete_my_data": erasure.delete_my_data,
    "decline_consent": erasure.decline_consent,
    "claim_web": webtickets.claim_web,
}


class Turn:
    """The state of one transaction: apply effects in order, resume the engine after calls."""

    def __init__(
        self, rt: Runtime, conn: Connection, inbound: Inbound, row: tuple[Any, ...], now: datetime,
        cur: Any,
    ) -> None:
        self.rt = rt
        self.conn = conn
        self.orm: Session | None = None
        self.deferred: list[Callable[[], None]] = []  # see defer()
        self.inbound = inbound
        self.cur = cur
        # The contact row as read by identity.arrive; the ORM object is loaded only by the
        # turns that need it (calls, cases, milestones): most turns never do.
        self.cid: int | None = row[0]
        self.language: str = row[1]
        self.consented = row[2] is not None
        self.has_session = row[4] is not None
        self.stored_state: dict[str, Any] | None = row[5]
        self.profile_at: datetime | None = row[8]  # hotsql.CONTACT_EXTRA: last seen, unreachable, profile
        self.loaded_contact: Contact | None = None  # the ORM object, if this turn loaded it
        self.now = now
        # The name is personal data: stored only once the resident agreed (see RecordConsent).
        if inbound.display_name and self.consented and row[3] != inbound.display_name:
            assert self.contact is not None
            self.contact.display_name = inbound.display_name[:200]
        self.erased = False  # the resident's data was erased in this turn (bot/privacy/erasure.py)
        self.outbox: list[OutboxMessage] = []
        self.later: list[OutboxMessage] = []  # staff-room rows and notes after the replies (bot/desk/)
        self.state: dict[str, Any] | None = None  # the session state to store, once the engine ran
        self.catalog = rt.catalog(lambda: self.db, now)

    def defer(self, write: Callable[[], None]) -> None:
        """Statements that read nothing back, run by :meth:`persist` in its batch (one round
        trip on PostgreSQL), or earlier by :meth:`write_deferred` before anything may read
        what they write: the ORM, an engine call, another survey answer."""
        self.deferred.append(write)

    def write_deferred(self) -> None:
        if self.deferred:
            writes, self.deferred = self.deferred, []
            with hotsql.batch(self.cur):
                for write in writes:
                    write()

    @property
    def db(self) -> Session:
        """An ORM session in this turn's transaction, made on first use."""
        self.write_deferred()  # what the ORM reads is written first
        if self.orm is None:
            self.orm = Session(bind=self.conn, expire_on_commit=False,
                               join_transaction_mode="rollback_only")
        return self.orm

    @property
    def contact(self) -> Contact | None:
        """The resident as an ORM object, loaded on first use; None once they deleted their data."""
        if self.loaded_contact is None and self.cid is not None:
            self.loaded_contact = self.db.get(Contact, self.cid)
        return self.loaded_contact

    @contact.setter
    def contact(self, value: Contact | None) -> None:
        self.loaded_contact = value
        if value is None:
            self.cid = None

    def context(self) -> Context:
        c = self.loaded_contact
        if c is not None:
            language, consented = c.language, c.consent_at is not None
        elif self.cid is not None:
            language, consented = self.language, self.consented
        else:
            language, consented = self.rt.default_language, False
        return Context(
            now=self.now,
            catalog=self.catalog,
            texts=self.rt.texts,
            language=language,
            consented=consented,
            timeout=self.rt.session_timeout,
            channel=self.inbound.channel,
        )

    def run(self) -> None:
        assert self.cid is not None
        stored = self.stored_state
        state: dict[str, Any] = dict(stored) if stored is not None else {}
        event = self.inbound.event
        if event.kind == "choice" and (event.choice or "").startswith(states.PREFIX):
            # A rating of how staff handled a case: thank them in the chat, then show where
            # they are (the question they were at, or the menu) instead of leaving them there.
            assert self.contact is not None
            thanks, rows = rating.rate_choice(self.db, self.contact, event.choice or "", self.now)
            self.reply(Reply(thanks))
            self.later.extend(rows)  # the rating in the case's topic (and to heads when low)
            event = Event("ask", event.event_id)
        elif relay.relay_to_staff(self, state):
            return  # a human handles this resident's case: the engine steps aside
        result = engine.step(state, event, self.context(), owned=True)
        for _ in range(MAX_RESUMES):
            call = self.apply(result)
            if call is None:
                break
            answer = self.call(call)
            answer["call"] = call.name
            resume = Event(kind="result", event_id=self.inbound.event.event_id, result=answer)
            result = engine.step(result.state, resume, self.context(), owned=True)
        else:  # pragma: no cover - a flow bug; say sorry instead of looping
            log.error("engine kept calling; giving up on event %s", self.inbound.event_key)
            self.reply(Reply(self.rt.texts(self.rt.default_language, "error.internal")))
        if self.cid is None:
            return  # the resident deleted their data: no session to keep
        if self.orm is not None:
            self.orm.flush()  # ORM changes of this turn first, in the order they were made
        self.state = result.state  # stored by persist(), with the replies

    def apply(self, result: StepResult) -> Call | None:
        call: Call | None = None
        for effect in result.effects:
            if isinstance(effect, Call):
                call = effect
            else:
                self.apply_one(effect)
        return call

    def apply_one(self, effect: Effect) -> None:
        if isinstance(effect, Reply):
            self.reply(effect)
        elif isinstance(effect, SetLanguage) and self.cid is not None:
            identity.set_language(self, effect.language)
        elif isinstance(effect, RecordConsent) and self.cid is not None:
            identity.record_consent(self)
        elif isinstance(effect, UpsertSurvey):
            surveys.upsert_survey(self, effect)
        elif isinstance(effect, SurveyCancelled) and self.contact is not None:
            surveys.survey_cancelled(self, effect)
        elif isinstance(effect, SaveProfile) and self.cid is not None:
            surveys.save_profile(self, effect)

    def call(self, call: Call) -> dict[str, Any]:
        self.write_deferred()  # a call may read or delete what they write
        handler = CALLS.get(call.name)
        if handler is None:
            raise ValueError(f"unknown engine call {call.name!r}")
        result: dict[str, Any] = handler(self, **call.args)
        return result

    # ------------------------------------------------------------------ outbox replies

    def reply(self, reply: Reply) -> None:
        """Queue a reply; :meth:`persist` writes them."""
        row = _quiet_row(
            contact_id=self.cid,
            channel=self.inbound.channel,
            chat_id=self.inbound.chat_id,
            kind="reply",
            payload=reply_payload(reply),
            status="claimed",  # this process sends it right after commit
            due_at=self.now,
            attempts=0,
            claimed_at=self.now,
            created_at=self.now,
            urgent=True,
            uncertain=0,
            ref=None,
        )
        if self.erased:
            erasure.erasure_row(row)
        self.outbox.append(row)

    def persist(self, commit: bool = False) -> None:
        """Store the session state and insert this turn's replies (not yet in the session), in
        order, together: one round trip on PostgreSQL (``commit``: with the COMMIT, see
        ``roundtrips.own_transaction``).

        A unit-of-work flush per reply cost more than the rest of the turn together; the
        replies go in one INSERT (``hotsql.RawSQL.replies``). Its RETURNING ids are sorted,
        not matched by position: the rows of one INSERT take rising ids in the order of its
        VALUES on both databases, while the order RETURNING lists them in is not promised.
        """
        raw, cur = self.rt.raw, self.cur
        rows = [row for row in (*self.outbox, *self.later) if inspect(row).transient]
        inserted: list[Any] = []
        with hotsql.batch(cur):
            writes, self.deferred = self.deferred, []
            for write in writes:
                write()
            if self.state is not None and self.cid is not None:
                if not self.has_session:  # the contact row is locked: nobody inserts it meanwhile
                    raw.session_insert.run(cur, {"contact_id": self.cid, "state": {},
                                                 "updated_at": self.now})
                raw.session_update.run(cur, {"cid": self.cid, "state": self.state, "at": self.now})
            for start in range(0, len(rows), REPLIES_PER_INSERT):
                chunk = rows[start:start + REPLIES_PER_INSERT]
                values = {f"{c}_{i}": getattr(row, c)
                          for i, row in enumerate(chunk) for c in hotsql.REPLY_COLUMNS}
                inserted.append((chunk, raw.replies(len(chunk)).send(cur, values)))
            if commit:
                roundtrips.commit(cur)
        for chunk, result in inserted:
            ids = sorted(r[0] for r in result.fetchall())
            if len(ids) != len(chunk):  # (with ``commit`` the turn is stored by now: never seen)
                raise RuntimeError(f"{len(chunk)} replies inserted, {len(ids)} ids returned")
            for row, row_id in zip(chunk, ids, strict=True):
                row.id = row_id


_OUTBOX_CLASS = manager_of_class(OutboxMessage)


def _quiet_row(**values: Any) -> OutboxMessage:
    """A transient outbox row whose values are set without the ORM's attribute events.

    Nothing tracks a reply's changes (it is inserted by ``persist``), and the dozen
    event-firing assignments of the constructor cost more than building its payload.
    """
    row: OutboxMessage = _OUTBOX_CLASS.new_instance()
    row.__dict__.update(values)
    return row
