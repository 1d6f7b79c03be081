"""What one periodic report says: the figures for a (scope, period), read by every renderer.

Kept apart from the queries so the text, PDF and spreadsheet depend only on these shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

from bot.reports.ikm import ElementTally, Ikm
from bot.reports.periodic.period import Period
from bot.reports.profile import Group
from bot.reports.sample import Sample

TREND_PERIODS = 6  # the trend chart: this period and the five before it
WEAKEST_COUNT = 3


@dataclass
class ServiceResult:
    code: str
    name: str
    agency: str  # short name of the agency (the regency report lists every agency's services)
    ikm: Ikm
    respondents: int


@dataclass
class Weak:
    """A weak element and what residents said about it (masked; confidential never quoted)."""

    element: int
    nrr: Fraction
    words: list[str]
    themes: list[tuple[str, int]]


@dataclass
class PlanLine:
    """One action of the follow-up plan as the report shows it."""

    id: int
    element: int
    service: str | None  # None: every service
    what: str
    who: str
    due_on: date
    status: str  # as at the end of the period: planned | in_progress | done
    done_text: str | None
    done_at: datetime | None
    # For an action finished before this period: the element's NRR in the period it was done
    # and in this one (did it move?); None when either has no answers.
    nrr_before: Fraction | None = None
    nrr_after: Fraction | None = None


@dataclass
class Complaints:
    received: int = 0
    resolved: int = 0  # of those received, resolved before the period ended
    within_deadline: int = 0  # resolved within their deadline (case deadline, else SLA days)
    median_first_response_hours: float | None = None
    median_resolution_days: float | None = None
    by_category: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class ReportData:
    scope: str  # agency slug, or "*" for the regency
    name: str
    short_name: str
    timezone: str
    period: Period
    start: datetime
    end: datetime
    weighting: str
    ikm: Ikm
    tallies: dict[int, ElementTally]
    skipped: dict[int, int]
    respondents: int
    complete: int  # questionnaires with all nine elements
    prev_ikm: Ikm
    prev_respondents: int
    prev_tallies: dict[int, ElementTally]
    services: list[ServiceResult]
    trend: list[tuple[Period, Decimal | None, int]]  # oldest first
    weak: list[Weak]
    complaints: Complaints
    plan: list[PlanLine]
    # Method and sample: respondents against the Krejcie-Morgan minimum of the period (no
    # population in the catalog: no minimum), and the respondent profile, groups under 5 hidden.
    sample: Sample | None = None
    profile: dict[str, list[Group]] = field(default_factory=dict)
    agencies: list[ReportData] = field(default_factory=list)  # the regency report: each agency
    agency_ids: tuple[int, ...] = ()
    # Inputs of the regency's sums (not shown): each trend period's tallies, the complaints'
    # hours to first response and days to resolution.
    trend_tallies: list[dict[int, ElementTally]] = field(default_factory=list)
    first_hours: list[float] = field(default_factory=list)
    resolution_days: list[float] = field(default_factory=list)
