"""What one digest says: the figures collected for an (agency, week), read by every renderer.

Kept apart from the queries so the text, chart and spreadsheet depend only on these shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

from bot.reports import ikm
from bot.reports.periodic.model import PlanLine
from bot.reports.sample import Sample

TREND_WEEKS = 12
FOCUS_COUNT = 3


@dataclass
class ServiceIkm:
    code: str
    name: str
    week: ikm.Ikm
    ytd: ikm.Ikm
    respondents_week: int
    respondents_ytd: int
    name_en: str = ""  # the English name, when the catalog gives one

    def title(self, lang: str) -> str:
        return self.name_en if lang == "en" and self.name_en else self.name


@dataclass
class Focus:
    element: int
    nrr: Fraction
    words: list[str]
    themes: list[tuple[str, int]]


@dataclass
class ComplaintRow:
    ticket: str
    created_at: datetime
    service: str
    category: str
    status: str
    description: str
    confidential: bool  # its text never leaves the desk: counted here, never shown
    bribery: bool
    names: tuple[str, ...] = ()  # the reporter's own names (stored name, chat name): masked


@dataclass
class ComplaintStats:
    new: int = 0
    resolved: int = 0
    open: int = 0
    overdue: int = 0  # unresolved past their case's resolution limit (bot/desk/deadlines.py)
    overdue_cases: int = 0  # cases in human review past a working-time limit (bot/desk/deadlines.py)
    by_category: list[tuple[str, int]] = field(default_factory=list)
    by_service: list[tuple[str, int]] = field(default_factory=list)
    median_days: float | None = None
    names_en: dict[str, str] = field(default_factory=dict)  # Indonesian service name -> English
    rows: list[ComplaintRow] = field(default_factory=list)

    @property
    def bribery(self) -> list[ComplaintRow]:
        return [r for r in self.rows if r.bribery]

    @property
    def bribery_shown(self) -> list[ComplaintRow]:
        """Bribery reports whose text may be quoted (confidential ones are only counted)."""
        return [r for r in self.bribery if not r.confidential]


@dataclass
class KioskLine:
    """One kiosk's questionnaires in the week; ``burst``: the most in one hour and when that hour
    began, when above bot/reports/digest/kiosks.BURST_PER_HOUR."""

    name: str
    service: str
    service_en: str
    count: int
    burst: tuple[int, datetime] | None = None


@dataclass
class DigestData:
    agency_id: int
    slug: str
    name: str
    short_name: str
    timezone: str
    week: str
    start: datetime
    end: datetime
    ytd_from: date  # Monday of the first ISO week of the year
    week_ikm: ikm.Ikm
    prev_ikm: ikm.Ikm
    ytd_ikm: ikm.Ikm
    week_tallies: dict[int, ikm.ElementTally]
    skipped_week: dict[int, int]
    respondents_week: int
    respondents_prev: int
    respondents_ytd: int
    services: list[ServiceIkm]
    trend: list[tuple[date, Decimal | None, int]]  # (Monday, IKM, respondents), oldest first
    focus: list[Focus]  # elements below grade A, lowest first (empty: none below it)
    complaints: ComplaintStats
    weighting: str = "exact"  # the agency's ikm_weights: exact | 0.111 | 0.11
    # Respondents against the Krejcie-Morgan minimum (bot/reports/sample.py) of the week, the
    # week before and the year to date; no population in the catalog: no minimum.
    sample_week: Sample | None = None
    sample_prev: Sample | None = None
    sample_ytd: Sample | None = None

    @property
    def trend_ok(self) -> bool:
        """A change between the two weeks may be claimed: both have enough respondents."""
        return all(s is None or s.trend_ok for s in (self.sample_week, self.sample_prev))
    plans: list[PlanLine] = field(default_factory=list)  # follow-up actions open or done this week
    kiosks: list[KioskLine] = field(default_factory=list)  # the agency's counter tablets (bot/web/kiosk)
