"""The periodic report's figures from SQL: grouped scans of the period's questionnaires.

A questionnaire counts in the period in which it started (``survey_responses.started_at`` in the
agency's zone), with all its answers, even those given after midnight of the period's last day.
One GROUP BY (service, element) over the period's answers, corrected for the few questionnaires
that straddle its boundaries, gives the IKM, every element's NRR and every service's IKM; one
more per earlier period gives the comparison and the trend. No Python loop walks individual
answers, so the annual report costs about one scan of the year's answers.

The regency report (scope "*") is each agency's report in the agency's own zone, summed: the
regency's tallies are exactly the sum of the agencies' tallies.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.catalog import agency_ikm_weights, agency_zone
from bot.desk.cases import policy
from bot.reports import ikm
from bot.reports.digest.data import find_agency, focus_elements
from bot.reports.digest.model import ComplaintRow
from bot.reports.periodic.model import (
    TREND_PERIODS,
    Complaints,
    PlanLine,
    ReportData,
    ServiceResult,
    Weak,
)
from bot.reports.periodic.period import Period
from bot.reports.periodic.plan import plan_lines
from bot.reports.periodic.themes import weak_themes
from bot.reports.profile import Group, profile_breakdown
from bot.reports.sample import minimum_sample
from bot.storage.models import (
    Agency,
    Case,
    Complaint,
    Contact,
    Service,
    SurveyAnswer,
    SurveyResponse,
    as_utc,
)
from flows.helpers.profile import FIELD_NAMES
from flows.helpers.skm import ELEMENTS
from flows.helpers.triggers import about_bribery

log = logging.getLogger(__name__)
ALL = "*"
Tallies = dict[int, ikm.ElementTally]

__all__ = ["ALL", "collect", "find_agency"]


def _groups(
    db: Session, agency_id: int, lo: datetime, hi: datetime, per_service: bool = True,
) -> list[tuple[int, int, int, int, int]]:
    """(service or 0, element, sum of scores, answered, rows) of questionnaires started in [lo, hi).

    Answers are grouped by their own time over the covering (agency, answered_at) index, as cheap
    as a bare scan; then the questionnaires that straddle a boundary are corrected exactly. An
    answer is never older than its questionnaire nor newer than its ``updated_at``, so those are
    the ones started before ``lo`` and updated since (their answers from ``lo`` on are taken
    out) and the ones started in the period and updated from ``hi`` on (their later answers are
    added); the (agency, updated_at, started_at) index finds them without reading the period.
    """
    a, r = SurveyAnswer, SurveyResponse
    aggregates = (func.coalesce(func.sum(a.score), 0), func.count(a.score), func.count())
    sqlite = db.get_bind().dialect.name == "sqlite"
    # SQLite groups by sorting: (service, element) packed into one integer sorts one small key
    # (see the digest); PostgreSQL hashes the two columns as they are, a little faster
    keys: list[Any] = ([a.service_id * 16 + a.element] if sqlite else [a.service_id, a.element]) \
        if per_service else [a.element]

    def grouped(*where: Any) -> list[Any]:
        rows: list[Any] = list(db.execute(
            select(*keys, *aggregates).where(a.agency_id == agency_id, *where).group_by(*keys)))
        if per_service and not sqlite:
            return [(int(sid) * 16 + int(e), t, n, c) for sid, e, t, n, c in rows]
        return rows

    early = select(r.id).where(r.agency_id == agency_id, r.updated_at >= lo, r.started_at < lo)
    late = select(r.id).where(r.agency_id == agency_id, r.updated_at >= hi, r.started_at >= lo,
                              r.started_at < hi)
    sums: dict[int, list[int]] = {}
    parts = (
        (1, grouped(a.answered_at >= lo, a.answered_at < hi)),
        (-1, grouped(a.answered_at >= lo, a.answered_at < hi, a.response_id.in_(early))),
        (1, grouped(a.answered_at >= hi, a.response_id.in_(late))),
    )
    for sign, rows in parts:
        for k, t, n, c in rows:
            acc = sums.setdefault(int(k), [0, 0, 0])
            acc[0] += sign * int(t or 0)
            acc[1] += sign * int(n)
            acc[2] += sign * int(c)
    out = []
    for k, (t, n, c) in sorted(sums.items()):
        if c:
            out.append((k >> 4, k & 15, t, n, c) if per_service else (0, k, t, n, c))
    return out


def _add(into: Tallies, element: int, tally: ikm.ElementTally) -> None:
    into[element] = into.get(element, ikm.ElementTally()) + tally


def _sum(parts: list[Tallies]) -> Tallies:
    out: Tallies = {}
    for part in parts:
        for e, t in part.items():
            _add(out, e, t)
    return out


def collect(db: Session, scope: str, period: Period) -> ReportData:
    """The report of one agency (its slug) or of the whole regency (``ALL``) for ``period``."""
    if scope != ALL:
        return _collect_agency(db, find_agency(db, scope), period)
    agencies = list(db.scalars(select(Agency).order_by(Agency.id)))
    parts = [_collect_agency(db, a, period) for a in agencies]
    parts = [p for p in parts if p.respondents or p.plan or any(a.active for a in agencies if a.slug == p.scope)]
    if not parts:
        raise LookupError("No agencies in the catalog yet.")
    weightings = {p.weighting for p in parts}
    weighting = weightings.pop() if len(weightings) == 1 else "exact"
    tallies = _sum([p.tallies for p in parts])
    prev_tallies = _sum([p.prev_tallies for p in parts])
    value = ikm.compute(tallies, weighting)  # type: ignore[arg-type]
    trend = []
    for i, (per, _, _) in enumerate(parts[0].trend):
        t = _sum([p.trend_tallies[i] for p in parts])
        trend.append((per, ikm.compute(t, weighting).value, sum(p.trend[i][2] for p in parts)))  # type: ignore[arg-type]
    skipped: Counter[int] = Counter()
    for p in parts:
        skipped.update(p.skipped)
    weak = []
    for e, v in focus_elements(value):
        words: list[str] = []
        themes: list[tuple[str, int]] = []
        for p in parts:
            for w in p.weak:
                if w.element == e:
                    words += [x for x in w.words if x not in words]
                    themes += w.themes
        weak.append(Weak(e, v, words[:5], sorted(themes, key=lambda t: -t[1])[:2]))
    c = Complaints()
    categories: Counter[str] = Counter()
    for p in parts:
        c.received += p.complaints.received
        c.resolved += p.complaints.resolved
        c.within_deadline += p.complaints.within_deadline
        categories.update(dict(p.complaints.by_category))
    c.by_category = sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))
    firsts = [x for p in parts for x in p.first_hours]
    days = [x for p in parts for x in p.resolution_days]
    c.median_first_response_hours = statistics.median(firsts) if firsts else None
    c.median_resolution_days = statistics.median(days) if days else None
    zone = parts[0].timezone
    start, end = period.bounds(zone)
    return ReportData(
        scope=ALL, name="", short_name="", timezone=zone, period=period, start=start, end=end,
        weighting=weighting, ikm=value, tallies=tallies, skipped=dict(skipped),
        respondents=sum(p.respondents for p in parts), complete=sum(p.complete for p in parts),
        prev_ikm=ikm.compute(prev_tallies, weighting),  # type: ignore[arg-type]
        prev_respondents=sum(p.prev_respondents for p in parts), prev_tallies=prev_tallies,
        services=[s for p in parts for s in p.services], trend=trend, weak=weak, complaints=c,
        plan=[line for p in parts for line in p.plan], agencies=parts,
        agency_ids=tuple(i for p in parts for i in p.agency_ids),
        trend_tallies=[], first_hours=firsts, resolution_days=days,
        sample=minimum_sample(sum(p.respondents for p in parts),
                              _populations(db, tuple(i for p in parts for i in p.agency_ids)),
                              _weeks(start, end)),
        profile=_profile(db, tuple(i for p in parts for i in p.agency_ids), start, end, weighting),
    )


def _collect_agency(db: Session, agency: Agency, period: Period) -> ReportData:
    weighting = agency_ikm_weights(agency)
    zone = agency_zone(agency)
    start, end = period.bounds(zone)
    tallies: Tallies = {}
    per_service: dict[int, Tallies] = {}
    respondents: Counter[int] = Counter()
    skipped: Counter[int] = Counter()
    complete = 0
    for sid, e, total, answered, count in _groups(db, agency.id, start, end):
        t = ikm.ElementTally(total, answered)
        _add(tallies, e, t)
        _add(per_service.setdefault(sid, {}), e, t)
        skipped[e] += count - answered
        if e == 1:  # every questionnaire starts at element 1 (answered or "tidak tahu")
            respondents[sid] += count
        elif e == len(ELEMENTS):  # answers are kept for elements 1..n: a ninth means all nine
            complete += count
    trend_tallies: list[Tallies] = []
    trend = []
    first = db.scalar(select(func.min(SurveyResponse.started_at)).where(SurveyResponse.agency_id == agency.id))
    for back in range(TREND_PERIODS - 1, 0, -1):
        per = period.previous(back)
        lo, hi = per.bounds(zone)
        t_tallies: Tallies = {}
        n = 0
        earlier = first is None or hi <= first  # before the first questionnaire: nothing to read
        for _, e, total, answered, count in [] if earlier else _groups(db, agency.id, lo, hi, per_service=False):
            _add(t_tallies, e, ikm.ElementTally(total, answered))
            n += count if e == 1 else 0
        trend_tallies.append(t_tallies)
        trend.append((per, ikm.compute(t_tallies, weighting).value, n))
    trend_tallies.append(tallies)
    value = ikm.compute(tallies, weighting)
    trend.append((period, value.value, sum(respondents.values())))
    services = []
    for svc in db.scalars(select(Service).where(Service.agency_id == agency.id).order_by(Service.id)):
        if not svc.active and not respondents[svc.id]:
            continue
        services.append(ServiceResult(svc.code, svc.name, agency.short_name,
                                      ikm.compute(per_service.get(svc.id, {}), weighting), respondents[svc.id]))
    rows, complaints, firsts, days = _complaints(db, agency, start, end)
    focus = focus_elements(value)
    said = weak_themes(db, agency.id, [e for e, _ in focus], start, end, rows)
    weak = [Weak(e, v, *said[e]) for e, v in focus]
    prev_start = period.previous().bounds(zone)[0]

    def nrr_between(element: int, service_id: int | None, lo: datetime, hi: datetime) -> Fraction | None:
        total = ikm.ElementTally()
        for sid, e, t, n, _ in _groups(db, agency.id, lo, hi):
            if e == element and (service_id is None or sid == service_id):
                total = total + ikm.ElementTally(t, n)
        return total.nrr

    plan: list[PlanLine] = plan_lines(db, (agency.id,), start, end, prev_start, nrr_between)
    populations = _populations(db, (agency.id,))
    return ReportData(
        scope=agency.slug, name=agency.name, short_name=agency.short_name, timezone=zone,
        period=period, start=start, end=end, weighting=weighting, ikm=value, tallies=tallies,
        skipped=dict(skipped), respondents=sum(respondents.values()), complete=int(complete),
        prev_ikm=ikm.compute(trend_tallies[-2], weighting), prev_respondents=trend[-2][2],
        prev_tallies=trend_tallies[-2], services=services, trend=trend, weak=weak,
        complaints=complaints, plan=plan, agency_ids=(agency.id,), trend_tallies=trend_tallies,
        first_hours=firsts, resolution_days=days,
        sample=minimum_sample(sum(respondents.values()), populations, _weeks(start, end)),
        profile=_profile(db, (agency.id,), start, end, weighting),
    )


def _complaints(
    db: Session, agency: Agency, start: datetime, end: datetime,
) -> tuple[list[ComplaintRow], Complaints, list[float], list[float]]:
    """Complaints received in the period and what had happened to them by its end (so the
    figures do not change when the report is rebuilt later)."""
    stats = Complaints()
    rows: list[ComplaintRow] = []
    firsts: list[float] = []
    days: list[float] = []
    categories: Counter[str] = Counter()
    stmt = (
        select(Complaint, Service.name, Contact.display_name, Case.first_response_at,
               Case.resolution_due, Service.free_by_law)
        .join(Service, Complaint.service_id == Service.id)
        .join(Contact, Complaint.contact_id == Contact.id, isouter=True)
        .join(Case, Case.complaint_id == Complaint.id, isouter=True)
        .where(Complaint.agency_id == agency.id, Complaint.created_at >= start, Complaint.created_at < end)
        .order_by(Complaint.created_at, Complaint.id)
    )
    seen: set[int] = set()
    for c, service, chat_name, first_at, due, free in db.execute(stmt):
        if c.id in seen:  # a complaint with more than one case is counted once
            continue
        seen.add(c.id)
        stats.received += 1
        categories[c.category] += 1
        text = c.description or ""
        rows.append(ComplaintRow(
            c.ticket, c.created_at, service, c.category, c.status, text, bool(c.confidential),
            about_bribery(c.category, text, bool(free)),
            tuple(n for n in (c.reporter_name, chat_name) if n),
        ))
        if first_at is not None and first_at < end:
            firsts.append((first_at - c.created_at).total_seconds() / 3600)
        if c.resolved_at is not None and c.resolved_at < end:
            stats.resolved += 1
            days.append((c.resolved_at - c.created_at).total_seconds() / 86400)
            # the one complaint limit: the case's resolution deadline (working days); a
            # complaint filed before every complaint opened a case gets the same from its filing
            limit = due if due is not None else \
                policy(agency, c.category).resolution_due(as_utc(c.created_at))
            if as_utc(c.resolved_at) <= as_utc(limit):
                stats.within_deadline += 1
    stats.by_category = sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))
    stats.median_first_response_hours = statistics.median(firsts) if firsts else None
    stats.median_resolution_days = statistics.median(days) if days else None
    return rows, stats, firsts, days


def _populations(db: Session, agency_ids: tuple[int, ...]) -> list[tuple[int, str]]:
    """(users, per period) of every active service with a population in the catalog."""
    return [(int(n or 0), str(per)) for n, per in db.execute(
        select(Service.population, Service.population_per).where(
            Service.agency_id.in_(agency_ids), Service.active.is_(True),
            Service.population.is_not(None), Service.population_per.is_not(None)))]


def _weeks(start: datetime, end: datetime) -> Fraction:
    """The period's length in weeks, for the population of the period."""
    return Fraction(int((end - start).total_seconds()), 7 * 24 * 3600)


def _profile(db: Session, agency_ids: tuple[int, ...], start: datetime, end: datetime,
             weighting: str) -> dict[str, list[Group]]:
    return {name: profile_breakdown(db, agency_ids, name, start, end, weighting)  # type: ignore[arg-type]
            for name in FIELD_NAMES}
