"""Survey answers -> stored rows: the response and its answers (the hottest write, Core SQL),
its reminder (bot.outbox.followups), and a case when a finished survey is very low.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.desk import intake
from bot.outbox import followups
from bot.storage.models import SurveyResponse
from flows.helpers import triggers
from flows.machine.types import Reply, SurveyCancelled, UpsertSurvey

if TYPE_CHECKING:
    from bot.runtime.turn import Turn


def upsert_survey(turn: Turn, eff: UpsertSurvey) -> None:
    """Store the survey so far: the hottest write of all (one per answer), so it is Core SQL.

    The engine sends every answer given so far; elements undone with "back" disappear.
    """
    assert turn.cid is not None
    rt, now = turn.rt, turn.now
    service_id, agency_id = rt.service_ids(lambda: turn.db, now)[eff.service]
    raw, cur = rt.raw, turn.cur
    key = f"{turn.cid}:{eff.key}"
    response_id = raw.response_find.scalar(cur, {"key": key})
    created = response_id is None
    if response_id is None:
        response_id = raw.response_insert.scalar(
            cur,
            {"response_key": key, "contact_id": turn.cid, "agency_id": agency_id,
             "service_id": service_id, "channel": turn.inbound.channel, "status": "partial",
             "started_at": now, "updated_at": now},
        )
    if eff.answers:
        raw.answers_upsert.many(
            cur,
            [{"response_id": response_id, "agency_id": agency_id, "service_id": service_id,
              "element": element, "score": score, "answered_at": now}
             for element, score in eff.answers.items()],
        )
    raw.answers_prune.run(cur, {"rid": response_id, "n": len(eff.answers)})
    if eff.status == "complete":
        raw.response_complete.run(
            cur, {"rid": response_id, "at": now, "suggestion": eff.suggestion})
    else:
        raw.response_update.run(cur, {"rid": response_id, "status": eff.status, "at": now})
    if eff.status == "complete" and not may_escalate(turn, eff.answers, agency_id):
        # No case to open, so no ORM objects to load: just cancel the reminder.
        if rt.survey_reminder is not None:
            followups.survey_reminder_cancel(raw, cur, response_id)
    elif eff.status == "complete":
        resp = turn.db.get(SurveyResponse, response_id, populate_existing=True)
        assert resp is not None
        survey_completed(turn, resp)
    elif created and rt.survey_reminder is not None:
        first_answer(turn, response_id, agency_id, eff.service)
    elif rt.survey_reminder is not None:
        due = rt.agency_quiet(lambda: turn.db, agency_id)(now + rt.survey_reminder)
        followups.survey_reminder_push(raw, cur, response_id, due)


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
        chat_id=turn.inbound.chat_id, lang=lang, service_name=svc.name if svc else service,
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
