"""Follow-ups the bot sends by itself: complaint check-ins, status changes, survey reminders.

A complaint's check-in follows its case (bot/desk: staff resolving it asks the resident to
confirm and rate, a passed deadline is told honestly); the blind "is it solved?" timer here
(:func:`schedule_checkin`) is only for a complaint that has no case.

Each one is an outbox row written in the transaction of the change that caused it, with a
future ``due_at`` moved out of the agency's quiet hours, a ``dedupe_key`` so it can never be
scheduled twice, and a ``ref`` ("complaint:12", "survey:7") so it can be cancelled when it
stops being relevant. Buttons on these messages are not the current question, so their ids
live in the ``fu:`` namespace (``fu:<kind>:<id>:<answer>``) that the engine routes to
``flows.steps.followup``; the answers come back here through the runtime's ``followup`` call, which
checks the complaint or survey belongs to the resident pressing the button.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.catalog import agency_followup_days, agency_quiet_hours, service_title
from bot.i18n import TEXTS
from bot.storage.hotsql import RawSQL
from bot.storage.models import (
    Agency,
    Complaint,
    Contact,
    FollowupAnswer,
    OutboxMessage,
    Service,
    StatusChange,
    SurveyResponse,
)

log = logging.getLogger(__name__)

KIND_CHECKIN = "followup_checkin"
KIND_STATUS = "status_change"
KIND_SURVEY = "survey_reminder"
MAX_CHECKINS = 4  # the first one and three "not yet" reminders; then staff take over
FINAL_STATUSES = ("closed",)
CHECKIN_ANSWERS = ("yes", "notyet", "no")


# ---------------------------------------------------------------- quiet hours


def parse_hhmm(value: str) -> time:
    """"21:00" -> time(21, 0); raises ValueError with the bad value in the message."""
    try:
        hh, mm = value.strip().split(":")
        return time(int(hh), int(mm))
    except (ValueError, AttributeError):
        raise ValueError(f"not a HH:MM time: {value!r}") from None


def in_quiet_hours(when: datetime, tz: str, start: str = "21:00", end: str = "07:00") -> bool:
    local = when.astimezone(ZoneInfo(tz)).time()
    s, e = parse_hhmm(start), parse_hhmm(end)
    if s == e:
        return False
    if s > e:  # crosses midnight, the usual case
        return local >= s or local < e
    return s <= local < e


def quiet_adjust(when: datetime, tz: str, start: str = "21:00", end: str = "07:00") -> datetime:
    """Move a non-urgent send time out of quiet hours to ``end`` local time (returned in UTC)."""
    if not in_quiet_hours(when, tz, start, end):
        return when
    zone = ZoneInfo(tz)
    local = when.astimezone(zone)
    e = parse_hhmm(end)
    day = local.date()
    if local.time() >= e and parse_hhmm(start) > e:
        day += timedelta(days=1)  # evening: tomorrow morning
    return datetime.combine(day, e, tzinfo=zone).astimezone(UTC)


def agency_quiet(agency: Agency, when: datetime) -> datetime:
    q = agency_quiet_hours(agency)  # a bad stored value falls back instead of raising
    return quiet_adjust(when, q.timezone, q.start, q.end)


# ---------------------------------------------------------------- scheduling


def schedule(
    db: Session,
    *,
    contact: Contact,
    agency: Agency,
    kind: str,
    payload: dict[str, Any],
    due: datetime,
    dedupe_key: str,
    ref: str,
    now: datetime,
    chat_id: str | None = None,
    channel: str | None = None,
    urgent: bool = False,
) -> OutboxMessage | None:
    """Insert one scheduled message unless its dedupe key exists (then returns None)."""
    exists = db.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key))
    if exists is not None:
        return None
    row = OutboxMessage(**scheduled_values(
        contact_id=contact.id,
        channel=channel or contact.channel,
        chat_id=chat_id or contact.external_id,
        kind=kind,
        payload=payload,
        due_at=due if urgent else agency_quiet(agency, due),
        dedupe_key=dedupe_key,
        agency_id=agency.id,
        urgent=urgent,
        ref=ref,
        now=now,
    ))
    db.add(row)
    return row


def scheduled_values(
    *, contact_id: int, channel: str, chat_id: str, kind: str, payload: dict[str, Any],
    due_at: datetime, dedupe_key: str, agency_id: int, ref: str, now: datetime, urgent: bool = False,
) -> dict[str, Any]:
    """The columns of a scheduled message (``hotsql.REMINDER_COLUMNS``): for :func:`schedule` and
    for the runtime's one-statement insert of a survey reminder, so both write the same row."""
    return {
        "contact_id": contact_id, "channel": channel, "chat_id": chat_id, "kind": kind,
        "payload": payload, "status": "pending", "due_at": due_at, "attempts": 0,
        "created_at": now, "dedupe_key": dedupe_key, "agency_id": agency_id, "urgent": urgent,
        "ref": ref, "uncertain": 0,
    }


def cancel(db: Session, ref: str, kind: str | None = None) -> int:
    """Cancel pending messages about ``ref`` (of one ``kind``); returns how many."""
    stmt = update(OutboxMessage).where(OutboxMessage.ref == ref, OutboxMessage.status == "pending")
    if kind is not None:
        stmt = stmt.where(OutboxMessage.kind == kind)
    return int(db.execute(stmt.values(status="cancelled")).rowcount)  # type: ignore[attr-defined]


def checkin_payload(lang: str, complaint: Complaint, service_name: str) -> dict[str, Any]:
    cid = complaint.id
    return {
        "text": TEXTS(lang, "followup.checkin", ticket=complaint.ticket, service=service_name),
        "choices": [
            {"id": f"fu:c:{cid}:{a}", "label": TEXTS(lang, f"followup.checkin.{a}"), "nav": False}
            for a in CHECKIN_ANSWERS
        ],
        "q": None,
    }


def schedule_checkin(
    db: Session, complaint: Complaint, contact: Contact, now: datetime,
    chat_id: str | None = None, channel: str | None = None,
) -> OutboxMessage | None:
    """Ask "is it resolved?" after the agency's ``followup_days``; at most MAX_CHECKINS times.

    Only for a complaint without a case (a case asks when staff resolve it instead)."""
    agency = db.get(Agency, complaint.agency_id)
    service = db.get(Service, complaint.service_id)
    assert agency is not None and service is not None
    ref = f"complaint:{complaint.id}"
    n = db.scalar(
        select(func.count()).select_from(OutboxMessage)
        .where(OutboxMessage.ref == ref, OutboxMessage.kind == KIND_CHECKIN)
    ) or 0
    if n >= MAX_CHECKINS:
        return None
    return schedule(
        db, contact=contact, agency=agency, kind=KIND_CHECKIN,
        payload=checkin_payload(contact.language, complaint, service_title(service, contact.language)),
        due=now + timedelta(days=agency_followup_days(agency)),
        dedupe_key=f"checkin:{complaint.id}:{n + 1}", ref=ref, now=now,
        chat_id=chat_id, channel=channel,
    )


def set_status(
    db: Session, complaint: Complaint, new_status: str, actor: str, reason: str | None, now: datetime
) -> StatusChange:
    """Change a complaint's status with its audit row; final statuses cancel pending check-ins."""
    change = StatusChange(
        complaint_id=complaint.id, from_status=complaint.status, to_status=new_status,
        actor=actor[:100], reason=reason, at=now,
    )
    db.add(change)
    complaint.status = new_status
    complaint.updated_at = now
    if new_status in ("resolved", "closed") and complaint.resolved_at is None:
        complaint.resolved_at = now
    if new_status == "reopened":
        complaint.resolved_at = None
    if new_status in FINAL_STATUSES:
        cancel(db, f"complaint:{complaint.id}", KIND_CHECKIN)
    db.flush()
    return change


def notify_status_change(
    db: Session, complaint: Complaint, new_status: str, actor: str, reason: str | None, now: datetime
) -> OutboxMessage | None:
    """Staff changed a complaint's status: audit it and tell the resident (quiet hours apply).

    Returns the outbox row, or None when the resident cannot be told (data deleted, blocked).
    """
    old = complaint.status
    change = set_status(db, complaint, new_status, actor, reason, now)
    if old == new_status or complaint.contact_id is None:
        return None
    contact = db.get(Contact, complaint.contact_id)
    if contact is None or contact.unreachable_at is not None:
        return None
    agency = db.get(Agency, complaint.agency_id)
    assert agency is not None
    lang = contact.language
    text = TEXTS(
        lang, "followup.status_changed", ticket=complaint.ticket,
        status=TEXTS(lang, f"complaint_status.{new_status}"),
    )
    if reason and actor != "system":
        text += "\n" + TEXTS(lang, "followup.status_reason", reason=reason[:500])
    return schedule(
        db, contact=contact, agency=agency, kind=KIND_STATUS,
        payload={"text": text, "choices": [], "q": None},
        due=now, dedupe_key=f"status:{complaint.id}:{change.id}",
        ref=f"complaint:{complaint.id}", now=now,
    )


def survey_reminder_key(response_id: int) -> str:
    """The ``dedupe_key`` of a survey's one reminder: the statements below find it by this key."""
    return f"survey_reminder:{response_id}"


# One gentle reminder per unfinished survey: scheduled at the first answer, pushed back while
# the resident keeps answering, cancelled when the survey is finished or dropped; once it has
# been sent there is never another one. Each is one statement (``hotsql.RawSQL``) in the
# runtime's transaction: the survey is the hottest write of all, one per answer. ``due`` is
# already out of the agency's quiet hours (the runtime caches the agency's adjustment).


def survey_reminder_start(
    raw: RawSQL, cur: Any, *, contact_id: int, channel: str, chat_id: str, lang: str,
    service_name: str, response_id: int, agency_id: int, due: datetime, now: datetime,
) -> None:
    """A survey just started: schedule its reminder (or push back the one it has)."""
    key = survey_reminder_key(response_id)
    created = raw.reminder_insert.one(cur, scheduled_values(
        contact_id=contact_id, channel=channel, chat_id=chat_id, kind=KIND_SURVEY,
        payload=survey_reminder_payload(lang, service_name, response_id), due_at=due,
        dedupe_key=key, agency_id=agency_id, ref=f"survey:{response_id}", now=now,
    ))
    if created is None:  # the key exists already: push it back
        raw.reminder_push.run(cur, {"key": key, "due": due})


def survey_reminder_push(raw: RawSQL, cur: Any, response_id: int, due: datetime) -> None:
    """Another answer: the pending reminder waits again (a sent one stays sent)."""
    raw.reminder_push.run(cur, {"key": survey_reminder_key(response_id), "due": due})


def survey_reminder_cancel(raw: RawSQL, cur: Any, response_id: int) -> None:
    """The survey is finished: its pending reminder is cancelled."""
    raw.reminder_cancel.run(cur, {"key": survey_reminder_key(response_id)})


def survey_reminder_payload(lang: str, service_name: str, response_id: int) -> dict[str, Any]:
    """The reminder's message (see :func:`survey_reminder_start`)."""
    return {
        "text": TEXTS(lang, "followup.survey_reminder", service=service_name),
        "choices": [
            {"id": f"fu:s:{response_id}:resume", "label": TEXTS(lang, "followup.survey_resume"), "nav": False},
            {"id": f"fu:s:{response_id}:stop", "label": TEXTS(lang, "followup.survey_stop"), "nav": False},
        ],
        "q": None,
    }


# ---------------------------------------------------------------- answers (runtime call)


def answer(
    db: Session, contact: Contact, now: datetime, kind: str, id: int, answer: str,
    chat_id: str | None = None, channel: str | None = None,
) -> dict[str, Any]:
    """Apply a follow-up button press; the result goes back to ``flows.steps.followup``.

    Someone else's complaint or survey looks exactly like an unknown one.
    """
    if kind in ("c", "r"):
        complaint = db.get(Complaint, id, with_for_update=True)
        if complaint is None or complaint.contact_id != contact.id:
            return {"ok": False, "reason": "unknown"}
        base = {"ticket": complaint.ticket}
        if kind == "r":
            if answer not in ("1", "2", "3", "4", "5", "skip"):
                return {"ok": False, "reason": "unknown"}
            if answer != "skip":
                db.add(FollowupAnswer(complaint_id=complaint.id, question="rating", answer=answer, at=now))
            return {**base, "ok": True, "kind": "r", "answer": answer}
        if answer not in CHECKIN_ANSWERS:
            return {"ok": False, "reason": "unknown"}
        if complaint.status in FINAL_STATUSES:
            return {**base, "ok": False, "reason": "closed"}
        db.add(FollowupAnswer(complaint_id=complaint.id, question="checkin", answer=answer, at=now))
        ref = f"complaint:{complaint.id}"
        cancel(db, ref, KIND_CHECKIN)
        days = None
        if answer == "yes":
            set_status(db, complaint, "closed", "resident", "resident confirmed it is resolved", now)
        elif answer == "no":
            set_status(db, complaint, "reopened", "resident",
                       "resident says it is not resolved: flagged for review", now)
        else:
            row = schedule_checkin(db, complaint, contact, now, chat_id=chat_id, channel=channel)
            agency = db.get(Agency, complaint.agency_id)
            days = agency_followup_days(agency) if (row is not None and agency is not None) else None
        return {**base, "ok": True, "kind": "c", "answer": answer, "days": days}
    if kind == "s":
        response = db.get(SurveyResponse, id)
        if response is None or response.contact_id != contact.id:
            return {"ok": False, "reason": "unknown"}
        cancel(db, f"survey:{response.id}", KIND_SURVEY)
        if response.status == "complete":
            return {"ok": False, "reason": "done"}
        service = db.get(Service, response.service_id)
        if answer == "stop" or service is None:
            return {"ok": True, "kind": "s", "answer": "stop"}
        prefix = f"{contact.id}:"
        key = response.response_key.removeprefix(prefix)
        answers = {str(a.element): a.score for a in response.answers}
        return {"ok": True, "kind": "s", "answer": "resume", "service": service.code,
                "key": key, "answers": answers}
    return {"ok": False, "reason": "unknown"}
