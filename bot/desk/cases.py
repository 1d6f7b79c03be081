"""Cases in human review: opening them, the state machine, relaying messages, SLA checks.

Everything here runs inside the caller's database transaction and returns outbox rows; no
network calls. A case is opened once per source (``source_key``: ``complaint:12``,
``survey:7``, ``person:3:<event>``): a retried delivery or a second trigger on the same
complaint finds the existing case instead of opening another.

States: new -> open (taken) -> pending (waiting for the resident) -> resolved -> closed, and
reopened (a follow-up answered "not resolved"). Every change is a :class:`CaseEvent` row
(who, when, from, to, why), and a case that belongs to a complaint keeps the complaint's
status in step through :func:`bot.outbox.followups.notify_status_change`, which tells the resident.

Staff-room messages carry ``payload["case"]`` (id and topic name); the Telegram staff sender
(bot/channels/staff.py) creates the case's forum topic on first use and sends into it.
Resident text is sent as plain text (no parse mode), so it is shown literally.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.catalog import agency_zone
from bot.desk.sla import SlaPolicy, policy_from_settings
from bot.i18n import TEXTS
from bot.outbox import followups
from bot.storage import tickets
from bot.storage.models import (
    ID_LEN,
    Agency,
    Case,
    CaseEvent,
    Complaint,
    Contact,
    OutboxMessage,
    Service,
    StaffMember,
    StaffRoom,
    SurveyResponse,
)
from flows.helpers import triggers
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Event

log = logging.getLogger(__name__)

ACTIVE = ("new", "open", "pending", "reopened")
STAFF_LANG = "id"  # the staff room is shared: one language for its messages
STAFF_ROLES = ("staff", "admin", "head")
PREFIX = "cs:"
ACTIONS = ("take", "pending", "resolve", "head", "note")
# action -> (statuses it may be applied in, new status; None keeps the status)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "take": (("new", "reopened", "pending"), "open"),
    "pending": (("open", "reopened"), "pending"),
    "resolve": (("new", "open", "pending", "reopened"), "resolved"),
    "head": (ACTIVE, None),
    "note": ((*ACTIVE, "resolved", "closed"), None),
}
NOTICE_EVERY = timedelta(minutes=30)  # remind the resident that a human reads their messages
KIND_CASE_RATING = "case_rating"
KIND_STAFF = "case_staff"
MAX_QUEUE = 20


def local_time(when: datetime | None, tz: str) -> str:
    """A UTC instant as the agency's wall clock, e.g. "30-11-2026 15:00 WIB"."""
    if when is None:
        return "-"
    local = when.astimezone(ZoneInfo(tz))
    return f"{local:%d-%m-%Y %H:%M} {local.tzname()}"


def texts(key: str, lang: str = STAFF_LANG, **params: Any) -> str:
    return TEXTS(lang, key, **params)


def policy(agency: Agency) -> SlaPolicy:
    """The agency's SLA; a broken setting falls back to the defaults (and is logged)."""
    try:
        return policy_from_settings(agency_zone(agency), agency.settings)
    except (ValueError, TypeError, AttributeError) as exc:
        log.error("agency %s: bad SLA settings (%s); using the defaults", agency.slug, exc)
        return policy_from_settings(agency_zone(agency), {})


def callback(action: str, case_id: int, extra: str = "") -> str:
    return f"{PREFIX}{action}:{case_id}" + (f":{extra}" if extra else "")


def parse_callback(data: str | None) -> tuple[str, int, str] | None:
    """``cs:take:12`` -> ("take", 12, ""); ``cs:rate:12:5`` -> ("rate", 12, "5"); else None."""
    if not data or not data.startswith(PREFIX) or len(data) > 64:
        return None
    parts = data.split(":")
    if len(parts) not in (3, 4) or not parts[2].isdigit():
        return None
    action = parts[1]
    if action not in (*ACTIONS, "rate"):
        return None
    return action, int(parts[2]), parts[3] if len(parts) == 4 else ""


# ---------------------------------------------------------------- rows


def _row(
    db: Session, *, channel: str, chat_id: str, payload: dict[str, Any], now: datetime,
    contact_id: int | None = None, agency_id: int | None = None, ref: str | None = None,
    kind: str = KIND_STAFF, immediate: bool = True,
) -> OutboxMessage:
    """An outbox row: ``immediate`` ones are sent by the caller right after commit."""
    row = OutboxMessage(
        contact_id=contact_id, channel=channel, chat_id=chat_id, kind=kind, payload=payload,
        status="claimed" if immediate else "pending", due_at=now,
        claimed_at=now if immediate else None, created_at=now, attempts=0,
        agency_id=agency_id, urgent=True, ref=ref, uncertain=0,
    )
    db.add(row)
    return row


def _room(db: Session, agency_id: int) -> StaffRoom | None:
    return db.scalars(select(StaffRoom).where(StaffRoom.agency_id == agency_id)).first()


def topic_name(case: Case, db: Session) -> str:
    service = db.get(Service, case.service_id) if case.service_id else None
    what = service.name if service else texts(f"case.trigger.{case.trigger}")
    return f"{case.ticket} · {what}"[:128]


def to_room(
    db: Session, case: Case, text: str, now: datetime, *, choices: list[dict[str, Any]] | None = None,
    photo: str | None = None, immediate: bool = True, card: bool = False,
) -> OutboxMessage | None:
    """A message into the case's topic; None while the agency has no staff room (the case queues)."""
    room = _room(db, case.agency_id)
    if room is None:
        return None
    case.room_chat_id = room.chat_id
    payload: dict[str, Any] = {
        "text": text, "choices": choices or [], "q": None,
        "case": {"id": case.id, "topic": topic_name(case, db), "card": card},
    }
    if photo:
        payload["tg_photo"] = photo
    return _row(db, channel=room.channel, chat_id=room.chat_id, payload=payload, now=now,
                agency_id=case.agency_id, ref=f"case:{case.id}", immediate=immediate)


def to_resident(
    db: Session, case: Case, text: str, now: datetime, *, choices: list[dict[str, Any]] | None = None,
    immediate: bool = True, kind: str = KIND_STAFF,
) -> OutboxMessage | None:
    """A message to the resident of a case, as the bot (never as the staff member)."""
    if case.contact_id is None:
        return None
    contact = db.get(Contact, case.contact_id)
    if contact is None or contact.unreachable_at is not None:
        return None
    payload = {"text": text, "choices": choices or [], "q": None}
    if immediate:
        return _row(db, channel=contact.channel, chat_id=case.chat_id or contact.external_id,
                    payload=payload, now=now, contact_id=contact.id, agency_id=case.agency_id,
                    ref=f"case:{case.id}", kind=kind)
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    return followups.schedule(
        db, contact=contact, agency=agency, kind=kind, payload=payload, due=now,
        dedupe_key=f"{kind}:{case.id}:{now.isoformat()}", ref=f"case:{case.id}", now=now,
        chat_id=case.chat_id, channel=contact.channel,
    )


def resident_lang(db: Session, case: Case) -> str:
    contact = db.get(Contact, case.contact_id) if case.contact_id else None
    return contact.language if contact else STAFF_LANG


# ---------------------------------------------------------------- the card


def card_text(db: Session, case: Case) -> str:
    """What staff see first in the topic. The reporter's name only when not confidential."""
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    tz = agency_zone(agency)
    service = db.get(Service, case.service_id) if case.service_id else None
    complaint = db.get(Complaint, case.complaint_id) if case.complaint_id else None
    reporter = texts("case.card.confidential") if case.confidential else (
        case.reporter_name or texts("case.card.no_name"))
    category = texts(f"cat.{complaint.category}") if complaint else "-"
    photos = len((complaint.attachments or {}).get("photos", [])) if complaint else 0
    location = "-"
    if complaint and complaint.latitude is not None and complaint.longitude is not None:
        location = f"{complaint.latitude:.5f}, {complaint.longitude:.5f}"
    elif complaint and complaint.location_text:
        location = complaint.location_text
    assignee = "-"
    if case.assignee_id:
        member = db.get(StaffMember, case.assignee_id)
        contact = db.get(Contact, member.contact_id) if member else None
        assignee = (contact.display_name if contact else None) or "-"
    reasons = ", ".join(reason_label(r) for r in (case.reasons or {}).get("reasons", [])) or "-"
    return texts(
        "case.card",
        ticket=case.ticket,
        status=texts(f"case.status.{case.status}"),
        level=texts(f"case.level.{case.level}"),
        agency=agency.short_name,
        service=service.name if service else "-",
        category=category,
        trigger=texts(f"case.trigger.{case.trigger}"),
        reasons=reasons,
        reporter=reporter,
        first_due=local_time(case.first_response_due, tz),
        resolution_due=local_time(case.resolution_due, tz),
        assignee=assignee,
        photos=photos,
        location=location,
        text=case.summary or "-",
    )


def reason_label(reason: str) -> str:
    kind, _, value = reason.partition(":")
    if kind == "category":
        return texts(f"cat.{value}")
    if kind == "element" and value.isdigit() and 1 <= int(value) <= len(ELEMENTS):
        return texts("case.reason.element", element=texts(f"skm.{ELEMENTS[int(value) - 1]}.name"))
    if kind == "ikm":
        return texts("case.reason.ikm", value=value)
    if kind == "term":
        return f"“{value}”"
    return reason


def card_buttons(case: Case) -> list[dict[str, Any]]:
    labels = [(a, texts(f"case.button.{a}")) for a in ACTIONS]
    allowed = [(a, label) for a, label in labels if case.status in TRANSITIONS[a][0]]
    if case.level == "head":
        allowed = [(a, label) for a, label in allowed if a != "head"]
    return [{"id": callback(a, case.id), "label": label, "nav": False} for a, label in allowed]


def card_payload(db: Session, case: Case) -> dict[str, Any]:
    return {"text": card_text(db, case), "choices": card_buttons(case), "q": None}


# ---------------------------------------------------------------- opening


@dataclass
class Opened:
    case: Case
    created: bool
    rows: list[OutboxMessage] = field(default_factory=list)


def _event(db: Session, case: Case, kind: str, actor: str, now: datetime, *,
           from_status: str | None = None, to_status: str | None = None,
           reason: str | None = None) -> CaseEvent:
    ev = CaseEvent(case_id=case.id, kind=kind, actor=actor[:100], from_status=from_status,
                   to_status=to_status, reason=reason, at=now)
    db.add(ev)
    return ev


def new_ticket(db: Session) -> str:
    for _ in range(20):
        ticket = tickets.unique_ticket(db)
        if db.scalar(select(Case.id).where(Case.ticket == ticket)) is None:
            return ticket
    raise RuntimeError("could not find a free ticket number")


def open_case(
    db: Session, *, agency: Agency, source_key: str, trigger: str, reasons: list[str],
    summary: str, now: datetime, actor: str, contact: Contact | None = None,
    chat_id: str | None = None, channel: str | None = None, complaint: Complaint | None = None,
    survey: SurveyResponse | None = None, service_id: int | None = None,
    confidential: bool = False, relay: bool = False, immediate: bool = True,
) -> Opened:
    """Open the case for ``source_key`` unless it exists; post its card to the staff room."""
    existing = db.scalars(select(Case).where(Case.source_key == source_key).with_for_update()).first()
    if existing is not None:
        return Opened(existing, False)
    sla = policy(agency)
    case = Case(
        source_key=source_key[:ID_LEN],
        ticket=complaint.ticket if complaint else new_ticket(db),
        agency_id=agency.id,
        service_id=service_id if service_id is not None else (complaint.service_id if complaint else None),
        complaint_id=complaint.id if complaint else None,
        survey_response_id=survey.id if survey else None,
        contact_id=contact.id if contact else None,
        channel=channel or (contact.channel if contact else "telegram"),
        chat_id=chat_id or (contact.external_id if contact else None),
        trigger=trigger,
        reasons={"reasons": reasons},
        summary=summary[:4000],
        confidential=confidential,
        reporter_name=None if confidential else (contact.display_name if contact else None),
        status="new",
        level="staff",
        relay=relay,
        created_at=now,
        updated_at=now,
        first_response_due=sla.first_response_due(now),
        resolution_due=sla.resolution_due(now),
    )
    db.add(case)
    db.flush()
    _event(db, case, "status", actor, now, to_status="new", reason=", ".join(reasons) or trigger)
    return Opened(case, True, post_card(db, case, now, immediate=immediate))


def post_card(db: Session, case: Case, now: datetime, immediate: bool = True) -> list[OutboxMessage]:
    """The card, then the complaint's photos, into the case's topic (nothing without a room)."""
    rows: list[OutboxMessage] = []
    card = to_room(db, case, card_text(db, case), now, choices=card_buttons(case),
                   immediate=immediate, card=True)
    if card is None:
        return rows
    rows.append(card)
    complaint = db.get(Complaint, case.complaint_id) if case.complaint_id else None
    if complaint is not None and complaint.channel == "telegram":
        for n, photo in enumerate((complaint.attachments or {}).get("photos", []), 1):
            if photo.get("file_id"):
                text = texts("case.photo", n=n, caption=photo.get("caption") or "")
                row = to_room(db, case, text, now, photo=str(photo["file_id"]), immediate=immediate)
                if row is not None:
                    rows.append(row)
    return rows


def _complaint_summary(complaint: Complaint) -> str:
    parts = [complaint.description]
    if complaint.occurred:
        parts.append(texts("case.card.occurred", occurred=complaint.occurred))
    return "\n".join(parts)


def on_complaint(
    db: Session, complaint: Complaint, contact: Contact, now: datetime,
    chat_id: str | None = None, channel: str | None = None,
) -> Opened | None:
    """A new complaint in a serious category or with bribery words goes to staff at once."""
    service = db.get(Service, complaint.service_id)
    reasons = triggers.is_serious(complaint.category, complaint.description,
                                  bool(service and service.free_by_law))
    if not reasons:
        return None
    agency = db.get(Agency, complaint.agency_id)
    assert agency is not None
    return open_case(
        db, agency=agency, source_key=f"complaint:{complaint.id}", trigger="serious",
        reasons=reasons, summary=_complaint_summary(complaint), now=now, actor="system",
        contact=contact, chat_id=chat_id, channel=channel, complaint=complaint,
        confidential=complaint.confidential,
    )


def survey_rule(agency: Agency) -> str:
    rule = str((agency.settings or {}).get("escalate_survey", "both"))
    return rule if rule in triggers.SURVEY_RULES else "both"


def on_survey(
    db: Session, response: SurveyResponse, contact: Contact, now: datetime,
    chat_id: str | None = None, channel: str | None = None,
) -> Opened | None:
    """A finished survey with a very low result (the agency's rule) goes to staff."""
    if response.status != "complete":
        return None
    agency = db.get(Agency, response.agency_id)
    assert agency is not None
    answers = {a.element: a.score for a in response.answers}
    reasons = triggers.low_survey(answers, survey_rule(agency))
    if not reasons:
        return None
    lines = [
        f"{texts(f'skm.{ELEMENTS[e - 1]}.name')}: "
        + (texts(f"skm.{ELEMENTS[e - 1]}.{s}") + f" ({s})" if s else texts("survey.skip"))
        for e, s in sorted(answers.items()) if 1 <= e <= len(ELEMENTS)
    ]
    if response.suggestion:
        lines.append(texts("case.card.suggestion", suggestion=response.suggestion))
    return open_case(
        db, agency=agency, source_key=f"survey:{response.id}", trigger="low_survey",
        reasons=reasons, summary="\n".join(lines), now=now, actor="system", contact=contact,
        chat_id=chat_id, channel=channel, survey=response, service_id=response.service_id,
    )


def request_person(
    db: Session, contact: Contact, agency_slug: str, now: datetime, event_id: str,
    chat_id: str | None = None, channel: str | None = None,
) -> tuple[dict[str, Any], list[OutboxMessage]]:
    """The resident asked for a person: one open request per resident and agency.

    Returns the answer for the engine and the staff-room rows (the card of a new case).
    """
    agency = db.scalars(select(Agency).where(Agency.slug == agency_slug)).first()
    if agency is None:
        return {"ok": False}, []
    active = db.scalars(
        select(Case).where(Case.contact_id == contact.id, Case.agency_id == agency.id,
                           Case.status.in_(ACTIVE)).order_by(Case.id.desc())
    ).first()
    already = active is not None
    rows: list[OutboxMessage] = []
    if active is None:
        opened = open_case(
            db, agency=agency, source_key=f"person:{contact.id}:{event_id}", trigger="person",
            reasons=[], summary=texts("case.person_summary"), now=now, actor="resident",
            contact=contact, chat_id=chat_id, channel=channel, relay=True,
        )
        active, rows = opened.case, opened.rows
    else:
        active.relay = True
    return {"ok": True, "already": already, "ticket": active.ticket, "agency": agency.short_name,
            "due": local_time(active.first_response_due, agency_zone(agency))}, rows


def on_not_resolved(db: Session, complaint: Complaint, contact: Contact, now: datetime) -> Opened:
    """A follow-up answered "No, not resolved": reopen the complaint's case, or open one."""
    agency = db.get(Agency, complaint.agency_id)
    assert agency is not None
    case = db.scalars(
        select(Case).where(Case.source_key == f"complaint:{complaint.id}").with_for_update()
    ).first()
    if case is None:
        return open_case(
            db, agency=agency, source_key=f"complaint:{complaint.id}", trigger="not_resolved",
            reasons=["followup:no"], summary=_complaint_summary(complaint), now=now,
            actor="resident", contact=contact, complaint=complaint,
            confidential=complaint.confidential,
        )
    rows: list[OutboxMessage] = []
    if case.status != "reopened":
        old = case.status
        case.status = "reopened"
        case.updated_at = now
        case.resolved_at = None
        case.closed_at = None
        case.first_response_at = None
        case.first_overdue_at = None
        case.first_response_due = policy(agency).first_response_due(now)
        _event(db, case, "status", "resident", now, from_status=old, to_status="reopened",
               reason="resident says it is not resolved")
        row = to_room(db, case, texts("case.room.reopened", ticket=case.ticket), now,
                      choices=card_buttons(case))
        rows += [row] if row else []
    return Opened(case, False, rows)


def escalate_complaint(db: Session, channel: str, user_id: str, ticket: str,
                       now: datetime) -> tuple[str, list[OutboxMessage]]:
    """``/eskalasi <ticket>``: staff take a complaint into human review by hand."""
    complaint = db.scalars(select(Complaint).where(Complaint.ticket == ticket)).first()
    member = staff_member(db, channel, user_id, complaint.agency_id) if complaint else None
    if complaint is None or member is None:  # another agency's ticket looks like an unknown one
        return texts("case.refused.unknown"), []
    agency = db.get(Agency, complaint.agency_id)
    assert agency is not None
    contact = db.get(Contact, complaint.contact_id) if complaint.contact_id else None
    opened = open_case(
        db, agency=agency, source_key=f"complaint:{complaint.id}", trigger="manual",
        reasons=[], summary=_complaint_summary(complaint), now=now, actor=_actor(member),
        contact=contact, channel=complaint.channel, complaint=complaint,
        confidential=complaint.confidential,
    )
    return texts("case.escalated_manual" if opened.created else "case.exists", ticket=ticket), opened.rows


# ---------------------------------------------------------------- staff side


@dataclass
class Outcome:
    """What a staff action did: ``ok`` False means nothing changed; ``notice`` explains."""

    ok: bool
    notice: str
    rows: list[OutboxMessage] = field(default_factory=list)
    case: Case | None = None
    card: dict[str, Any] | None = None  # the refreshed card for editing it in place


def staff_member(db: Session, channel: str, user_id: str, agency_id: int) -> StaffMember | None:
    return db.scalars(
        select(StaffMember).join(Contact, StaffMember.contact_id == Contact.id)
        .where(Contact.channel == channel, Contact.external_id == user_id,
               StaffMember.agency_id == agency_id, StaffMember.active,
               StaffMember.role.in_(STAFF_ROLES))
    ).first()


def memberships(db: Session, channel: str, user_id: str) -> list[tuple[StaffMember, Agency]]:
    return [
        (m, a) for m, a in db.execute(
            select(StaffMember, Agency).join(Contact, StaffMember.contact_id == Contact.id)
            .join(Agency, StaffMember.agency_id == Agency.id)
            .where(Contact.channel == channel, Contact.external_id == user_id, StaffMember.active,
                   StaffMember.role.in_(STAFF_ROLES))
            .order_by(Agency.slug)
        )
    ]


def _actor(member: StaffMember) -> str:
    return f"staff:{member.id}:{member.role}"


def _authorise(
    db: Session, case_id: int, channel: str, user_id: str, chat_id: str, private: bool,
) -> tuple[Case, StaffMember] | str:
    """The case, and the member allowed to act on it from this chat; else a refusal key."""
    case = db.get(Case, case_id, with_for_update=True)
    if case is None:
        return "case.refused.unknown"
    member = staff_member(db, channel, user_id, case.agency_id)
    if member is None:
        return "case.refused.not_staff"
    room = _room(db, case.agency_id)
    in_room = room is not None and room.chat_id == chat_id
    if not in_room and not (private and chat_id == member.chat_id):
        return "case.refused.wrong_room"
    return case, member


def _sync_complaint(db: Session, case: Case, new_status: str, actor: str, reason: str | None,
                    now: datetime) -> bool:
    """Keep the complaint's status with the case's; True when the resident was told."""
    if case.complaint_id is None:
        return False
    complaint = db.get(Complaint, case.complaint_id, with_for_update=True)
    if complaint is None or complaint.status == new_status:
        return False
    return followups.notify_status_change(db, complaint, new_status, actor, reason, now) is not None


def set_status(db: Session, case: Case, new_status: str, actor: str, reason: str | None,
               now: datetime) -> None:
    old = case.status
    case.status = new_status
    case.updated_at = now
    if new_status == "open" and case.first_response_at is None:
        case.first_response_at = now
    if new_status == "resolved":
        case.resolved_at = now
        case.relay = False
    if new_status == "closed":
        case.closed_at = now
        case.relay = False
    _event(db, case, "status", actor, now, from_status=old, to_status=new_status, reason=reason)


def act(
    db: Session, case_id: int, action: str, *, channel: str, user_id: str, chat_id: str,
    now: datetime, private: bool = False, note: str | None = None,
) -> Outcome:
    """A button on a case card (or a command). Checked against agency and role; a forged or
    stale press changes nothing and says why."""
    auth = _authorise(db, case_id, channel, user_id, chat_id, private)
    if isinstance(auth, str):
        return Outcome(False, texts(auth))
    case, member = auth
    allowed, new_status = TRANSITIONS.get(action, ((), None))
    if case.status not in allowed or (action == "head" and case.level == "head"):
        return Outcome(False, texts("case.refused.stale", status=texts(f"case.status.{case.status}")),
                       case=case, card=card_payload(db, case))
    actor = _actor(member)
    rows: list[OutboxMessage] = []
    lang = resident_lang(db, case)
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    if action == "note":
        if not note:
            return Outcome(False, texts("case.note_how"), case=case)
        _event(db, case, "note", actor, now, reason=note[:4000])
        return Outcome(True, texts("case.noted"), case=case)
    if action == "head":
        old_level = case.level
        case.level = "head"
        case.updated_at = now
        _event(db, case, "escalate", actor, now, from_status=case.status, to_status=case.status,
               reason=f"level {old_level} -> head")
        text = texts("case.head_alert", ticket=case.ticket, agency=agency.short_name)
        for head in _heads(db, case.agency_id):
            rows.append(_row(db, channel=head.channel, chat_id=head.chat_id,
                             payload={"text": text, "choices": [], "q": None}, now=now,
                             contact_id=head.contact_id, agency_id=case.agency_id,
                             ref=f"case:{case.id}"))
        row = to_room(db, case, texts("case.room.escalated", ticket=case.ticket), now)
        rows += [row] if row else []
        return Outcome(True, texts("case.done.head"), rows, case, card_payload(db, case))
    assert new_status is not None
    set_status(db, case, new_status, actor, None, now)
    if action == "take":
        case.assignee_id = member.id
        case.relay = True
        _sync_complaint(db, case, "open", "staff", None, now)
        row = to_resident(db, case, TEXTS(lang, "case.resident.taken", ticket=case.ticket), now)
        rows += [row] if row else []
    elif action == "pending":
        told = _sync_complaint(db, case, "pending", "staff", None, now)
        if not told:
            row = to_resident(db, case, TEXTS(lang, "case.resident.pending", ticket=case.ticket), now)
            rows += [row] if row else []
    elif action == "resolve":
        if case.assignee_id is None:
            case.assignee_id = member.id
        if case.first_response_at is None:
            case.first_response_at = now
        _sync_complaint(db, case, "resolved", "staff", None, now)
        if case.complaint_id is None:
            to_resident(db, case, TEXTS(lang, "case.resident.resolved", ticket=case.ticket), now,
                        immediate=False)
        choices = [{"id": callback("rate", case.id, str(n)), "label": TEXTS(lang, f"followup.rating.{n}"),
                    "nav": False} for n in (5, 4, 3, 2, 1)]
        to_resident(db, case, TEXTS(lang, "case.resident.rate", ticket=case.ticket), now,
                    choices=choices, immediate=False, kind=KIND_CASE_RATING)
    return Outcome(True, texts(f"case.done.{action}"), rows, case, card_payload(db, case))


def _heads(db: Session, agency_id: int) -> list[StaffMember]:
    return list(db.scalars(
        select(StaffMember).where(StaffMember.agency_id == agency_id, StaffMember.role == "head",
                                  StaffMember.active).order_by(StaffMember.id)))


def staff_message(
    db: Session, *, channel: str, user_id: str, room_chat_id: str, topic_id: int | None,
    text: str | None, photo: str | None, now: datetime, ticket: str | None = None,
    private: bool = False,
) -> Outcome | None:
    """A staff member wrote in a case topic (or ``/balas <ticket>``): relay it to the resident.

    Returns None when the message is not about a case (a topic we do not know): ignored.
    """
    if ticket is not None:
        case = db.scalars(select(Case).where(Case.ticket == ticket).order_by(Case.id.desc())).first()
    else:
        case = db.scalars(select(Case).where(Case.room_chat_id == room_chat_id,
                                             Case.topic_id == topic_id)).first()
    if case is None:
        return None if ticket is None else Outcome(False, texts("case.refused.unknown"))
    auth = _authorise(db, case.id, channel, user_id, room_chat_id, private)
    if isinstance(auth, str):
        return Outcome(False, texts(auth))
    case, member = auth
    if case.status not in ACTIVE:
        return Outcome(False, texts("case.refused.closed", status=texts(f"case.status.{case.status}")),
                       case=case)
    if case.contact_id is None:
        return Outcome(False, texts("case.refused.no_resident"), case=case)
    actor = _actor(member)
    rows: list[OutboxMessage] = []
    card = None
    if case.status in ("new", "reopened"):
        set_status(db, case, "open", actor, "staff answered", now)
        case.assignee_id = case.assignee_id or member.id
        _sync_complaint(db, case, "open", "staff", None, now)
        card = card_payload(db, case)
    case.relay = True
    lang = resident_lang(db, case)
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    body = TEXTS(lang, "case.resident.from_staff", agency=agency.short_name, ticket=case.ticket,
                 text=(text or "").strip()[:3500])
    row = to_resident(db, case, body, now)
    if row is not None and photo:
        row.payload = {**row.payload, "tg_photo": photo}
    if row is None:
        return Outcome(False, texts("case.refused.unreachable"), case=case)
    rows.append(row)
    _event(db, case, "to_resident", actor, now, reason=(text or "")[:4000] or "[photo]")
    return Outcome(True, "", rows, case, card)


# ---------------------------------------------------------------- the resident side


@dataclass
class Relayed:
    notice: str | None
    rows: list[OutboxMessage]


def active_relay_case(db: Session, contact_id: int) -> Case | None:
    return db.scalars(
        select(Case).where(Case.contact_id == contact_id, Case.relay, Case.status.in_(ACTIVE))
        .order_by(Case.updated_at.desc(), Case.id.desc())
    ).first()


def relay_from_resident(
    db: Session, contact: Contact, event: Event, text: str, now: datetime,
) -> Relayed | None:
    """While a human handles a case, the resident's messages go to the case's topic.

    Returns None when the engine should answer instead (no such case, or a command/button).
    """
    if event.kind not in ("text", "photo", "location"):
        return None
    case = active_relay_case(db, contact.id)
    if case is None:
        return None
    rows: list[OutboxMessage] = []
    name = texts("case.card.confidential") if case.confidential else (contact.display_name or "-")
    if event.kind == "text":
        body, photo = text, None
    elif event.kind == "photo":
        media = event.media or {}
        body = str(media.get("caption") or "")
        # a Telegram file id can be re-sent into the room; other channels' media cannot
        photo = media.get("file_id") if contact.channel == "telegram" else None
        if photo is None:
            body = f"[{texts('case.photo_elsewhere')}] {body}".strip()
    else:
        lat, lon = event.location or (0.0, 0.0)
        body, photo = f"📍 {lat:.5f}, {lon:.5f}", None
    if case.status == "pending":
        set_status(db, case, "open", "resident", "resident replied", now)
        _sync_complaint(db, case, "open", "resident", None, now)
    _event(db, case, "from_resident", "resident", now, reason=body[:4000] or "[photo]")
    msg = texts("case.room.from_resident", name=name, text=body or "-")
    row = to_room(db, case, msg, now, photo=str(photo) if photo else None)
    rows += [row] if row else []
    notice = None
    if case.notice_at is None or now - case.notice_at >= NOTICE_EVERY:
        case.notice_at = now
        notice = TEXTS(contact.language, "case.resident.relayed", ticket=case.ticket)
    return Relayed(notice, rows)


def rate_choice(db: Session, contact: Contact, choice: str, now: datetime) -> str:
    """A rating button that came through the runtime (channels without their own handler)."""
    parsed = parse_callback(choice)
    if parsed is None or parsed[0] != "rate":
        return TEXTS(contact.language, "stale_button")
    return rate(db, parsed[1], parsed[2], contact.channel, contact.external_id, now)


def forget_contact(db: Session, contact_id: int, now: datetime) -> None:
    """UU 27/2022 erasure: the agency keeps the case, without the person or a way to reach them."""
    for case in db.scalars(select(Case).where(Case.contact_id == contact_id).with_for_update()):
        case.contact_id = None
        case.chat_id = None
        case.reporter_name = None
        case.relay = False
        _event(db, case, "status", "resident", now, from_status=case.status, to_status=case.status,
               reason="reporter deleted their personal data")


def rate(db: Session, case_id: int, score: str, channel: str, user_id: str, now: datetime) -> str:
    """The resident rates how their case was handled (1-5); only the case's own resident."""
    case = db.get(Case, case_id, with_for_update=True)
    contact = db.scalars(select(Contact).where(Contact.channel == channel,
                                               Contact.external_id == user_id)).first()
    lang = contact.language if contact else STAFF_LANG
    if case is None or contact is None or case.contact_id != contact.id or score not in "12345" \
            or len(score) != 1:
        return TEXTS(lang, "stale_button")
    if case.rating is not None:
        return TEXTS(lang, "followup.rating_thanks")
    case.rating = int(score)
    _event(db, case, "rating", "resident", now, reason=score)
    if case.status == "resolved":
        set_status(db, case, "closed", "resident", f"rated {score}", now)
        if case.complaint_id is not None:
            complaint = db.get(Complaint, case.complaint_id)
            if complaint is not None and complaint.status != "closed":
                followups.set_status(db, complaint, "closed", "resident", f"rated {score}", now)
    return TEXTS(lang, "followup.rating_thanks")


# ---------------------------------------------------------------- rooms and the queue


def link_room(db: Session, channel: str, user_id: str, chat_id: str, slug: str | None,
              now: datetime) -> tuple[bool, str, list[OutboxMessage]]:
    """``/ruangstaf``: link this group as an agency's staff room (staff/admins of it only)."""
    mine = memberships(db, channel, user_id)
    if slug:
        mine = [(m, a) for m, a in mine if a.slug == slug.strip().lower()]
    if not mine:
        return False, texts("case.room.refused"), []
    if len(mine) > 1:
        names = ", ".join(a.slug for _, a in mine)
        return False, texts("case.room.which", agencies=names), []
    member, agency = mine[0]
    other = db.scalars(select(StaffRoom).where(StaffRoom.chat_id == chat_id)).first()
    if other is not None and other.agency_id != agency.id:
        return False, texts("case.room.taken"), []
    room = _room(db, agency.id)
    if room is None:
        room = StaffRoom(agency_id=agency.id, channel=channel, chat_id=chat_id,
                         linked_by=member.contact_id, linked_at=now)
        db.add(room)
    else:
        room.chat_id, room.channel, room.linked_by, room.linked_at = chat_id, channel, member.contact_id, now
    db.flush()
    rows: list[OutboxMessage] = []
    queued = db.scalars(
        select(Case).where(Case.agency_id == agency.id, Case.status.in_(ACTIVE),
                           or_(Case.room_chat_id.is_(None), Case.room_chat_id != chat_id))
        .order_by(Case.id)
    ).all()
    for case in queued:
        case.topic_id = None
        case.card_message_id = None
        rows += post_card(db, case, now)
        name = texts("case.card.confidential") if case.confidential else (case.reporter_name or "-")
        for ev in _resident_messages(db, case.id):  # what the resident wrote while it queued
            row = to_room(db, case, texts("case.room.from_resident", name=name, text=ev.reason or "-"), now)
            rows += [row] if row else []
    return True, texts("case.room.linked", agency=agency.name, queued=len(queued)), rows


def _resident_messages(db: Session, case_id: int, limit: int = 20) -> list[CaseEvent]:
    """The resident's latest messages on a case, oldest first."""
    rows = db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                              CaseEvent.kind == "from_resident")
                      .order_by(CaseEvent.id.desc()).limit(limit)).all()
    return list(reversed(rows))


def queue(db: Session, channel: str, user_id: str, now: datetime) -> tuple[str, list[dict[str, Any]]]:
    """``/kasus``: the open cases of the agencies this person is staff of, soonest deadline first."""
    mine = memberships(db, channel, user_id)
    if not mine:
        return texts("case.refused.not_staff"), []
    lines: list[str] = []
    choices: list[dict[str, Any]] = []
    for _member, agency in mine:
        cases = db.scalars(
            select(Case).where(Case.agency_id == agency.id, Case.status.in_(ACTIVE))
            .order_by(Case.resolution_due, Case.id).limit(MAX_QUEUE)
        ).all()
        lines.append(texts("case.queue.agency", agency=agency.short_name, n=len(cases)))
        for case in cases:
            late = case.resolution_due < now or (case.first_response_at is None
                                                 and case.first_response_due < now)
            lines.append(texts(
                "case.queue.line", ticket=case.ticket, status=texts(f"case.status.{case.status}"),
                trigger=texts(f"case.trigger.{case.trigger}"),
                due=local_time(case.first_response_due if case.first_response_at is None
                               else case.resolution_due, agency_zone(agency)),
                late=" ⏰" if late else "",
            ))
            latest = _resident_messages(db, case.id, 1)
            if latest:
                lines.append(texts("case.queue.latest", text=(latest[0].reason or "")[:200]))
            if case.status in ("new", "reopened") and len(choices) < 10:
                choices.append({"id": callback("take", case.id),
                                "label": texts("case.queue.take", ticket=case.ticket), "nav": False})
    lines.append(texts("case.queue.reply_help"))
    return "\n".join(lines), choices


# ---------------------------------------------------------------- SLA


def sla_tick(db: Session, now: datetime) -> int:
    """Flag cases whose limits passed, once each: in their topic and to the agency's heads.

    Rows are left pending for the outbox dispatcher. Returns how many breaches were flagged.
    """
    flagged = 0
    first = db.scalars(
        select(Case).where(Case.status.in_(("new", "reopened")), Case.first_response_at.is_(None),
                           Case.first_overdue_at.is_(None), Case.first_response_due < now)
        .with_for_update()
    ).all()
    late = db.scalars(
        select(Case).where(Case.status.in_(ACTIVE), Case.resolution_overdue_at.is_(None),
                           Case.resolution_due < now)
        .with_for_update()
    ).all()
    for kind, cases in (("first", first), ("resolution", late)):
        for case in cases:
            agency = db.get(Agency, case.agency_id)
            assert agency is not None
            due = case.first_response_due if kind == "first" else case.resolution_due
            if kind == "first":
                case.first_overdue_at = now
            else:
                case.resolution_overdue_at = now
            _event(db, case, "overdue", "system", now, from_status=case.status, to_status=case.status,
                   reason=f"{kind} limit {due.isoformat()} passed")
            text = texts(f"case.overdue.{kind}", ticket=case.ticket,
                         due=local_time(due, agency_zone(agency)), agency=agency.short_name)
            to_room(db, case, text, now, immediate=False)
            for head in _heads(db, case.agency_id):
                _row(db, channel=head.channel, chat_id=head.chat_id,
                     payload={"text": text, "choices": [], "q": None}, now=now,
                     contact_id=head.contact_id, agency_id=case.agency_id, ref=f"case:{case.id}",
                     immediate=False)
            flagged += 1
    return flagged


SLA_JOB = "case-sla"
SLA_EVERY_MINUTES = 5


def run_sla_tick(factory: sessionmaker[Session], clock: Callable[[], datetime]) -> int:
    """One scheduler tick: flag breaches in one transaction (the dispatcher sends the flags)."""
    with factory() as db, db.begin():
        return sla_tick(db, clock())


def register_sla_job(scheduler: Any, factory: sessionmaker[Session], clock: Callable[[], datetime],
                     minutes: float = SLA_EVERY_MINUTES) -> None:
    """Check deadlines every few minutes; flags are stored, so a restart never repeats them."""
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler.add_job(run_sla_tick, IntervalTrigger(minutes=minutes), args=[factory, clock],
                      id=SLA_JOB, name="case SLA check", max_instances=1, coalesce=True,
                      replace_existing=True)


def overdue_count(db: Session, agency_id: int, at: datetime) -> int:
    """Cases of an agency still open past a deadline at ``at`` (for the weekly digest)."""
    return db.scalar(
        select(func.count()).select_from(Case).where(
            Case.agency_id == agency_id,
            Case.created_at < at,
            or_(Case.resolved_at.is_(None), Case.resolved_at >= at),
            Case.status != "closed",
            or_(Case.resolution_due < at,
                (Case.first_response_at.is_(None) & (Case.first_response_due < at))),
        )
    ) or 0
