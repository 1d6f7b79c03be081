"""Results by respondent profile (PermenPANRB 14/2017 reports them per group of respondents).

Each questionnaire keeps the profile its respondent gave when answering (survey_responses.
profile_*), so a later edit never rewrites an earlier period. :func:`profile_breakdown` counts
respondents and computes the IKM per group of one profile field; a group of fewer than
``MIN_GROUP`` people is never shown: its figures are suppressed (``suppressed``) and, so they
cannot be worked out by subtracting from the total, the next smallest group goes with it.
"Tidak ingin menjawab" (NULL) is its own group, "not stated".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.reports import ikm
from bot.storage.models import SurveyAnswer, SurveyResponse
from flows.helpers.profile import CODES

MIN_GROUP = 5
NOT_STATED = ""


@dataclass(frozen=True)
class Group:
    """One group of a profile field: ``code`` (NOT_STATED for no answer) and its figures.

    A suppressed group shows neither its respondents nor its IKM ("< 5").
    """

    code: str
    respondents: int | None
    ikm: ikm.Ikm | None
    suppressed: bool = False

    @property
    def shown(self) -> str:
        """The respondents as a report prints them: "< 5" for a suppressed group."""
        return f"< {MIN_GROUP}" if self.suppressed else str(self.respondents or 0)


def profile_breakdown(
    db: Session, agency_id: int | Sequence[int], field: str, start: datetime, end: datetime,
    weighting: ikm.Weighting = "exact", service_id: int | None = None,
) -> list[Group]:
    """Respondents and IKM per group of ``field`` (gender, age, education, job) among the
    questionnaires counted in [start, end) (their first answer), every group in the form's order.

    ``agency_id``: one agency, or several (the regency's report)."""
    if field not in CODES:
        raise ValueError(f"unknown profile field {field!r}; one of {', '.join(CODES)}")
    col = getattr(SurveyResponse, f"profile_{field}")
    a = SurveyAnswer
    agencies = [agency_id] if isinstance(agency_id, int) else list(agency_id)
    where = [a.agency_id.in_(agencies), a.counted_at >= start, a.counted_at < end]
    if service_id is not None:
        where.append(a.service_id == service_id)
    stmt = (
        select(col, a.element, func.coalesce(func.sum(a.score), 0), func.count(a.score), func.count())
        .select_from(a).join(SurveyResponse, SurveyResponse.id == a.response_id)
        .where(*where).group_by(col, a.element)
    )
    tallies: dict[str, dict[int, ikm.ElementTally]] = {}
    respondents: dict[str, int] = {}
    for code, element, total, answered, rows in db.execute(stmt):
        key = code if code in CODES[field] else NOT_STATED
        per = tallies.setdefault(key, {})
        per[element] = per.get(element, ikm.ElementTally()) + ikm.ElementTally(int(total), int(answered))
        if element == 1:  # every questionnaire starts at element 1: its rows count respondents
            respondents[key] = respondents.get(key, 0) + int(rows)
    return suppress([(code, respondents.get(code, 0), tallies.get(code, {}), weighting)
                     for code in (*CODES[field], NOT_STATED)])


def suppress(rows: list[tuple[str, int, dict[int, ikm.ElementTally], ikm.Weighting]]) -> list[Group]:
    """Groups of 1-4 people are hidden; if exactly one is, the next smallest is hidden too
    (the total minus the others would give it away). Empty groups show 0."""
    small = {code for code, n, _, _ in rows if 0 < n < MIN_GROUP}
    if len(small) == 1:
        others = sorted((n, code) for code, n, _, _ in rows if n >= MIN_GROUP)
        if others:
            small.add(others[0][1])
    return [
        Group(code, None, None, True) if code in small
        else Group(code, n, ikm.compute(t, w) if n else None)
        for code, n, t, w in rows
    ]
