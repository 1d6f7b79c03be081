"""Cases in human review: opening them and the state machine that staff and residents drive.

Everything in bot/desk runs inside the caller's database transaction and returns outbox rows;
no network calls. A case is opened once per source (``source_key``: ``complaint:12``,
``survey:7``, ``person:3:<event>``): a retried delivery or a second trigger on the same
complaint finds the existing case instead of opening another (why a case opens:
bot/desk/intake.py).

States and actions are in bot/desk/states.py. Every change is a :class:`CaseEvent` row (who,
when, from, to, why), and a case that belongs to a complaint keeps the complaint's status in
step through :func:`bot.outbox.followups.notify_status_change`, which tells the resident.
Staff press buttons on the case's card (:func:`act`); the resident rates the handling
(:func:`rate`), which closes a resolved case but never silently: every rating is posted in
the case's topic and the card is refreshed, and a low one (:data:`LOW_RATING` or less) also
alerts the agency's heads. Staff reopen a resolved or closed case with "Buka kembali".

The rest of the desk: cards.py (the card), access.py (who may act), relay.py (messages between
staff and resident), rooms.py (linking a staff room), queue.py (``/kasus``), deadlines.py (SLA
ticks), outgoing.py (the rows everything sends).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.catalog import agency_zone, sla_settings
from bot.desk.access import actor_of, authorise
from bot.desk.cards import card_buttons, card_payload, post_card, refresh_card
from bot.desk.outgoing import (
    KIND_CASE_RATING,
    STAFF_LANG,
    outbox_row,
    resident_lang,
    texts,
    to_resident,
    to_room,
)
from bot.desk.staff import heads
from bot.desk.states import TRANSITIONS, allowed, callback, parse_callback
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
    SurveyResponse,
)
from bot.worktime import SlaPolicy, policy_from_settings

log = logging.getLogger(__name__)
LOW_RATING = 2  # "Kurang puas" or worse: the heads hear of it, staff may reopen the case
ALERT_SUMMARY = 500  # characters of the case's summary in a head's alert
Mask = Callable[[str, Sequence[str]], str]  # (text, the reporter's names) -> text without them


def policy(agency: Agency, category: str | None = None) -> SlaPolicy:
    """The agency's SLA (with the complaint ``category``'s own limits, if the catalog sets
    them); a broken setting falls back to the defaults (and is logged)."""
    try:
        return policy_from_settings(agency_zone(agency), sla_settings(agency.settings, category))
    except (ValueError, TypeError, AttributeError) as exc:
        log.error("agency %s: bad SLA settings (%s); using the defaults", agency.slug, exc)
        return policy_from_settings(agency_zone(agency), {})


@dataclass
class Opened:
    case: Case
    created: bool
    rows: list[OutboxMessage] = field(default_factory=list)


def record_event(db: Session, case: Case, kind: str, actor: str, now: datetime, *,
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
    priority: str = "normal",
) -> Opened:
    """Open the case for ``source_key`` unless it exists; post its card to the staff room.

    A complaint's case takes the limits of its category (:func:`policy`)."""
    existing = db.scalars(select(Case).where(Case.source_key == source_key).with_for_update()).first()
    if existing is not None:
        return Opened(existing, False)
    sla = policy(agency, complaint.category if complaint else None)
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
        priority=priority,
        level="staff",
        relay=relay,
        created_at=now,
        updated_at=now,
        first_response_due=sla.first_response_due(now),
        resolution_due=sla.resolution_due(now),
    )
    db.add(case)
    db.flush()
    record_event(db, case, "status", actor, now, to_status="new", reason=", ".join(reasons) or trigger)
    return Opened(case, True, post_card(db, case, now, immediate=immediate))


@dataclass
class Outcome:
    """What a staff action did: ``ok`` False means nothing changed; ``notice`` explains."""

    ok: bool
    notice: str
    rows: list[OutboxMessage] = field(default_factory=list)
    case: Case | None = None
    card: dict[str, Any] | None = None  # the refreshed card for editing it in place


def sync_complaint(db: Session, case: Case, new_status: str, actor: str, reason: str | None,
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
    record_event(db, case, "status", actor, now, from_status=old, to_status=new_status, reason=reason)


def act(
    db: Session, case_id: int, action: str, *, channel: str, user_id: str, chat_id: str,
    now: datetime, private: bool = False, note: str | None = None,
    mask: Mask | None = None, desk_url: str | None = None,
) -> Outcome:
    """A button on a case card (or a command). Checked against agency and role; a forged or
    stale press changes nothing and says why.

    ``mask(text, names)`` scrubs personal data (and the reporter's names) out of a confidential
    case's summary in the heads' alert (injected, e.g. :func:`bot.privacy.scrub.scrub`: the
    privacy layer sits above the desk; without it that summary is left out) and
    ``desk_url`` is ``PUBLIC_BASE_URL``, for the link to the case's page on the web desk."""
    auth = authorise(db, case_id, channel, user_id, chat_id, private)
    if isinstance(auth, str):
        return Outcome(False, texts(auth))
    case, member = auth
    new_status = TRANSITIONS.get(action, ((), None))[1]
    if not allowed(action, case.status, case.level, case.assignee_id is not None):
        return Outcome(False, texts("case.refused.stale", status=texts(f"case.status.{case.status}")),
                       case=case, card=card_payload(db, case))
    actor = actor_of(member)
    rows: list[OutboxMessage] = []
    lang = resident_lang(db, case)
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    if action == "note":
        if not note:
            return Outcome(False, texts("case.note_how"), case=case)
        record_event(db, case, "note", actor, now, reason=note[:4000])
        return Outcome(True, texts("case.noted"), case=case)
    if action == "head":
        old_level = case.level
        case.level = "head"
        case.updated_at = now
        record_event(db, case, "escalate", actor, now, from_status=case.status, to_status=case.status,
                     reason=f"level {old_level} -> head")
        text = head_alert(db, case, agency, mask, desk_url)
        for head in heads(db, case.agency_id):
            rows.append(outbox_row(db, channel=head.channel, chat_id=head.chat_id,
                                   payload={"text": text, "choices": [], "q": None}, now=now,
                                   contact_id=head.contact_id, agency_id=case.agency_id,
                                   ref=f"case:{case.id}"))
        row = to_room(db, case, texts("case.room.escalated", ticket=case.ticket), now)
        rows += [row] if row else []
        return Outcome(True, texts("case.done.head"), rows, case, card_payload(db, case))
    assert new_status is not None
    if action == "take" and case.status == "open":  # answered in the topic before anyone took it
        case.assignee_id = member.id
        case.updated_at = now
        record_event(db, case, "assign", actor, now, from_status="open", to_status="open",
                     reason="took the case")
        return Outcome(True, texts("case.done.take"), rows, case, card_payload(db, case))
    set_status(db, case, new_status, actor, "reopened by staff" if action == "reopen" else None, now)
    if action == "take":
        case.assignee_id = member.id
        case.relay = True
        sync_complaint(db, case, "open", "staff", None, now)
        row = to_resident(db, case, TEXTS(lang, "case.resident.taken", ticket=case.ticket), now)
        rows += [row] if row else []
    elif action == "reopen":
        # back in the queue, to be taken again; the resident may rate the next resolution
        case.resolved_at = case.closed_at = case.rating = None
        sync_complaint(db, case, "reopened", "staff", None, now)
    elif action == "pending":
        told = sync_complaint(db, case, "pending", "staff", None, now)
        if not told:
            row = to_resident(db, case, TEXTS(lang, "case.resident.pending", ticket=case.ticket), now)
            rows += [row] if row else []
    elif action == "resolve":
        if case.assignee_id is None:
            case.assignee_id = member.id
        if case.first_response_at is None:
            case.first_response_at = now
        complaint = db.get(Complaint, case.complaint_id, with_for_update=True) if case.complaint_id else None
        if complaint is not None and complaint.status != "resolved":
            # audited without a message of its own: the question below tells the resident
            followups.set_status(db, complaint, "resolved", "staff", None, now)
        ask_to_confirm(db, case, lang, now)
    return Outcome(True, texts(f"case.done.{action}"), rows, case, card_payload(db, case))


def head_alert(db: Session, case: Case, agency: Agency, mask: Mask | None,
               desk_url: str | None) -> str:
    """What a head is sent when a case is raised to them: what it is about, and where to act.

    A confidential case's summary is scrubbed by ``mask`` (left out without one) and its
    reporter is not named; the link goes to the case's page on the web desk."""
    if case.confidential:
        reporter = texts("case.card.confidential")
        contact = db.get(Contact, case.contact_id) if case.contact_id else None
        names = [contact.display_name] if contact and contact.display_name else []
        summary = (mask(case.summary or "", names) if mask is not None
                   else texts("case.head_alert.hidden"))
    else:
        reporter = case.reporter_name or texts("case.card.no_name")
        summary = case.summary or "-"
    if len(summary) > ALERT_SUMMARY:
        summary = summary[:ALERT_SUMMARY - 1].rstrip() + "…"
    parts = [texts("case.head_alert", ticket=case.ticket, agency=agency.short_name),
             texts("case.head_alert.about", trigger=texts(f"case.trigger.{case.trigger}"),
                   status=texts(f"case.status.{case.status}"), reporter=reporter, summary=summary)]
    if desk_url:
        parts.append(texts("case.head_alert.link", url=f"{desk_url.rstrip('/')}/desk/cases/{case.id}"))
    return "\n\n".join(parts)


CONFIRM_NO = "no"  # the "not solved yet" button among the ratings: ``cs:rate:<case>:no``


def ask_to_confirm(db: Session, case: Case, lang: str, now: datetime) -> OutboxMessage | None:
    """Staff resolved the case: ask the resident whether it is really solved, and to rate it.

    One message (quiet hours respected): the ratings 5..1 confirm and close the case
    (:func:`rate`), "not solved yet" reopens it for staff. This replaces the blind check-in
    timer of a complaint that has a case."""
    choices = [{"id": callback("rate", case.id, str(n)), "label": TEXTS(lang, f"followup.rating.{n}"),
                "nav": False} for n in (5, 4, 3, 2, 1)]
    choices.append({"id": callback("rate", case.id, CONFIRM_NO),
                    "label": TEXTS(lang, "case.resident.not_solved"), "nav": False})
    return to_resident(db, case, TEXTS(lang, "case.resident.confirm", ticket=case.ticket), now,
                       choices=choices, immediate=False, kind=KIND_CASE_RATING)


def reopen(db: Session, case: Case, actor: str, reason: str, now: datetime,
           immediate: bool = True) -> list[OutboxMessage]:
    """Back to staff: the case is ``reopened`` with a new first-response limit, and the room
    is told (its resolution limit stays: a late case stays late)."""
    if case.status == "reopened":
        return []
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    complaint = db.get(Complaint, case.complaint_id) if case.complaint_id else None
    old = case.status
    case.status = "reopened"
    case.updated_at = now
    case.resolved_at = None
    case.closed_at = None
    case.first_response_at = None
    case.first_overdue_at = None
    case.first_response_due = policy(agency, complaint.category if complaint else None) \
        .first_response_due(now)
    record_event(db, case, "status", actor, now, from_status=old, to_status="reopened", reason=reason)
    row = to_room(db, case, texts("case.room.reopened", ticket=case.ticket), now,
                  choices=card_buttons(case), immediate=immediate)
    return [row] if row else []


def rate_choice(db: Session, contact: Contact, choice: str,
                now: datetime) -> tuple[str, list[OutboxMessage]]:
    """A rating button that came through the runtime: the thanks, and the staff-room rows."""
    parsed = parse_callback(choice)
    if parsed is None or parsed[0] != "rate":
        return TEXTS(contact.language, "stale_button"), []
    rows: list[OutboxMessage] = []
    thanks = rate(db, parsed[1], parsed[2], contact.channel, contact.external_id, now, rows)
    return thanks, rows


def rate(db: Session, case_id: int, score: str, channel: str, user_id: str, now: datetime,
         rows: list[OutboxMessage] | None = None) -> str:
    """The resident answers :func:`ask_to_confirm`: a rating of how their case was handled (1-5)
    confirms it is solved and closes it; "not solved yet" reopens it. Only the case's own resident.

    Staff always hear of a rating (``rows``: the rating in the case's topic, the refreshed card
    with "Buka kembali"); a rating of :data:`LOW_RATING` or less also goes to the agency's
    heads, so an unhappy resident is not closed away unseen."""
    case = db.get(Case, case_id, with_for_update=True)
    contact = db.scalars(select(Contact).where(Contact.channel == channel,
                                               Contact.external_id == user_id)).first()
    lang = contact.language if contact else STAFF_LANG
    if case is None or contact is None or case.contact_id != contact.id or (
            score != CONFIRM_NO and (score not in "12345" or len(score) != 1)):
        return TEXTS(lang, "stale_button")
    if score == CONFIRM_NO:
        return not_solved(db, case, lang, now)
    if case.rating is not None:
        return TEXTS(lang, "followup.rating_thanks")
    case.rating = int(score)
    record_event(db, case, "rating", "resident", now, reason=score)
    closed = case.status == "resolved"
    if closed:
        set_status(db, case, "closed", "resident", f"rated {score}", now)
        if case.complaint_id is not None:
            complaint = db.get(Complaint, case.complaint_id)
            if complaint is not None and complaint.status != "closed":
                followups.set_status(db, complaint, "closed", "resident", f"rated {score}", now)
    out = rows if rows is not None else []
    out += rating_notices(db, case, int(score), closed, now)
    return TEXTS(lang, "followup.rating_thanks")


def rating_notices(db: Session, case: Case, score: int, closed: bool,
                   now: datetime) -> list[OutboxMessage]:
    """The rating told to staff: a line in the topic and the card refreshed; heads for a low one."""
    label = f"{score} - {texts(f'followup.rating.{score}')}"
    low = score <= LOW_RATING
    key = "case.room.rated_low" if low else "case.room.rated"
    rows: list[OutboxMessage] = []
    line = texts(key, ticket=case.ticket, rating=label) + (
        "\n" + texts("case.room.rated_closed") if closed else "")
    row = to_room(db, case, line, now)
    rows += [row] if row else []
    card = refresh_card(db, case, now)
    rows += [card] if card else []
    if low:
        agency = db.get(Agency, case.agency_id)
        assert agency is not None
        text = texts("case.head_rated_low", ticket=case.ticket, agency=agency.short_name, rating=label)
        for head in heads(db, case.agency_id):
            rows.append(outbox_row(db, channel=head.channel, chat_id=head.chat_id,
                                   payload={"text": text, "choices": [], "q": None}, now=now,
                                   contact_id=head.contact_id, agency_id=case.agency_id,
                                   ref=f"case:{case.id}"))
    return rows


def not_solved(db: Session, case: Case, lang: str, now: datetime) -> str:
    """"Not solved yet" on the question staff's resolution asked: the case and its complaint
    are reopened for staff (the room hears it when the dispatcher sends)."""
    if case.status == "closed":
        return TEXTS(lang, "followup.gone.closed", ticket=case.ticket)
    if case.status != "resolved":
        return TEXTS(lang, "stale_button")
    reason = "resident says it is not resolved"
    reopen(db, case, "resident", reason, now, immediate=False)
    if case.complaint_id is not None:
        complaint = db.get(Complaint, case.complaint_id, with_for_update=True)
        if complaint is not None and complaint.status != "reopened":
            followups.set_status(db, complaint, "reopened", "resident", reason, now)
    return TEXTS(lang, "followup.reopened", ticket=case.ticket)
