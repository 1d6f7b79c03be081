"""The digest's figures from SQL: one grouped scan of the agency's answers, then Python sums.

One GROUP BY over the answers of the agency (per service, element and agency-local week of
``counted_at``, the questionnaire's first answer, so a questionnaire is never split)
returns a few thousand rows at most, from which the week, the previous week, the year to date,
every service and the 12-week trend are summed. No Python loop ever walks the individual
answers, so the digest costs about one scan of the agency's rows. Complaints of the week and
the themes of the weakest elements come from a few more small queries.
"""

from __future__ import annotations

import itertools
import logging
import statistics
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from bot.catalog import agency_ikm_weights, agency_zone
from bot.desk.deadlines import overdue_complaints, overdue_count
from bot.reports import ikm
from bot.reports.digest.kiosks import kiosk_lines
from bot.reports.digest.model import (
    FOCUS_COUNT,
    TREND_WEEKS,
    ComplaintRow,
    ComplaintStats,
    DigestData,
    Focus,
    ServiceIkm,
)
from bot.reports.digest.period import local_midnight_utc, week_monday
from bot.reports.digest.themes import element_themes
from bot.reports.periodic.plan import plan_lines
from bot.reports.sample import PERIODS, minimum_sample
from bot.storage.models import Agency, Complaint, Contact, Service, SurveyAnswer
from flows.helpers.triggers import about_bribery

log = logging.getLogger(__name__)




def find_agency(db: Session, slug: str) -> Agency:
    agency = db.scalars(select(Agency).where(Agency.slug == slug)).first()
    if agency is None:
        known = ", ".join(db.scalars(select(Agency.slug).order_by(Agency.slug)))
        raise LookupError(f"Unknown agency {slug!r}. Known agencies: {known or '(none)'}.")
    return agency


def _bucket(col: Any, dialect: str, bounds: list[datetime]) -> tuple[ColumnElement[Any], Callable[[Any], int]]:
    """A PostgreSQL expression for the local week of a stored UTC time (0 = oldest week).

    Indonesian zones have a fixed offset, so every local week is exactly 7 x 24 h of UTC and
    ``date_bin`` finds it cheaply; a zone with daylight saving gets a CASE over the real
    boundaries instead.
    """
    origin = bounds[0]
    week = timedelta(days=7)
    if any(b - origin != week * i for i, b in enumerate(bounds)):
        whens = [(col >= b.replace(tzinfo=None), i) for i, b in reversed(list(enumerate(bounds[:-1])))]
        return case(*whens, else_=0), int
    naive = origin.replace(tzinfo=None)
    # date - date is whole days, so the week number comes back as an integer
    binned = cast(func.date_bin(literal_column("interval '7 days'"), col, literal(naive, DateTime())), Date)
    return (binned - literal(naive.date(), Date())).op("/", precedence=8)(7), int


def _answer_groups(
    db: Session, dialect: str, agency_id: int, bounds: list[datetime]
) -> list[tuple[int, int, int, int, int, int]]:
    """(service, element, week, sum of scores, answered, all rows) for the agency's answers.

    PostgreSQL hash-aggregates the whole range in one statement. SQLite groups by sorting, and
    one sort of millions of rows spills to disk, so there each week is one statement over its
    exact [Monday, Monday) range with (service, element) packed into one integer key: every
    sort stays small and in memory, and no per-row date arithmetic is needed at all.
    """
    a = SurveyAnswer
    aggregates = (func.coalesce(func.sum(a.score), 0), func.count(a.score), func.count())
    if dialect == "sqlite":
        key = (a.service_id * 16 + a.element).label("k")
        out = []
        for week, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            stmt = (
                select(key, *aggregates)
                .where(a.agency_id == agency_id, a.counted_at >= lo, a.counted_at < hi)
                .group_by(key)
            )
            out += [(int(k) >> 4, int(k) & 15, week, int(t or 0), int(n), int(c)) for k, t, n, c in db.execute(stmt)]
        return out
    bucket, week_of = _bucket(a.counted_at, dialect, bounds)
    where = (a.agency_id == agency_id, a.counted_at >= bounds[0], a.counted_at < bounds[-1])
    b = bucket.label("b")
    return [
        (sid, el, week_of(w), int(t or 0), int(n), int(c))
        for sid, el, w, t, n, c in db.execute(
            select(a.service_id, a.element, b, *aggregates).where(*where).group_by(a.service_id, a.element, b)
        )
    ]


def focus_elements(week_ikm: ikm.Ikm) -> list[tuple[int, Fraction]]:
    """The elements to improve: below grade A (NRR x 25 under 88.31), lowest first, at most
    FOCUS_COUNT unless more tie with the last one (a tie is never cut by the official order).
    Empty when every element reaches grade A.
    """
    bar = ikm.GRADES[0][0]
    below = [(e, v) for e, v in week_ikm.lowest(len(week_ikm.nrr)) if ikm.round2(v * 25) < bar]
    if len(below) <= FOCUS_COUNT:
        return below
    last = below[FOCUS_COUNT - 1][1]
    return [(e, v) for e, v in below if v <= last]


def collect(db: Session, agency: Agency, week: str, now: datetime | None = None) -> DigestData:
    """Everything the digest says, from a handful of grouped queries.

    The weighting is always the agency's own ``ikm_weights``, so the Monday job and
    ``bot.py digest`` print the same official number for the same week.
    """
    weighting = agency_ikm_weights(agency)
    dialect = db.get_bind().dialect.name
    zone = ZoneInfo(agency_zone(agency))
    monday = week_monday(week)
    ytd_monday = date.fromisocalendar(monday.isocalendar()[0], 1, 1)
    first = min(ytd_monday, monday - timedelta(weeks=TREND_WEEKS - 1))
    n_weeks = (monday - first).days // 7 + 1
    mondays = [first + timedelta(weeks=i) for i in range(n_weeks + 1)]
    bounds = [local_midnight_utc(d, zone) for d in mondays]
    this, prev = n_weeks - 1, n_weeks - 2
    ytd_first = (ytd_monday - first).days // 7

    rows = _answer_groups(db, dialect, agency.id, bounds)

    # Sum the small grouped result into the views the digest needs.
    Key = tuple[int | None, int]  # (service id or None for the agency, bucket)
    tallies: dict[Key, dict[int, ikm.ElementTally]] = {}
    skipped: dict[int, int] = {}
    ytd: dict[int | None, dict[int, ikm.ElementTally]] = {}
    # The questionnaire always starts at element 1 (answered or "tidak tahu"), so its rows
    # count the respondents, incomplete surveys included, without another scan.
    respondents: Counter[Key] = Counter()
    respondents_ytd: Counter[int | None] = Counter()
    for service_id, element, b, total, answered, count in rows:
        t = ikm.ElementTally(total, answered)
        for key in ((service_id, b), (None, b)):
            per = tallies.setdefault(key, {})
            per[element] = per.get(element, ikm.ElementTally()) + t
        if b >= ytd_first:
            for skey in (service_id, None):
                per = ytd.setdefault(skey, {})
                per[element] = per.get(element, ikm.ElementTally()) + t
        if b == this:
            skipped[element] = skipped.get(element, 0) + count - answered
        if element == 1:
            respondents[(service_id, b)] += count
            respondents[(None, b)] += count
            if b >= ytd_first:
                respondents_ytd[service_id] += count
                respondents_ytd[None] += count

    def ikm_of(key: Key) -> ikm.Ikm:
        return ikm.compute(tallies.get(key, {}), weighting)

    week_ikm = ikm_of((None, this))
    services = []
    populations: list[tuple[int, str]] = []
    for svc in db.scalars(select(Service).where(Service.agency_id == agency.id).order_by(Service.id)):
        if svc.active and svc.population and svc.population_per in PERIODS:
            populations.append((svc.population, svc.population_per))
        if not svc.active and not respondents_ytd[svc.id]:
            continue
        services.append(
            ServiceIkm(
                svc.code, svc.name, ikm_of((svc.id, this)), ikm.compute(ytd.get(svc.id, {}), weighting),
                respondents[(svc.id, this)], respondents_ytd[svc.id],
                str((svc.aliases or {}).get("name_en", "")),
            )
        )
    trend = [
        (mondays[b], ikm_of((None, b)).value, respondents[(None, b)])
        for b in range(n_weeks - TREND_WEEKS, n_weeks)
    ]
    start, end = bounds[this], bounds[this + 1]
    # Overdue is judged at the week's end, or now for the week still running: a deadline later
    # today is not yet missed.
    complaints = _complaints(db, agency, start, end, min(end, now) if now is not None else end)
    focus = [
        Focus(e, v, *element_themes(db, agency.id, e, start, end, complaints.rows))
        for e, v in focus_elements(week_ikm)
    ]
    return DigestData(
        agency_id=agency.id, slug=agency.slug, name=agency.name, short_name=agency.short_name,
        timezone=agency_zone(agency), week=week, start=start, end=end,
        ytd_from=ytd_monday,
        week_ikm=week_ikm, prev_ikm=ikm_of((None, prev)),
        ytd_ikm=ikm.compute(ytd.get(None, {}), weighting),
        week_tallies=tallies.get((None, this), {}), skipped_week=skipped,
        respondents_week=respondents[(None, this)], respondents_prev=respondents[(None, prev)],
        respondents_ytd=respondents_ytd[None],
        services=services, trend=trend, focus=focus, complaints=complaints,
        weighting=weighting,
        sample_week=minimum_sample(respondents[(None, this)], populations, 1),
        sample_prev=minimum_sample(respondents[(None, prev)], populations, 1),
        sample_ytd=minimum_sample(respondents_ytd[None], populations, this - ytd_first + 1),
        plans=plan_lines(db, (agency.id,), start, end, start),
        kiosks=kiosk_lines(db, agency.id, start, end),
    )


def _complaints(db: Session, agency: Agency, start: datetime, end: datetime,
                judged: datetime) -> ComplaintStats:
    stats = ComplaintStats()
    base = Complaint.agency_id == agency.id
    new_in_week = base & (Complaint.created_at >= start) & (Complaint.created_at < end)
    stats.by_category = [
        (c, int(n)) for c, n in db.execute(
            select(Complaint.category, func.count()).where(new_in_week)
            .group_by(Complaint.category).order_by(func.count().desc(), Complaint.category)
        )
    ]
    stats.by_service = [
        (name, int(n)) for name, n in db.execute(
            select(Service.name, func.count()).select_from(Complaint)
            .join(Service, Complaint.service_id == Service.id)
            .where(new_in_week).group_by(Service.name).order_by(func.count().desc(), Service.name)
        )
    ]
    stats.names_en = {
        name: str((aliases or {}).get("name_en", "")) for name, aliases in db.execute(
            select(Service.name, Service.aliases).where(Service.agency_id == agency.id))
    }
    stats.new = sum(n for _, n in stats.by_category)
    open_at_end = base & (Complaint.created_at < end) & (
        Complaint.resolved_at.is_(None) | (Complaint.resolved_at >= end)
    )
    stats.open = db.scalar(select(func.count()).select_from(Complaint).where(open_at_end)) or 0
    # one complaint limit: the resolution limit of the complaint's case (working days)
    stats.overdue = overdue_complaints(db, agency, judged)
    durations = [
        (resolved - created).total_seconds() / 86400
        for created, resolved in db.execute(
            select(Complaint.created_at, Complaint.resolved_at)
            .where(base, Complaint.resolved_at >= start, Complaint.resolved_at < end)
        )
        if resolved is not None
    ]
    stats.resolved = len(durations)
    stats.overdue_cases = overdue_count(db, agency.id, judged)
    stats.median_days = statistics.median(durations) if durations else None
    for c, svc_name, free, chat_name in db.execute(
        select(Complaint, Service.name, Service.free_by_law, Contact.display_name)
        .join(Service, Complaint.service_id == Service.id)
        .join(Contact, Complaint.contact_id == Contact.id, isouter=True)
        .where(new_in_week).order_by(Complaint.created_at, Complaint.id)
    ):
        stats.rows.append(
            ComplaintRow(
                c.ticket, c.created_at, svc_name, c.category, c.status, c.description,
                bool(c.confidential), about_bribery(c.category, c.description or "", bool(free)),
                tuple(n for n in (c.reporter_name, chat_name) if n),
            )
        )
    return stats
