"""Cases in human review: opening them and the state machine that staff and residents drive.

Everything in bot/desk runs inside the caller's database transaction and returns outbox rows;
no network calls. A case is opened once per source (``source_key``: ``complaint:12``,
``survey:7``, ``person:3:<event>``): a retried delivery or a second trigger on the same
complaint finds the existing case instead of opening another (why a case opens:
bot/desk/intake.py).

States and actions are in bot/desk/states.py. Every change is a :class:`CaseEvent` row (who,
when, from, to, why), and a case that belongs to a complaint keeps the complaint's status in
step through :func:`bot.outbox.followups.notify_status_change`, which tells the resident.
Staff press buttons on the case's card (:func:`act`); resolving asks the resident to confirm
and rate (bot/desk/rating.py). Staff reopen a resolved or closed case with "Buka kembali".

The rest of the desk: cards.py (the card), access.py (who may act), relay.py (messages between
staff and resident), rooms.py (linking a staff room), queue.py (``/kasus``), deadlines.py (SLA
ticks), outgoing.py (the rows everything sends), rating.py (the resident's answer to a resolution).
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
from bot.desk.cards import card_buttons, card_payload, post_card
from bot.desk.outgoing import (
    ask_to_confirm,
    outbox_row,
    resident_lang,
    texts,
    to_resident,
    to_room,
)
from bot.desk.staff import heads
from bot.desk.states import TRANSITIONS, allowed
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
                 reason: str | None = None, media: dict[str, Any] | None = None) -> CaseEvent:
    ev = CaseEvent(case_id=case.id, kind=kind, actor=actor[:100], from_status=from_status,
                   to_status=to_status, reason=reason, at=now, media=media)
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
        last_resident_at=now,
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
    key: str = ""  # a refusal's text key, so the web desk can say it in its own language
    status: str | None = None  # the case status that refusal names

    def notice_in(self, lang: str) -> str:
        """The notice in ``lang`` when it is a known refusal; otherwise as written (Indonesian)."""
        if not self.key:
            return self.notice
        params = {"status": TEXTS(lang, f"case.status.{self.status}")} if self.status else {}
        return TEXTS(lang, self.key, **params)


def refused(key: str, case: Case | None = None, status: str | None = None) -> Outcome:
    """Nothing changed, and why: ``key`` names the reason (with the case ``status`` it names)."""
    params = {"status": texts(f"case.status.{status}")} if status else {}
    return Outcome(False, texts(key, **params), case=case, key=key, status=status)


def sync_complaint(db: Session, case: Case, new_status: str, actor: str, reason: str | None,
                   now: datetime) -> bool:
    """Keep the complaint's status with the case's; True when the resident was told.

    The complaints of cases marked duplicates of this one follow it (their residents are told).
    """
    for dup in db.scalars(select(Case).where(Case.duplicate_of == case.id)):
        if dup.complaint_id is not None:
            other = db.get(Complaint, dup.complaint_id, with_for_update=True)
            if other is not None and other.status != new_status:
                followups.notify_status_change(db, other, new_status, actor, reason, now)
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
        return refused(auth)
    case, member = auth
    new_status = TRANSITIONS.get(action, ((), None))[1]
    if not allowed(action, case.status, case.level, case.assignee_id is not None):
        out = refused("case.refused.stale", case, case.status)
        out.card = card_payload(db, case)
        return out
    actor = actor_of(member)
    rows: list[OutboxMessage] = []
    lang = resident_lang(db, case)
    agency = db.get(Agency, case.agency_id)
    assert agency is not None
    if action == "note":
        if not note:
            return refused("case.note_how", case)
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
    if action == "reopen":  # back in the queue, to be taken again: the one reopening rule
        reopen(db, case, actor, "reopened by staff", now, tell_room=False)
        sync_complaint(db, case, "reopened", "staff", None, now)
        return Outcome(True, texts("case.done.reopen"), rows, case, card_payload(db, case))
    set_status(db, case, new_status, actor, None, now)
    if action == "take":
        case.assignee_id = member.id
        case.relay = True
        sync_complaint(db, case, "open", "staff", None, now)
        row = to_resident(db, case, TEXTS(lang, "case.resident.taken", ticket=case.ticket), now)
        rows += [row] if row else []
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
        parts.append(texts("case.head_alert.link", url=f"{desk_url.rstrip('/')}/desk/case/{case.id}"))
    return "\n\n".join(parts)


def reopen(db: Session, case: Case, actor: str, reason: str, now: datetime,
           immediate: bool = True, tell_room: bool = True) -> list[OutboxMessage]:
    """Back to staff, the same way whoever asks (the resident's "not solved yet", staff's
    "Buka kembali" on Telegram or the web desk): the case is ``reopened``, no longer resolved,
    closed, rated or a duplicate, with a new first-response limit; its resolution limit stays
    (a late case stays late). The room is told unless staff did it there (``tell_room``); the
    complaint's status is the caller's, who knows whether the resident must hear of it."""
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
    case.rating = None  # the resident may rate the next resolution
    case.duplicate_of = None
    case.first_response_at = None
    case.first_overdue_at = None
    case.first_response_due = policy(agency, complaint.category if complaint else None) \
        .first_response_due(now)
    record_event(db, case, "status", actor, now, from_status=old, to_status="reopened", reason=reason)
    if not tell_room:
        return []
    row = to_room(db, case, texts("case.room.reopened", ticket=case.ticket), now,
                  choices=card_buttons(case), immediate=immediate)
    return [row] if row else []
