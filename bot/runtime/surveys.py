"""Survey answers -> stored rows: the response and its answers (the hottest write, Core SQL),
its reminder (bot.outbox.followups), and a case when a finished survey is very low; whether a
resident may start another questionnaire (one per visit), and the respondent profile.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.desk import intake
from bot.outbox import followups
from bot.storage import hotsql
from bot.storage.hotsql import PROFILE_COLUMNS
from bot.storage.models import SurveyResponse
from flows.helpers import triggers
from flows.helpers.profile import CODES
from flows.machine.types import Reply, SaveProfile, SurveyCancelled, UpsertSurvey

if TYPE_CHECKING:
    from bot.runtime.turn import Turn


def upsert_survey(turn: Turn, eff: UpsertSurvey) -> None:
    """Store the survey so far: the hottest write of all (one per answer), so it is Core SQL.

    The engine sends every answer given so far; elements undone with "back" disappear.
    """
    assert turn.cid is not None
    turn.write_deferred()  # an earlier answer of this turn first: the touch below reads them
    rt, now = turn.rt, turn.now
    service_id, agency_id = rt.service_ids(lambda: turn.db, now)[eff.service]
    raw, cur = rt.raw, turn.cur
    key = f"{turn.cid}:{eff.key}"
    # The response's new status, its id and counting time, and its highest stored element, in
    # one statement (hotsql.RawSQL.response_touch); a new questionnaire is inserted first.
    touch = raw.response_touch_complete if eff.status == "complete" else raw.response_touch
    values = {"key": key, "status": eff.status, "at": now, "suggestion": eff.suggestion}
    found = touch.one(cur, values)
    created = found is None
    if found is None:
        # The profile as it is now (hotsql.PROFILE_COLUMNS): a later edit leaves this one as is.
        profile = raw.contact_profile.one(cur, {"cid": turn.cid}) or (None,) * len(PROFILE_COLUMNS)
        raw.response_insert.run(
            cur,
            {"response_key": key, "contact_id": turn.cid, "agency_id": agency_id,
             "service_id": service_id, "channel": turn.inbound.channel, "status": "partial",
             "started_at": now, "updated_at": now, **dict(zip(PROFILE_COLUMNS, profile, strict=True))},
        ).fetchall()
        found = touch.one(cur, values)
        assert found is not None
    response_id, counted_at, highest = found
    push = eff.status != "complete" and not created and rt.survey_reminder is not None
    # (the agency's quiet hours may need the ORM, never inside a batch: computed first)
    due = rt.agency_quiet(lambda: turn.db, agency_id)(now + rt.survey_reminder) \
        if push and rt.survey_reminder is not None else None

    def write() -> None:  # nothing here reads a result
        if eff.answers:
            # Every answer counts at the questionnaire's first answer: one week, one period.
            raw.answers_upsert.many(
                cur,
                [{"response_id": response_id, "agency_id": agency_id, "service_id": service_id,
                  "element": element, "score": score, "answered_at": now, "counted_at": counted_at}
                 for element, score in eff.answers.items()],
            )
        if highest is not None and highest > len(eff.answers):
            # Answers are numbered 1..n: anything above n was undone with "back".
            raw.answers_prune.run(cur, {"rid": response_id, "n": len(eff.answers)})
        if due is not None:
            followups.survey_reminder_push(raw, cur, response_id, due)

    escalate = eff.status == "complete" and may_escalate(turn, eff.answers, agency_id)
    if escalate:  # the case reads the answers back: written now
        with hotsql.batch(cur):
            write()
    else:  # written with the session and the replies (Turn.persist): one round trip fewer
        turn.defer(write)
    if eff.status == "complete" and not escalate:
        # No case to open, so no ORM objects to load: just cancel the reminder.
        if rt.survey_reminder is not None:
            followups.survey_reminder_cancel(raw, cur, response_id)
    elif eff.status == "complete":
        resp = turn.db.get(SurveyResponse, response_id, populate_existing=True)
        assert resp is not None
        survey_completed(turn, resp)
    elif created and rt.survey_reminder is not None:
        first_answer(turn, response_id, agency_id, eff.service)


def may_escalate(turn: Turn, answers: dict[int, int | None], agency_id: int) -> bool:
    """Whether intake.on_survey could open a case for this finished survey: the same test
    it makes (triggers.low_survey under intake.survey_rule), with the rule cached."""
    rule = turn.rt.survey_rule(lambda: turn.db, agency_id)
    return bool(triggers.low_survey(answers, rule))


def first_answer(turn: Turn, response_id: int, agency_id: int, service: str) -> None:
    """A survey just started: schedule its reminder (followups.survey_reminder_start).

    Nothing needs looking up (the catalog has the service's name, the runtime the agency's
    quiet hours), so no ORM round trips.
    """
    rt = turn.rt
    assert rt.survey_reminder is not None and turn.cid is not None
    due = rt.agency_quiet(lambda: turn.db, agency_id)(turn.now + rt.survey_reminder)
    svc = turn.catalog.service(service)
    lang = turn.loaded_contact.language if turn.loaded_contact is not None else turn.language
    followups.survey_reminder_start(
        rt.raw, turn.cur, contact_id=turn.cid, channel=turn.inbound.channel,
        chat_id=turn.inbound.chat_id, lang=lang, service_name=svc.title(lang) if svc else service,
        response_id=response_id, agency_id=agency_id, due=due, now=turn.now,
    )


def survey_completed(turn: Turn, resp: SurveyResponse) -> None:
    """A finished survey that may be very low: open its case (intake.on_survey), cancel the reminder.

    ``resp`` was just completed in this transaction (``response_complete``).
    """
    assert turn.contact is not None
    opened = intake.on_survey(turn.db, resp, turn.contact, turn.now,
                             chat_id=turn.inbound.chat_id, channel=turn.inbound.channel)
    if opened is not None and opened.created:
        # In order: the engine says "thank you" before the final save, so this notice
        # lands between the thanks and the menu.
        turn.reply(Reply(turn.rt.texts(turn.contact.language, "case.survey_escalated",
                                       ticket=opened.case.ticket)))
        turn.later.extend(opened.rows)
    if turn.rt.survey_reminder is not None:
        turn.db.flush()
        followups.survey_reminder_cancel(turn.rt.raw, turn.cur, resp.id)


def survey_cancelled(turn: Turn, effect: SurveyCancelled) -> None:
    """The resident stopped the survey: its reminder is cancelled."""
    assert turn.contact is not None
    conn = turn.db.connection()
    key = f"{turn.contact.id}:{effect.key}"
    response_id = conn.execute(turn.rt.sql.response_find, {"key": key}).scalar()
    if response_id is not None:
        conn.execute(turn.rt.sql.reminder_cancel,
                     {"key": followups.survey_reminder_key(response_id)})


def survey_check(turn: Turn, service: str) -> dict[str, Any]:
    """Whether the resident may start a questionnaire for ``service`` now (one per visit).

    The service's ``survey_once_per`` (bot.catalog.survey_window) sets the period: the local
    day by default, or so many hours. Inside it the earlier questionnaire's key and local time
    come back, so the engine can offer to change its answers instead. One Core statement: the
    period is cached with the catalog, the profile mark came with the contact row.
    """
    assert turn.cid is not None
    loaded = turn.loaded_contact
    asked = (loaded.profile_at if loaded is not None else turn.profile_at) is not None
    sid_aid = turn.rt.service_ids(lambda: turn.db, turn.now).get(service)
    if sid_aid is None:
        return {"allowed": True, "profile_asked": asked}
    sid, aid = sid_aid
    zone, hours = turn.rt.survey_period(lambda: turn.db, sid, aid)
    since = window_start(turn.now, zone, hours)
    prev = turn.rt.raw.survey_prev.one(turn.cur, {"cid": turn.cid, "sid": sid, "since": since})
    if prev is None:
        return {"allowed": True, "profile_asked": asked}
    key, started, status = prev
    local = started.astimezone(zone)
    at = local.strftime("%H.%M") if local.date() == turn.now.astimezone(zone).date() else local.strftime("%d/%m %H.%M")
    return {"allowed": False, "profile_asked": asked, "key": key.removeprefix(f"{turn.cid}:"), "at": at,
            "partial": status != "complete"}


def window_start(now: datetime, zone: ZoneInfo, hours: int | None) -> datetime:
    """The start of the period one questionnaire covers: local midnight (None) or ``hours`` ago."""
    if hours is not None:
        return now - timedelta(hours=hours)
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def save_profile(turn: Turn, eff: SaveProfile) -> None:
    """One answer of the respondent profile: on the contact, and on the questionnaire it was
    asked after (its snapshot); an empty ``field`` only marks the profile as asked.

    Core statements written with the turn's session state (``Turn.defer``); only a contact this
    turn already holds as an ORM object is changed there instead (flushed with the turn), so it
    stays true. Loading it just for this cost about 1 ms, in the turn that ends every first
    survey and in each of the four profile answers.
    """
    assert turn.cid is not None
    raw, cur, cid, now = turn.rt.raw, turn.cur, turn.cid, turn.now
    column = f"profile_{eff.field}" if eff.field in CODES else None
    value = eff.value if column is not None and eff.value in CODES[eff.field] else None
    key = f"{cid}:{eff.survey_key}" if column is not None and eff.survey_key else None
    contact = turn.loaded_contact
    first = (contact.profile_at if contact is not None else turn.profile_at) is None
    if contact is not None:
        if first:
            contact.profile_at = now
        if column is not None:
            setattr(contact, column, value)

    def write() -> None:
        if contact is None and first:
            raw.profile_asked.run(cur, {"cid": cid, "now": now})
        if contact is None and column is not None:
            raw.profile_contact[column].run(cur, {"cid": cid, "value": value})
        if column is not None and key is not None:
            raw.profile_response[column].run(cur, {"cid": cid, "key": key, "value": value})

    turn.defer(write)
    if first:
        turn.profile_at = now
