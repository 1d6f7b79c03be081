"""The open data figures: IKM and complaint aggregates per agency, service and period.

Only aggregates leave this module, never a row about one person. The under-5 rule: a figure
computed from 1 to 4 respondents or complaints is published as null and its column is named in
the row's ``suppressed`` list (0 is shown: an empty cell protects nobody); ``complement`` then
withholds one more count where a single withheld one could be derived from the agency total. The IKM itself is
``bot.reports.ikm`` with the agency's own weighting, exactly what the weekly digest prints.

Each agency's periods are its own local days (``periods.Period.bounds`` in the agency's zone);
one grouped statement per agency and period reads the answers, a few more the complaints.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.catalog import agency_ikm_weights, agency_zone
from bot.reports import ikm
from bot.storage.models import Agency, Case, Complaint, Service, SurveyAnswer
from bot.web.opendata.periods import Period, default_periods

log = logging.getLogger(__name__)

MIN_COUNT = 5  # the under-5 rule of issue 15
DEFAULT_SLA_DAYS = 14  # the digest's default deadline (bot/reports/digest/model.py)
ELEMENTS = ikm.ELEMENT_COUNT

SUPPRESSED = ("Columns withheld by the under-5 rule, or withheld so that another one cannot be "
              "derived from the agency total (space-separated in CSV, a list in JSON)")
_COMMON = {
    "agency": "Agency slug (as in the bot's catalog)",
    "agency_name": "Agency name",
    "service": "Service code; empty on the agency's total row",
    "service_name": "Service name; empty on the agency's total row",
    "period": "Period label: 2026-W47 (ISO week), 2026-11 (month), 2026-Q4, 2026-S2 (semester), 2026",
    "period_start": "First local day of the period (agency's time zone), YYYY-MM-DD",
    "period_end": "Last local day of the period (included), YYYY-MM-DD",
}
IKM_COLUMNS: dict[str, str] = {
    **_COMMON,
    "weighting": "Element weighting the agency uses: exact (1/9), 0.111 or 0.11",
    "respondents": "Questionnaires started in the period (element 1 answered or skipped); "
                   "null when withheld",
    "ikm": "Indeks Kepuasan Masyarakat, 25.00-100.00, PermenPANRB 14/2017; null when suppressed "
           "or when an element has no answer",
    "grade": "Mutu pelayanan A-D of the IKM",
    "grade_label": "Sangat Baik, Baik, Kurang Baik, Tidak Baik",
    **{f"nrr_{e}": f"NRR of element U{e} (1.000-4.000); null when fewer than 5 answered it"
       for e in range(1, ELEMENTS + 1)},
    "status": "ok | suppressed (1-4 respondents) | no_data (none) | incomplete (an element has no answer)",
    "suppressed": SUPPRESSED,
}
COMPLAINT_COLUMNS: dict[str, str] = {
    **_COMMON,
    "received": "Complaints filed in the period (confidential ones included)",
    "confidential": "Of those, complaints whose reporter asked for confidentiality",
    "resolved": "Complaints resolved in the period (whenever filed)",
    "resolved_on_time": "Of those, resolved by their deadline (the case's working-time deadline, "
                        "else the agency's complaint_sla_days after filing)",
    "resolved_on_time_share": "resolved_on_time / resolved, 0-1, three decimals",
    "open_at_end": "Complaints filed before the period ended and not resolved by then",
    "median_first_response_hours": "Median hours from a complaint's case opening to staff's "
                                   "first response, complaints filed in the period",
    "median_resolution_days": "Median days from filing to resolution, complaints resolved in the period",
    "suppressed": SUPPRESSED,
}


def _small(n: int) -> bool:
    return 0 < n < MIN_COUNT


def _agencies(db: Session, agency: str | None) -> list[Agency]:
    stmt = select(Agency).where(Agency.active.is_(True)).order_by(Agency.slug)
    if agency:
        stmt = stmt.where(Agency.slug == agency)
    return list(db.scalars(stmt))


def _services(db: Session, agency_id: int) -> list[Service]:
    return list(db.scalars(select(Service).where(Service.agency_id == agency_id).order_by(Service.id)))


def _head(agency: Agency, svc: Service | None, period: Period) -> dict[str, Any]:
    return {
        "agency": agency.slug, "agency_name": agency.name,
        "service": svc.code if svc else "", "service_name": svc.name if svc else "",
        "period": period.label, "period_start": period.first.isoformat(),
        "period_end": (period.end - timedelta(days=1)).isoformat(),
    }


def _periods_for(agency: Agency, wanted: list[Period] | None, now: datetime) -> list[Period]:
    return wanted or default_periods(now, agency_zone(agency))


# --- IKM ---------------------------------------------------------------------------------

def ikm_rows(db: Session, wanted: list[Period] | None, now: datetime,
             agency: str | None = None) -> list[dict[str, Any]]:
    """One row per agency (service "") and per service, for every period asked (default: the
    current and previous quarter); a service without respondents is listed only while active."""
    rows: list[dict[str, Any]] = []
    a = SurveyAnswer
    for ag in _agencies(db, agency):
        weighting = agency_ikm_weights(ag)
        zone = agency_zone(ag)
        services = _services(db, ag.id)
        for period in _periods_for(ag, wanted, now):
            lo, hi = period.bounds(zone)
            tallies: dict[int | None, dict[int, ikm.ElementTally]] = defaultdict(dict)
            respondents: Counter[int | None] = Counter()
            stmt = (
                select(a.service_id, a.element, func.coalesce(func.sum(a.score), 0),
                       func.count(a.score), func.count())
                .where(a.agency_id == ag.id, a.answered_at >= lo, a.answered_at < hi)
                .group_by(a.service_id, a.element)
            )
            for service_id, element, total, answered, count in db.execute(stmt):
                tally = ikm.ElementTally(int(total or 0), int(answered))
                for key in (service_id, None):
                    per = tallies[key]
                    per[element] = per.get(element, ikm.ElementTally()) + tally
                    if element == 1:
                        respondents[key] += int(count)
            rows.append(_ikm_row(_head(ag, None, period), weighting, tallies[None], respondents[None]))
            for svc in services:
                if svc.active or respondents[svc.id]:
                    rows.append(_ikm_row(_head(ag, svc, period), weighting,
                                         tallies[svc.id], respondents[svc.id]))
    return complement(rows, ("respondents",))


def _ikm_row(head: dict[str, Any], weighting: ikm.Weighting,
             tallies: dict[int, ikm.ElementTally], respondents: int) -> dict[str, Any]:
    row: dict[str, Any] = {**head, "weighting": weighting, "respondents": respondents,
                           "ikm": None, "grade": None, "grade_label": None}
    row.update({f"nrr_{e}": None for e in range(1, ELEMENTS + 1)})
    suppressed: list[str] = []
    if respondents == 0:
        row["status"] = "no_data"
    elif respondents < MIN_COUNT:
        row["respondents"] = None
        row["status"] = "suppressed"
        suppressed = ["respondents", "ikm", "grade", "grade_label",
                      *(f"nrr_{e}" for e in range(1, ELEMENTS + 1))]
    else:
        result = ikm.compute(tallies, weighting)
        for e in range(1, ELEMENTS + 1):
            t = tallies.get(e, ikm.ElementTally())
            if _small(t.answered):
                suppressed.append(f"nrr_{e}")
            elif t.nrr is not None:
                row[f"nrr_{e}"] = round(float(t.nrr), 3)
        if result.value is None:
            row["status"] = "incomplete"
        else:
            row.update(ikm=float(result.value), grade=result.grade, grade_label=result.label, status="ok")
    row["suppressed"] = suppressed
    return row


# --- complaints --------------------------------------------------------------------------

COUNTS = ("received", "confidential", "resolved", "resolved_on_time", "open_at_end")


def sla_days(agency: Agency) -> int:
    """The agency's complaint deadline in days (settings ``complaint_sla_days``), as the digest."""
    try:
        days = int((agency.settings or {}).get("complaint_sla_days", DEFAULT_SLA_DAYS))
    except (TypeError, ValueError):
        return DEFAULT_SLA_DAYS
    return days if days > 0 else DEFAULT_SLA_DAYS


def first_cases() -> Any:
    """Per complaint: its earliest case's opening, first response and resolution deadline."""
    return (
        select(Case.complaint_id.label("complaint_id"),
               func.min(Case.created_at).label("opened"),
               func.min(Case.first_response_at).label("first_response"),
               func.min(Case.resolution_due).label("due"))
        .where(Case.complaint_id.is_not(None))
        .group_by(Case.complaint_id)
        .subquery()
    )


def complaint_rows(db: Session, wanted: list[Period] | None, now: datetime,
                   agency: str | None = None) -> list[dict[str, Any]]:
    """One row per agency (service "") and per service, for every period asked."""
    rows: list[dict[str, Any]] = []
    c = Complaint
    cases = first_cases()
    for ag in _agencies(db, agency):
        zone = agency_zone(ag)
        services = _services(db, ag.id)
        sla = timedelta(days=sla_days(ag))
        for period in _periods_for(ag, wanted, now):
            lo, hi = period.bounds(zone)
            received: Counter[int | None] = Counter()
            confidential: Counter[int | None] = Counter()
            first_hours: dict[int | None, list[float]] = defaultdict(list)
            for sid, conf, opened, first in db.execute(
                select(c.service_id, c.confidential, cases.c.opened, cases.c.first_response)
                .join(cases, cases.c.complaint_id == c.id, isouter=True)
                .where(c.agency_id == ag.id, c.created_at >= lo, c.created_at < hi)
            ):
                for key in (sid, None):
                    received[key] += 1
                    confidential[key] += bool(conf)
                    if opened is not None and first is not None:
                        first_hours[key].append((first - opened).total_seconds() / 3600)
            resolved: Counter[int | None] = Counter()
            on_time: Counter[int | None] = Counter()
            days: dict[int | None, list[float]] = defaultdict(list)
            for sid, created, done, due in db.execute(
                select(c.service_id, c.created_at, c.resolved_at, cases.c.due)
                .join(cases, cases.c.complaint_id == c.id, isouter=True)
                .where(c.agency_id == ag.id, c.resolved_at >= lo, c.resolved_at < hi)
            ):
                deadline = due if due is not None else created + sla
                for key in (sid, None):
                    resolved[key] += 1
                    on_time[key] += done <= deadline
                    days[key].append((done - created).total_seconds() / 86400)
            open_end: Counter[int | None] = Counter()
            for sid, n in db.execute(
                select(c.service_id, func.count())
                .where(c.agency_id == ag.id, c.created_at < hi,
                       c.resolved_at.is_(None) | (c.resolved_at >= hi))
                .group_by(c.service_id)
            ):
                open_end[sid] += int(n)
                open_end[None] += int(n)

            def row(svc: Service | None, key: int | None) -> dict[str, Any]:
                return _complaint_row(_head(ag, svc, period), received[key], confidential[key],  # noqa: B023
                                      resolved[key], on_time[key], open_end[key],  # noqa: B023
                                      first_hours[key], days[key])  # noqa: B023

            rows.append(row(None, None))
            rows.extend(row(svc, svc.id) for svc in services
                        if svc.active or received[svc.id] or resolved[svc.id] or open_end[svc.id])
    return complement(rows, COUNTS)


def _complaint_row(head: dict[str, Any], received: int, confidential: int, resolved: int,
                   on_time: int, open_end: int, first_hours: list[float],
                   days: list[float]) -> dict[str, Any]:
    row: dict[str, Any] = {
        **head, "received": received, "confidential": confidential, "resolved": resolved,
        "resolved_on_time": on_time, "resolved_on_time_share": None, "open_at_end": open_end,
        "median_first_response_hours": None, "median_resolution_days": None,
    }
    suppressed = [k for k in ("received", "confidential", "resolved", "resolved_on_time", "open_at_end")
                  if _small(row[k])]
    for k in suppressed:
        row[k] = None
    if resolved >= MIN_COUNT and not _small(on_time):
        row["resolved_on_time_share"] = round(on_time / resolved, 3)
    elif resolved:
        suppressed.append("resolved_on_time_share")
    for column, values, digits in (("median_first_response_hours", first_hours, 1),
                                   ("median_resolution_days", days, 2)):
        if len(values) >= MIN_COUNT:
            row[column] = round(statistics.median(values), digits)
        elif values:
            suppressed.append(column)
    row["suppressed"] = suppressed
    return row



def complement(rows: list[dict[str, Any]], counts: tuple[str, ...]) -> list[dict[str, Any]]:
    """Complementary suppression within one agency and period.

    When a single service row withholds a count, that count is the agency total minus the shown
    services. Then the smallest shown non-zero count of another service is withheld too; when
    there is none, the agency total is. (Across periods, e.g. a quarter against its months,
    nothing is done.)
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["agency"], r["period"])].append(r)
    for group in groups.values():
        total = next(r for r in group if not r["service"])
        services = [r for r in group if r["service"]]
        for column in counts:
            hidden = [r for r in services if column in r["suppressed"]]
            if len(hidden) != 1 or total[column] is None:
                continue
            shown = [r for r in services if r[column]]
            target = min(shown, key=lambda r: (r[column], r["service"])) if shown else total
            target[column] = None
            target["suppressed"].append(column)
    return rows
