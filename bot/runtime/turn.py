"""The runtime: one inbound event -> one database transaction -> outbox rows to send.

It de-duplicates the delivery, locks the contact (serialising work per resident, also across
processes on PostgreSQL), runs the pure engine, applies every effect, and stores the new
session state, all in one transaction. Nothing is half-saved.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.instrumentation import manager_of_class

from bot import privacy
from bot.catalog import DEFAULT_ZONE, agency_quiet_hours, snapshot, valid_zone
from bot.desk import cases, staff
from bot.i18n import TEXTS
from bot.outbox import followups
from bot.outbox.store import SendPolicy
from bot.storage import hotsql, tickets
from bot.storage.models import (
    Agency,
    Case,
    Complaint,
    Contact,
    OutboxMessage,
    Service,
    StatusChange,
    SurveyResponse,
)
from flows import engine, triggers
from flows.catalog import Catalog
from flows.steps import Menu
from flows.types import (
    Call,
    Choice,
    Context,
    Effect,
    Event,
    RecordConsent,
    Reply,
    SetLanguage,
    StepResult,
    SurveyCancelled,
    Texts,
    UpsertSurvey,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
MAX_RESUMES = 8
RELAYED_KINDS = ("text", "photo", "location")  # what cases.relay_from_resident passes to staff


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Inbound:
    """An event from a channel, with who sent it and where to answer."""

    channel: str
    user_id: str
    chat_id: str
    event: Event
    event_key: str | None = None  # delivery id for de-duplication (update_id, wamid...)
    display_name: str | None = None
    username: str | None = None  # Telegram @username: never stored, scrubbed on erasure
    language_hint: str | None = None


def reply_payload(reply: Reply) -> dict[str, Any]:
    return {
        "text": reply.text,
        "choices": [{"id": c.id, "label": c.label, "nav": c.nav, "key": c.key} for c in reply.choices],
        "q": reply.q,
    }


def local_time(when: datetime | None, tz: str) -> str:
    if when is None:
        return "-"
    local = when.astimezone(ZoneInfo(tz if valid_zone(tz) else DEFAULT_ZONE))  # a bad row: WIB
    return f"{local:%d-%m-%Y %H:%M} {local.tzname()}"


class Runtime:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        clock: Clock = utcnow,
        texts: Texts = TEXTS,
        default_language: str = "id",
        session_timeout: timedelta = timedelta(minutes=30),
        survey_reminder: timedelta | None = timedelta(hours=3),
        catalog_ttl: timedelta = timedelta(seconds=60),
        data_dirs: tuple[Path, ...] = (),
        send_policy: SendPolicy | None = None,
    ) -> None:
        self.factory = factory
        self.send_policy = send_policy or SendPolicy()  # immediate replies fail like outbox sends
        self.clock = clock
        self.texts = texts
        self.default_language = default_language
        self.session_timeout = session_timeout
        self.catalog_ttl = catalog_ttl
        self.survey_reminder = survey_reminder  # None: no reminder for unfinished surveys
        self.data_dirs = data_dirs  # stored files scrubbed on erasure (digests)
        self.erasures: set[int] = set()  # erasure confirmations not yet sent (bot/privacy.py)
        self._catalog: Catalog | None = None
        self._catalog_at: datetime | None = None
        self._service_ids: dict[str, tuple[int, int]] | None = None
        self._quiet: dict[int, Callable[[datetime], datetime]] = {}
        self._rules: dict[int, str] = {}
        self._rules_at: datetime | None = None
        self.engine: Engine = factory.kw["bind"]
        self.postgres = factory.kw["bind"].dialect.name == "postgresql"
        self.sql = hotsql.for_dialect(factory.kw["bind"].dialect.name)
        self._raw: hotsql.RawSQL | None = None

    @property
    def raw(self) -> hotsql.RawSQL:
        """The hot statements compiled for this engine (once it has connected and knows its server)."""
        if self._raw is None:
            self._raw = hotsql.RawSQL(self.factory.kw["bind"].dialect)
        return self._raw

    # ------------------------------------------------------------------ catalog

    def catalog(self, db: Session | Callable[[], Session], now: datetime) -> Catalog:
        """The catalog, reloaded after ``catalog_ttl``. ``db`` may be a function giving a
        session, called only for a reload (most turns never need the ORM)."""
        if self._catalog is None or self._catalog_at is None or now - self._catalog_at > self.catalog_ttl:
            self._catalog = snapshot(db() if callable(db) else db)
            self._catalog_at = now
        return self._catalog

    def reload_catalog(self) -> None:
        self._catalog = None

    def service_ids(self, db: Session | Callable[[], Session], now: datetime,
                    ) -> dict[str, tuple[int, int]]:
        """Service code -> (service id, agency id), refreshed with the catalog."""
        if self._service_ids is None or self._catalog_at is None or now - self._catalog_at > self.catalog_ttl:
            db = db() if callable(db) else db
            self._service_ids = {
                code: (sid, aid)
                for code, sid, aid in db.execute(select(Service.code, Service.id, Service.agency_id))
            }
        return self._service_ids

    def survey_rule(self, db: Session | Callable[[], Session], agency_id: int) -> str:
        """The agency's survey escalation rule (cases.survey_rule), refreshed with the catalog."""
        if self._rules_at != self._catalog_at:
            self._rules, self._rules_at = {}, self._catalog_at
        if agency_id not in self._rules:
            agency = (db() if callable(db) else db).get(Agency, agency_id)
            assert agency is not None
            self._rules[agency_id] = cases.survey_rule(agency)
        return self._rules[agency_id]

    def agency_quiet(self, db: Session | Callable[[], Session], agency_id: int,
                     ) -> Callable[[datetime], datetime]:
        """Quiet-hours adjustment for an agency's scheduled messages (cached per agency)."""
        if agency_id not in self._quiet:
            agency = (db() if callable(db) else db).get(Agency, agency_id)
            assert agency is not None
            tz, start, end = agency_quiet_hours(agency).as_tuple()  # checked: bad rows fall back
            self._quiet[agency_id] = lambda when: followups.quiet_adjust(when, tz, start, end)
        return self._quiet[agency_id]

    # ------------------------------------------------------------------ entry point

    def handle(self, inbound: Inbound) -> list[OutboxMessage]:
        """Process one inbound event. Returns the committed replies to send now (status claimed)."""
        now = self.clock()
        # A Core transaction; an ORM session joins it only in turns that need one: the
        # session's own transaction bookkeeping cost as much as the rest of a short turn.
        work: _Work | None = None
        try:
            with self.engine.connect() as conn, conn.begin():
                cur = conn.connection.cursor()  # for hotsql.Prepared, in this transaction
                if inbound.event_key and not self._first_delivery(cur, inbound, now):
                    log.info("duplicate delivery %s/%s ignored", inbound.channel, inbound.event_key)
                    return []
                contact = self._contact(conn, cur, inbound, now)
                work = _Work(self, conn, inbound, contact, now, cur)
                work.run()
                work.persist_replies()
                for row in work.later:  # a staff room on another channel: its dispatcher sends it
                    if row.channel != inbound.channel:
                        row.status, row.claimed_at = "pending", None
                if work.orm is not None:
                    work.orm.flush()  # what the session holds is written before the commit
                if work.erased:
                    self.erasures.update(row.id for row in work.outbox)
                # staff-room rows last: their failure never holds a reply
                return work.outbox + [r for r in work.later if r.channel == inbound.channel]
        finally:
            if work is not None and work.orm is not None:
                work.orm.close()

    def settle_erasures(self, sent_ids: Iterable[int]) -> None:
        """After a send: an erasure confirmation that went out is deleted (bot/privacy.py).

        Costs nothing for other rows; rows sent by another path are purged by the scheduler.
        """
        done = self.erasures.intersection(sent_ids)
        if not done:
            return
        self.erasures -= done
        with self.factory() as db, db.begin():
            privacy.purge_sent(db)

    def _first_delivery(self, cur: Any, inbound: Inbound, now: datetime) -> bool:
        # RETURNING, not rowcount: psycopg reports rowcount -1 for this insert.
        row = self.raw.first_delivery.one(
            cur, {"channel": inbound.channel, "event_key": inbound.event_key, "received_at": now})
        return row is not None

    def _contact(self, conn: Connection, cur: Any, inbound: Inbound, now: datetime,
                 ) -> tuple[Any, ...]:
        """The resident's row (locked) and session state: see ``hotsql.RawSQL.contact_state``."""
        params = {"channel": inbound.channel, "external_id": inbound.user_id}
        find = self.raw.contact_state
        contact = find.one(cur, params)  # the usual case: one statement, no insert attempt
        if contact is None:
            insert = pg_insert if self.postgres else sqlite_insert
            hint = (inbound.language_hint or "").split("-")[0].lower()
            language = hint if hint in ("id", "en") else self.default_language
            conn.execute(
                insert(Contact)
                .values(
                    channel=inbound.channel,
                    external_id=inbound.user_id,
                    display_name=None,  # stored with the consent (RecordConsent)
                    language=language,
                    created_at=now,
                )
                .on_conflict_do_nothing()
            )
            contact = find.one(cur, params)
            assert contact is not None
        # They wrote to us, so they have not blocked the bot. A direct UPDATE, before the ORM
        # ever loads the contact (only turns that need it do): it then sees these values.
        self.raw.contact_seen.run(cur, {"cid": contact[0], "now": now})
        return contact


class _Work:
    """The state of one transaction: apply effects in order, resume the engine after calls."""

    def __init__(
        self, rt: Runtime, conn: Connection, inbound: Inbound, row: tuple[Any, ...], now: datetime,
        cur: Any,
    ) -> None:
        self.rt = rt
        self.conn = conn
        self.orm: Session | None = None
        self.inbound = inbound
        self.cur = cur
        # The contact row as read by Runtime._contact; the ORM object is loaded only by the
        # turns that need it (calls, cases, milestones): most turns never do.
        self.cid: int | None = row[0]
        self.language: str = row[1]
        self.consented = row[2] is not None
        self.has_session = row[4] is not None
        self.stored_state: dict[str, Any] | None = row[5]
        self._contact: Contact | None = None
        self.now = now
        # The name is personal data: stored only once the resident agreed (see RecordConsent).
        if inbound.display_name and self.consented and row[3] != inbound.display_name:
            assert self.contact is not None
            self.contact.display_name = inbound.display_name[:200]
        self.erased = False  # the resident's data was erased in this turn (bot/privacy.py)
        self.outbox: list[OutboxMessage] = []
        self.later: list[OutboxMessage] = []  # staff-room rows and notes after the replies (bot/cases.py)
        self.catalog = rt.catalog(lambda: self.db, now)

    @property
    def db(self) -> Session:
        """An ORM session in this turn's transaction, made on first use."""
        if self.orm is None:
            self.orm = Session(bind=self.conn, expire_on_commit=False,
                               join_transaction_mode="rollback_only")
        return self.orm

    @property
    def contact(self) -> Contact | None:
        """The resident as an ORM object, loaded on first use; None once they deleted their data."""
        if self._contact is None and self.cid is not None:
            self._contact = self.db.get(Contact, self.cid)
        return self._contact

    @contact.setter
    def contact(self, value: Contact | None) -> None:
        self._contact = value
        if value is None:
            self.cid = None

    def context(self) -> Context:
        c = self._contact
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
        if event.kind == "choice" and (event.choice or "").startswith(cases.PREFIX):
            # A rating of how staff handled a case: thank them in the chat, then show where
            # they are (the question they were at, or the menu) instead of leaving them there.
            assert self.contact is not None
            self.reply(Reply(cases.rate_choice(self.db, self.contact, event.choice or "", self.now)))
            event = Event("ask", event.event_id)
        elif self.relay_to_staff(state):
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
        raw = self.rt.raw
        params = {"cid": self.cid, "state": result.state, "at": self.now}
        if not self.has_session:  # the contact row is locked, so nobody else inserts it meanwhile
            raw.session_insert.run(self.cur,
                                   {"contact_id": self.cid, "state": {}, "updated_at": self.now})
        raw.session_update.run(self.cur, params)

    def relay_to_staff(self, state: dict[str, Any]) -> bool:
        """While staff handle a case, messages typed at the menu go to them (bot/cases.py).

        Commands and buttons still reach the engine, so /menu and /batal always work.
        """
        assert self.cid is not None
        ev = self.inbound.event
        text = engine.clean_text(ev.text) if ev.kind == "text" else ""
        if ev.kind == "text" and (not text or engine.parse_command(text) is not None):
            return False
        idle = True
        if state.get("flow") not in (None, "menu") or state.get("wait"):
            try:
                idle = self.now - datetime.fromisoformat(str(state.get("at"))) > self.rt.session_timeout
            except ValueError:
                idle = False
        if not idle or ev.kind not in RELAYED_KINDS or self.picks_from_menu(state, text):
            return False
        assert self.contact is not None
        relayed = cases.relay_from_resident(self.db, self.contact, ev, text, self.now)
        if relayed is None:
            return False
        if relayed.notice:
            self.reply(Reply(relayed.notice))
        self.later.extend(relayed.rows)
        return True

    def picks_from_menu(self, state: dict[str, Any], text: str) -> bool:
        """The resident was just shown the menu (/menu) and typed one of its choices ("1",
        "Nilai layanan"): that is for the bot, as a pressed button would be, not for staff."""
        if not text or state.get("flow") not in (None, "menu"):
            return False
        try:
            fresh = self.now - datetime.fromisoformat(str(state.get("at"))) <= self.rt.session_timeout
        except ValueError:
            return False
        if not fresh:
            return False
        items = Menu.ITEMS
        choices = tuple(Choice(item, self.rt.texts(self.language, f"menu.{item}"), key=str(n))
                        for n, item in enumerate(items, start=1))
        return engine.match_choice(text, choices) is not None

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
            self.language = effect.language
            if self._contact is not None:
                self._contact.language = effect.language
            else:  # no ORM object this turn: a direct UPDATE, which a later load sees
                self.rt.raw.contact_language.run(self.cur, {"cid": self.cid, "language": effect.language})
        elif isinstance(effect, RecordConsent) and self.cid is not None:
            self.consented = True
            contact = self.contact  # once per resident: the ORM is fine here
            assert contact is not None
            contact.consent_at = self.now
            if self.inbound.display_name:
                contact.display_name = self.inbound.display_name[:200]
        elif isinstance(effect, UpsertSurvey):
            self.upsert_survey(effect)
        elif isinstance(effect, SurveyCancelled) and self.contact is not None:
            conn = self.db.connection()
            key = f"{self.contact.id}:{effect.key}"
            response_id = conn.execute(self.rt.sql.response_find, {"key": key}).scalar()
            if response_id is not None:
                conn.execute(self.rt.sql.reminder_cancel, {"key": f"survey_reminder:{response_id}"})

    def reply(self, reply: Reply) -> None:
        """Queue a reply; :meth:`persist_replies` writes them."""
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
            self._erasure_row(row)
        self.outbox.append(row)

    def persist_replies(self) -> None:
        """Insert this turn's replies (not yet in the session) in order.

        A unit-of-work flush per reply cost more than the rest of the turn together.
        """
        insert_reply = self.rt.raw.reply_insert
        for row in (*self.outbox, *self.later):
            if inspect(row).transient:  # one statement each, straight to the driver: cheaper
                row.id = insert_reply.scalar(self.cur, {c: getattr(row, c) for c in hotsql.REPLY_COLUMNS})

    # ------------------------------------------------------------------ surveys

    def upsert_survey(self, eff: UpsertSurvey) -> None:
        """Store the survey so far: the hottest write of all (one per answer), so it is Core SQL.

        The engine sends every answer given so far; elements undone with "back" disappear.
        """
        assert self.cid is not None
        service_id, agency_id = self.rt.service_ids(lambda: self.db, self.now)[eff.service]
        raw, cur = self.rt.raw, self.cur
        key = f"{self.cid}:{eff.key}"
        response_id = raw.response_find.scalar(cur, {"key": key})
        created = response_id is None
        if response_id is None:
            response_id = raw.response_insert.scalar(
                cur,
                {"response_key": key, "contact_id": self.cid, "agency_id": agency_id,
                 "service_id": service_id, "channel": self.inbound.channel, "status": "partial",
                 "started_at": self.now, "updated_at": self.now},
            )
        if eff.answers:
            raw.answers_upsert.many(
                cur,
                [{"response_id": response_id, "agency_id": agency_id, "service_id": service_id,
                  "element": element, "score": score, "answered_at": self.now}
                 for element, score in eff.answers.items()],
            )
        raw.answers_prune.run(cur, {"rid": response_id, "n": len(eff.answers)})
        if eff.status == "complete":
            raw.response_complete.run(
                cur, {"rid": response_id, "at": self.now, "suggestion": eff.suggestion})
        else:
            raw.response_update.run(cur, {"rid": response_id, "status": eff.status, "at": self.now})
        if eff.status == "complete" and not self.may_escalate(eff.answers, agency_id):
            # No case to open, so no ORM objects to load: just cancel the reminder.
            if self.rt.survey_reminder is not None:
                raw.reminder_cancel.run(cur, {"key": f"survey_reminder:{response_id}"})
        elif eff.status == "complete":
            resp = self.db.get(SurveyResponse, response_id, populate_existing=True)
            assert resp is not None
            self.survey_milestone(resp, created)
        elif created and self.rt.survey_reminder is not None:
            self.first_answer(response_id, agency_id, eff.service)
        elif self.rt.survey_reminder is not None:
            due = self.rt.agency_quiet(lambda: self.db, agency_id)(self.now + self.rt.survey_reminder)
            raw.reminder_push.run(cur, {"key": f"survey_reminder:{response_id}", "due": due})

    def may_escalate(self, answers: dict[int, int | None], agency_id: int) -> bool:
        """Whether cases.on_survey could open a case for this finished survey: the same test
        it makes (triggers.low_survey under the agency's rule), with the rule cached."""
        rule = self.rt.survey_rule(lambda: self.db, agency_id)
        return bool(triggers.low_survey(answers, rule))

    def first_answer(self, response_id: int, agency_id: int, service: str) -> None:
        """followups.survey_reminder for a survey just started, as one INSERT.

        Nothing needs looking up (the catalog has the service's name, the runtime the agency's
        quiet hours), so the ORM round trips of the general path are skipped.
        """
        assert self.rt.survey_reminder is not None and self.cid is not None
        due = self.rt.agency_quiet(lambda: self.db, agency_id)(self.now + self.rt.survey_reminder)
        svc = self.catalog.service(service)
        lang = self._contact.language if self._contact is not None else self.language
        key = f"survey_reminder:{response_id}"
        created = self.rt.raw.reminder_insert.one(self.cur, {
            "contact_id": self.cid, "channel": self.inbound.channel, "chat_id": self.inbound.chat_id,
            "kind": followups.KIND_SURVEY, "status": "pending", "due_at": due, "attempts": 0,
            "payload": followups.survey_reminder_payload(lang, svc.name if svc else service, response_id),
            "created_at": self.now, "dedupe_key": key, "agency_id": agency_id, "urgent": False,
            "ref": f"survey:{response_id}", "uncertain": 0,
        })
        if created is None:  # the key exists already: push it back, as the general path would
            self.rt.raw.reminder_push.run(self.cur, {"key": key, "due": due})

    def survey_milestone(self, resp: SurveyResponse, created: bool) -> None:
        """First answer (schedule the reminder) or completion (cases, cancel the reminder)."""
        assert self.contact is not None
        if resp.status == "complete":
            opened = cases.on_survey(self.db, resp, self.contact, self.now,
                                     chat_id=self.inbound.chat_id, channel=self.inbound.channel)
            if opened is not None and opened.created:
                # In order: the engine says "thank you" before the final save, so this notice
                # lands between the thanks and the menu.
                self.reply(Reply(self.rt.texts(self.contact.language, "case.survey_escalated",
                                               ticket=opened.case.ticket)))
                self.later.extend(opened.rows)
        if self.rt.survey_reminder is not None and resp.status == "complete":
            # What followups.survey_reminder does for a finished survey, as one statement.
            self.db.flush()
            self.rt.raw.reminder_cancel.run(self.cur, {"key": f"survey_reminder:{resp.id}"})
        elif self.rt.survey_reminder is not None:
            followups.survey_reminder(
                self.db, resp, self.contact, self.now, self.rt.survey_reminder,
                chat_id=self.inbound.chat_id, channel=self.inbound.channel,
            )

    # ------------------------------------------------------------------ calls

    def call(self, call: Call) -> dict[str, Any]:
        handler = getattr(self, f"call_{call.name}", None)
        if handler is None:
            raise ValueError(f"unknown engine call {call.name!r}")
        result: dict[str, Any] = handler(**call.args)
        return result

    def call_create_complaint(self, key: str, service: str, **data: Any) -> dict[str, Any]:
        assert self.contact is not None
        source_key = f"{self.contact.id}:{key}"
        existing = self.db.scalars(select(Complaint).where(Complaint.source_key == source_key)).first()
        if existing is not None:  # the same confirmation pressed twice
            return {"ticket": existing.ticket}
        svc = self.db.scalars(select(Service).where(Service.code == service)).one()
        ticket = tickets.unique_ticket(self.db)
        location = data.get("location")
        complaint = Complaint(
            ticket=ticket,
            contact_id=self.contact.id,
            agency_id=svc.agency_id,
            service_id=svc.id,
            channel=self.inbound.channel,
            description=data["description"],
            category=data["category"],
            occurred=data.get("occurred"),
            attachments={"photos": data.get("photos") or []},
            latitude=location[0] if location else None,
            longitude=location[1] if location else None,
            location_text=data.get("location_text"),
            confidential=bool(data.get("confidential")),
            contact_consent=bool(data.get("contact_ok")),
            reporter_name=self.contact.display_name,
            status="new",
            created_at=self.now,
            updated_at=self.now,
            source_key=source_key,
        )
        self.db.add(complaint)
        self.db.flush()
        self.db.add(
            StatusChange(
                complaint_id=complaint.id, from_status=None, to_status="new",
                actor="resident", reason="filed", at=self.now,
            )
        )
        followups.schedule_checkin(
            self.db, complaint, self.contact, self.now,
            chat_id=self.inbound.chat_id, channel=self.inbound.channel,
        )
        opened = cases.on_complaint(self.db, complaint, self.contact, self.now,
                                    chat_id=self.inbound.chat_id, channel=self.inbound.channel)
        if opened is not None:  # serious category or bribery words: straight to staff
            self.later.extend(opened.rows)
            return {"ticket": ticket, "escalated": True}
        return {"ticket": ticket}

    def call_followup(self, kind: str, id: int, answer: str) -> dict[str, Any]:
        """A follow-up button (check-in, rating, survey reminder): bot/followups.py checks ownership."""
        assert self.contact is not None
        result = followups.answer(
            self.db, self.contact, self.now, kind, id, answer,
            chat_id=self.inbound.chat_id, channel=self.inbound.channel,
        )
        if result.get("ok") and kind == "c" and answer == "no":  # not resolved: back to staff
            complaint = self.db.get(Complaint, id)
            if complaint is not None:
                self.later.extend(cases.on_not_resolved(self.db, complaint, self.contact, self.now).rows)
        return result

    def call_request_person(self, agency: str) -> dict[str, Any]:
        """The resident asked for a person: open (or find) their case (bot/cases.py)."""
        assert self.contact is not None
        result, rows = cases.request_person(
            self.db, self.contact, agency, self.now, self.inbound.event.event_id,
            chat_id=self.inbound.chat_id, channel=self.inbound.channel,
        )
        self.later.extend(rows)
        return result

    def call_register_staff(self, code: str) -> dict[str, Any]:
        """/daftar <code>: redeem a staff invite (bot/staff.py); the answer never echoes the code."""
        assert self.contact is not None
        outcome = staff.register(self.db, self.contact, self.inbound.chat_id, code, self.now)
        if outcome.ok and self.inbound.display_name:  # colleagues see who took a case
            self.contact.display_name = self.inbound.display_name[:200]
        return {"ok": outcome.ok, "reason": outcome.reason, "agency": outcome.agency, "role": outcome.role}

    def call_my_tickets(self) -> dict[str, Any]:
        assert self.contact is not None
        rows = self.db.scalars(
            select(Complaint.ticket)
            .where(Complaint.contact_id == self.contact.id)
            .order_by(Complaint.created_at.desc(), Complaint.id.desc())
            .limit(5)
        ).all()
        return {"tickets": list(rows)}

    def call_lookup_ticket(self, ticket: str) -> dict[str, Any]:
        assert self.contact is not None
        row = self.db.execute(
            select(Complaint, Service.code, Agency.timezone)
            .join(Service, Complaint.service_id == Service.id)
            .join(Agency, Complaint.agency_id == Agency.id)
            .where(Complaint.ticket == ticket, Complaint.contact_id == self.contact.id)
        ).first()
        if row is None:
            return self._lookup_case(ticket)
        complaint, code, tz = row
        return {
            "found": True,
            "ticket": complaint.ticket,
            "service": code,
            "status": complaint.status,
            "created": local_time(complaint.created_at, tz),
            "updated": local_time(complaint.updated_at, tz),
        }

    def _lookup_case(self, ticket: str) -> dict[str, Any]:
        """A case without a complaint ("Bicara dengan petugas", a low survey) was given a number
        in the same form: the resident can check it like a ticket."""
        assert self.contact is not None
        row = self.db.execute(
            select(Case, Agency.timezone)
            .join(Agency, Case.agency_id == Agency.id)
            .where(Case.ticket == ticket, Case.contact_id == self.contact.id)
            .order_by(Case.id.desc())
        ).first()
        if row is None:  # unknown and someone else's look the same
            return {"found": False, "ticket": ticket}
        case, tz = row
        code = self.db.scalar(select(Service.code).where(Service.id == case.service_id)) or ""
        return {
            "found": True,
            "ticket": case.ticket,
            "service": code,
            "status": case.status,
            "created": local_time(case.created_at, tz),
            "updated": local_time(case.updated_at, tz),
        }

    def call_my_data(self) -> dict[str, Any]:
        assert self.contact is not None
        c = self.contact
        surveys = self.db.scalar(
            select(func.count()).select_from(SurveyResponse).where(SurveyResponse.contact_id == c.id)
        )
        tickets_ = self.db.scalars(
            select(Complaint.ticket).where(Complaint.contact_id == c.id).order_by(Complaint.id)
        ).all()
        return {
            "channel": c.channel,
            "name": c.display_name,
            "consent": local_time(c.consent_at, "Asia/Jakarta"),
            "surveys": surveys or 0,
            "complaints": len(tickets_),
            "tickets": list(tickets_)[-10:],
        }

    def call_delete_my_data(self) -> dict[str, Any]:
        """UU 27/2022 erasure (bot/privacy.py): complaints, cases and survey scores stay for the
        agency, anonymised and scrubbed; everything else about the person goes."""
        assert self.contact is not None
        erased = privacy.erase_contact(
            self.db, self.contact, self.now, names=self.channel_names(),
            files=self.rt.data_dirs,
        )
        self.forgotten()
        return {"complaints_kept": erased.complaints}

    def call_decline_consent(self) -> dict[str, Any]:
        """The resident said no before giving anything: nothing of them is kept, not even the
        contact row. Their next message starts over with the consent question."""
        assert self.contact is not None
        privacy.forget_unconsented(self.db, self.contact)
        self.forgotten()
        return {}

    def channel_names(self) -> list[str]:
        """What the channel calls the resident (profile name, username): scrubbed as names."""
        return [n for n in (self.inbound.display_name, self.inbound.username) if n]

    def forgotten(self) -> None:
        """After erasure: this turn's replies still go out, as rows deleted once sent."""
        self.erased = True
        for row in self.outbox:
            self._erasure_row(row)
        self.db.flush()
        self.contact = None

    def _erasure_row(self, row: OutboxMessage) -> None:
        row.contact_id = None
        row.kind = privacy.ERASURE_KIND
        row.ref = privacy.ERASURE_REF
        row.payload = {**row.payload, "erasure": True}


_OUTBOX_CLASS = manager_of_class(OutboxMessage)


def _quiet_row(**values: Any) -> OutboxMessage:
    """A transient outbox row whose values are set without the ORM's attribute events.

    Nothing tracks a reply's changes (it is inserted by ``persist_replies``), and the dozen
    event-firing assignments of the constructor cost more than building its payload.
    """
    row: OutboxMessage = _OUTBOX_CLASS.new_instance()
    row.__dict__.update(values)
    return row


def new_event_id() -> str:
    return uuid.uuid4().hex
