"""The resident's answer when staff resolve a case: a rating that confirms and closes it, or
"not solved yet" that reopens it (the question itself: :func:`bot.desk.outgoing.ask_to_confirm`).

A rating closes a resolved case but never silently: every rating is posted in the case's topic
and the card is refreshed, and a low one (:data:`LOW_RATING` or less) also alerts the agency's
heads, so an unhappy resident is not closed away unseen; staff may reopen it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk.cards import refresh_card
from bot.desk.cases import record_event, reopen, set_status
from bot.desk.outgoing import CONFIRM_NO, STAFF_LANG, outbox_row, texts, to_room
from bot.desk.staff import heads
from bot.desk.states import parse_callback
from bot.i18n import TEXTS
from bot.outbox import followups
from bot.storage.models import Agency, Case, Complaint, Contact, OutboxMessage

LOW_RATING = 2  # "Kurang puas" or worse: the heads hear of it, staff may reopen the case


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
