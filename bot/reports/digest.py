"""The weekly digest for agency heads: official IKM, what to improve, a chart, a spreadsheet.

Aggregation happens in SQL: one GROUP BY over the answers of the agency (per service, element
and agency-local week) returns a few thousand rows at most, from which the week, the previous
week, the year to date, every service and the 12-week trend are summed. No Python loop ever
walks the individual answers, so the digest costs about one scan of the agency's rows.

A digest for (agency, ISO week) is produced once: the ``digests`` row with a unique key is
inserted in the same transaction as the outbox rows for the heads, so a second process or a
retry finds the row and does nothing, and a failure before commit leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import statistics
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz
from rapidfuzz import utils as fuzz_utils
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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.catalog import agency_zone
from bot.desk.staff import heads as agency_heads
from bot.i18n import TEXTS
from bot.reports import ikm
from bot.storage.models import (
    Agency,
    Complaint,
    Contact,
    Digest,
    OutboxMessage,
    Service,
    SurveyAnswer,
    SurveyResponse,
)
from bot.text import split_text
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096  # Telegram message
CAPTION_LIMIT = 1024  # Telegram photo/document caption
TREND_WEEKS = 12
FOCUS_COUNT = 3
THEME_TEXTS = 300  # newest texts considered per focus element: enough to see themes, bounded cost
DEFAULT_TIME = "07:30"
DEFAULT_SLA_DAYS = 14
BRIBERY_WORDS = (
    "pungli", "pungutan liar", "calo", "percaloan", "suap", "sogok", "gratifikasi", "pemerasan",
    "uang pelicin", "uang rokok", "uang bensin", "uang tips", "uang administrasi", "uang capek",
    "seikhlasnya", "terserah", "bribe", "bribery",
)
_BRIBERY = re.compile(r"\b(" + "|".join(re.escape(w) for w in BRIBERY_WORDS) + r")\b", re.IGNORECASE)
# Complaint categories that speak about one SKM element (their texts feed that element's themes).
CATEGORY_ELEMENT = {
    "penyimpangan": 2, "penundaan": 3, "pungli": 4, "tidak_kompeten": 6,
    "tidak_patut": 7, "diskriminasi": 7, "berpihak": 7, "tidak_melayani": 7,
}
STOPWORDS = frozenset(
    """yang dan di ke dari untuk dengan ini itu ada tidak tak sudah belum saya kami kita kamu anda
    agar supaya juga lebih sangat sekali karena jadi pada dalam akan bisa harus mohon tolong lagi
    atau oleh para pak bu ibu bapak nya kalau kok sih dong ya yg dg utk tdk gak ga nggak aja saja
    terlalu masih cukup sama semua hanya banyak sedikit kurang baik bagus the and to of a is in
    for it be please not very too""".split()  # noqa: SIM905 - a word list reads better as prose
)

_NIK = re.compile(r"(?<!\d)(\d{4})\d{8}(\d{4})(?!\d)")
_PHONE = re.compile(r"(?<![\d+])(\+62|62|0)[\s.-]?(8(?:[\s.-]?\d){7,11})(?!\d)")


def mask_personal(text: str) -> str:
    """Mask NIK (16 digits) and Indonesian mobile numbers (08..., +62..., 62...) in free text.

    The operator prefix (0812, +62812) and the last two digits stay, enough to tell numbers
    apart in a spreadsheet, not enough to call anyone.
    """
    text = _NIK.sub(lambda m: m.group(1) + "*" * 8 + m.group(2), text)

    def phone(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(2))
        return m.group(1) + digits[:3] + "*" * 6 + digits[-2:]

    return _PHONE.sub(phone, text)


# ---------------------------------------------------------------- weeks in agency-local time


def parse_week(week: str) -> tuple[int, int]:
    """``2026-W47`` -> (2026, 47); raises ValueError with a clear message."""
    m = re.fullmatch(r"(\d{4})-?W(\d{1,2})", week.strip().upper())
    if not m:
        raise ValueError(f"week must look like 2026-W47, got {week!r}")
    year, num = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, num, 1)
    except ValueError:
        raise ValueError(f"{year} has no ISO week {num}") from None
    return year, num


def week_label(monday: date) -> str:
    year, num, _ = monday.isocalendar()
    return f"{year}-W{num:02d}"


def week_monday(week: str) -> date:
    year, num = parse_week(week)
    return date.fromisocalendar(year, num, 1)


def local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def week_bounds(week: str, tz: str) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) in the agency's zone, as aware UTC datetimes."""
    zone = ZoneInfo(tz)
    monday = week_monday(week)
    return local_midnight_utc(monday, zone), local_midnight_utc(monday + timedelta(days=7), zone)


def previous_week(now: datetime, tz: str) -> str:
    """The last complete week (Monday-Sunday) before ``now`` in the agency's zone."""
    today = now.astimezone(ZoneInfo(tz)).date()
    monday = today - timedelta(days=today.weekday())
    return week_label(monday - timedelta(days=7))


# ---------------------------------------------------------------- collected data


@dataclass
class ServiceIkm:
    code: str
    name: str
    week: ikm.Ikm
    ytd: ikm.Ikm
    respondents_week: int
    respondents_ytd: int


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
    confidential: bool
    bribery: bool


@dataclass
class ComplaintStats:
    new: int = 0
    resolved: int = 0
    open: int = 0
    overdue: int = 0
    overdue_cases: int = 0  # cases in human review past a working-time limit (bot/cases.py)
    sla_days: int = DEFAULT_SLA_DAYS
    by_category: list[tuple[str, int]] = field(default_factory=list)
    by_service: list[tuple[str, int]] = field(default_factory=list)
    median_days: float | None = None
    rows: list[ComplaintRow] = field(default_factory=list)

    @property
    def bribery(self) -> list[ComplaintRow]:
        return [r for r in self.rows if r.bribery]


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
    ytd_from: str
    week_ikm: ikm.Ikm
    prev_ikm: ikm.Ikm
    ytd_ikm: ikm.Ikm
    week_tallies: dict[int, ikm.ElementTally]
    skipped_week: dict[int, int]
    respondents_week: int
    respondents_prev: int
    respondents_ytd: int
    services: list[ServiceIkm]
    trend: list[tuple[str, Decimal | None, int]]
    focus: list[Focus]
    complaints: ComplaintStats


# ---------------------------------------------------------------- SQL aggregation


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
                .where(a.agency_id == agency_id, a.answered_at >= lo, a.answered_at < hi)
                .group_by(key)
            )
            out += [(int(k) >> 4, int(k) & 15, week, int(t or 0), int(n), int(c)) for k, t, n, c in db.execute(stmt)]
        return out
    bucket, week_of = _bucket(a.answered_at, dialect, bounds)
    where = (a.agency_id == agency_id, a.answered_at >= bounds[0], a.answered_at < bounds[-1])
    b = bucket.label("b")
    return [
        (sid, el, week_of(w), int(t or 0), int(n), int(c))
        for sid, el, w, t, n, c in db.execute(
            select(a.service_id, a.element, b, *aggregates).where(*where).group_by(a.service_id, a.element, b)
        )
    ]


def collect(db: Session, agency: Agency, week: str, weighting: ikm.Weighting = "exact") -> DigestData:
    """Everything the digest says, from a handful of grouped queries."""
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
    for svc in db.scalars(select(Service).where(Service.agency_id == agency.id).order_by(Service.id)):
        if not svc.active and not respondents_ytd[svc.id]:
            continue
        services.append(
            ServiceIkm(
                svc.code, svc.name, ikm_of((svc.id, this)), ikm.compute(ytd.get(svc.id, {}), weighting),
                respondents[(svc.id, this)], respondents_ytd[svc.id],
            )
        )
    trend = [
        (week_label(mondays[b]), ikm_of((None, b)).value, respondents[(None, b)])
        for b in range(n_weeks - TREND_WEEKS, n_weeks)
    ]
    start, end = bounds[this], bounds[this + 1]
    complaints = _complaints(db, agency, start, end)
    focus = [
        Focus(e, v, *_themes(db, agency.id, e, start, end, complaints.rows))
        for e, v in week_ikm.lowest(FOCUS_COUNT)
    ]
    return DigestData(
        agency_id=agency.id, slug=agency.slug, name=agency.name, short_name=agency.short_name,
        timezone=agency_zone(agency), week=week, start=start, end=end,
        ytd_from=week_label(ytd_monday),
        week_ikm=week_ikm, prev_ikm=ikm_of((None, prev)),
        ytd_ikm=ikm.compute(ytd.get(None, {}), weighting),
        week_tallies=tallies.get((None, this), {}), skipped_week=skipped,
        respondents_week=respondents[(None, this)], respondents_prev=respondents[(None, prev)],
        respondents_ytd=respondents_ytd[None],
        services=services, trend=trend, focus=focus, complaints=complaints,
    )


def _complaints(db: Session, agency: Agency, start: datetime, end: datetime) -> ComplaintStats:
    try:
        sla = int((agency.settings or {}).get("complaint_sla_days", DEFAULT_SLA_DAYS))
    except (TypeError, ValueError):
        log.error("agency %s: bad complaint_sla_days, using %d", agency.slug, DEFAULT_SLA_DAYS)
        sla = DEFAULT_SLA_DAYS
    stats = ComplaintStats(sla_days=sla)
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
    stats.new = sum(n for _, n in stats.by_category)
    open_at_end = base & (Complaint.created_at < end) & (
        Complaint.resolved_at.is_(None) | (Complaint.resolved_at >= end)
    )
    stats.open = db.scalar(select(func.count()).select_from(Complaint).where(open_at_end)) or 0
    stats.overdue = db.scalar(
        select(func.count()).select_from(Complaint)
        .where(open_at_end, Complaint.created_at < end - timedelta(days=sla))
    ) or 0
    durations = [
        (resolved - created).total_seconds() / 86400
        for created, resolved in db.execute(
            select(Complaint.created_at, Complaint.resolved_at)
            .where(base, Complaint.resolved_at >= start, Complaint.resolved_at < end)
        )
        if resolved is not None
    ]
    stats.resolved = len(durations)
    from bot.desk.cases import overdue_count

    stats.overdue_cases = overdue_count(db, agency.id, end)
    stats.median_days = statistics.median(durations) if durations else None
    for c, svc_name in db.execute(
        select(Complaint, Service.name).join(Service, Complaint.service_id == Service.id)
        .where(new_in_week).order_by(Complaint.created_at, Complaint.id)
    ):
        stats.rows.append(
            ComplaintRow(
                c.ticket, c.created_at, svc_name, c.category, c.status, c.description,
                c.confidential, c.category == "pungli" or bool(_BRIBERY.search(c.description)),
            )
        )
    return stats


def _themes(
    db: Session, agency_id: int, element: int, start: datetime, end: datetime,
    complaints: list[ComplaintRow],
) -> tuple[list[str], list[tuple[str, int]]]:
    """Frequent words and groups of similar texts among suggestions of residents who rated this
    element 1 or 2 this week, and complaints whose category concerns the element."""
    texts = list(
        db.scalars(
            select(SurveyResponse.suggestion)
            .join(SurveyAnswer, SurveyAnswer.response_id == SurveyResponse.id)
            .where(SurveyResponse.agency_id == agency_id, SurveyResponse.started_at >= start,
                   SurveyResponse.started_at < end, SurveyResponse.suggestion.is_not(None),
                   SurveyAnswer.element == element, SurveyAnswer.score <= 2)
            .order_by(SurveyResponse.id.desc()).limit(THEME_TEXTS)
        )
    )
    texts += [c.description for c in complaints if CATEGORY_ELEMENT.get(c.category) == element]
    return top_words(texts), group_similar(texts)


def top_words(texts: Iterable[str | None], n: int = 5) -> list[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        words = set(re.findall(r"[a-z]{3,}", (text or "").lower()))
        counts.update(w for w in words if w not in STOPWORDS)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [w for w, c in ranked[:n] if c >= 2]


def group_similar(texts: Iterable[str | None], threshold: float = 70, n: int = 2) -> list[tuple[str, int]]:
    """Greedy grouping of similar texts (rapidfuzz token-set ratio); groups of two or more."""
    groups: list[tuple[str, str, int]] = []  # (processed representative, original, count)
    for text in texts:
        if not text:
            continue
        proc = fuzz_utils.default_process(text)
        if not proc:
            continue
        for i, (rep, original, count) in enumerate(groups):
            if fuzz.token_set_ratio(proc, rep) >= threshold:
                groups[i] = (rep, original, count + 1)
                break
        else:
            groups.append((proc, text, 1))
    ranked = sorted((g for g in groups if g[2] >= 2), key=lambda g: -g[2])[:n]
    return [(_short(mask_personal(original), 70), count) for _, original, count in ranked]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------- text


class _Fmt:
    def __init__(self, texts: Texts, lang: str) -> None:
        self.texts = texts
        self.lang = lang

    def t(self, key: str, **params: Any) -> str:
        return self.texts(self.lang, key, **params)

    def num(self, value: Decimal | Fraction | float, places: int = 2) -> str:
        s = f"{float(value):,.{places}f}" if not isinstance(value, Decimal) else f"{value:,.{places}f}"
        if self.lang == "id":
            s = s.replace(",", "_").replace(".", ",").replace("_", ".")
        return s

    def count(self, n: int) -> str:
        s = f"{n:,}"
        return s.replace(",", ".") if self.lang == "id" else s

    def element(self, e: int) -> str:
        return self.t(f"skm.{ELEMENTS[e - 1]}.name")

    def ikm(self, value: ikm.Ikm) -> str:
        if value.value is None:
            return self.t("digest.ikm_none")
        return self.t("digest.ikm_value", value=self.num(value.value), grade=value.grade,
                      label=self.t(f"digest.grade.{value.grade}"))

    def day(self, when: datetime, tz: str) -> str:
        d = when.astimezone(ZoneInfo(tz))
        return f"{d.day} {self.t(f'digest.month.{d.month}')} {d.year}"


def render_text(data: DigestData, lang: str = "id", texts: Texts = TEXTS) -> str:
    """The digest as plain text for a phone screen (split into messages by :func:`split_text`)."""
    f = _Fmt(texts, lang)
    tz = ZoneInfo(data.timezone)
    last_day = data.end - timedelta(days=1)
    parts: list[str] = [
        f.t("digest.title", agency=data.short_name) + "\n" + f.t(
            "digest.period", week=data.week, start=f.day(data.start, data.timezone),
            end=f.day(last_day, data.timezone), zone=data.start.astimezone(tz).tzname() or data.timezone,
        )
    ]
    bribery = data.complaints.bribery
    if bribery:
        items = "\n".join(
            f"• {r.ticket} ({r.service}): {_short(mask_personal(r.description), 80)}" for r in bribery[:5]
        )
        more = f.t("digest.more", n=len(bribery) - 5) if len(bribery) > 5 else ""
        parts.append(f.t("digest.bribery", n=len(bribery)) + "\n" + items + more)

    w, p = data.week_ikm, data.prev_ikm
    if data.respondents_week == 0 and not data.week_tallies:
        parts.append(f.t("digest.no_responses"))
    else:
        lines = [f.t("digest.ikm_week", ikm=f.ikm(w), n=f.count(data.respondents_week))]
        if w.missing:
            lines.append(f.t("digest.ikm_missing", elements=", ".join(f.element(e) for e in w.missing)))
        if w.value is not None and p.value is not None:
            delta = w.value - p.value
            key = "digest.change_up" if delta > 0 else "digest.change_down" if delta < 0 else "digest.change_same"
            lines.append(f.t(key, prev=f.num(p.value), delta=f.num(abs(delta))))
        else:
            lines.append(f.t("digest.change_none"))
        parts.append("\n".join(lines))
    parts.append(f.t("digest.ikm_ytd", since=data.ytd_from, ikm=f.ikm(data.ytd_ikm),
                     n=f.count(data.respondents_ytd)))

    if data.focus:
        lines = [f.t("digest.focus")]
        for i, fo in enumerate(data.focus, 1):
            lines.append(f"{i}. {f.element(fo.element)}: NRR {f.num(fo.nrr)}")
            if fo.words:
                lines.append("   " + f.t("digest.words", words=", ".join(fo.words)))
            for theme, count in fo.themes:
                lines.append("   " + f.t("digest.theme", text=theme, n=count))
        parts.append("\n".join(lines))

    if data.week_tallies:
        lines = [f.t("digest.nrr_all")]
        for e in range(1, len(ELEMENTS) + 1):
            nrr = data.week_tallies.get(e, ikm.ElementTally()).nrr
            lines.append(f"{e}. {f.element(e)}: " + (f.num(nrr) if nrr is not None else f.t("digest.no_answers")))
        parts.append("\n".join(lines))

    rated = [s for s in data.services if s.respondents_week or s.respondents_ytd]
    if rated:
        lines = [f.t("digest.services")]
        for s in rated:
            lines.append(f.t("digest.service_line", name=s.name,
                             week=_brief(f, s.week, s.respondents_week),
                             ytd=_brief(f, s.ytd, s.respondents_ytd)))
        parts.append("\n".join(lines))

    c = data.complaints
    lines = [f.t("digest.complaints", new=c.new, resolved=c.resolved, open=c.open,
                 overdue=c.overdue, days=c.sla_days)]
    if c.overdue_cases:
        lines.append(f.t("digest.cases_overdue", n=c.overdue_cases))
    if c.median_days is not None:
        lines.append(f.t("digest.median", days=f.num(c.median_days, 1)))
    if c.by_category:
        lines.append(f.t("digest.by_category", items=", ".join(
            f"{f.t(f'cat.{cat}')} {n}" for cat, n in c.by_category)))
    if c.by_service:
        lines.append(f.t("digest.by_service", items=", ".join(f"{name} {n}" for name, n in c.by_service)))
    parts.append("\n".join(lines))
    parts.append(f.t("digest.footer"))
    return "\n\n".join(parts)


def _brief(f: _Fmt, value: ikm.Ikm, n: int) -> str:
    if not n and value.value is None:
        return "-"
    shown = f.num(value.value) + f" {value.grade}" if value.value is not None else "n/a"
    return f"{shown} ({f.count(n)})"




def caption(data: DigestData, lang: str = "id", texts: Texts = TEXTS) -> str:
    f = _Fmt(texts, lang)
    return _short(f.t("digest.caption", agency=data.short_name, week=data.week, ikm=f.ikm(data.week_ikm),
                      n=f.count(data.respondents_week)), CAPTION_LIMIT)


# ---------------------------------------------------------------- chart


def render_chart(data: DigestData, path: Path, lang: str = "id", texts: Texts = TEXTS) -> Path:
    """PNG for a phone: the nine NRR as bars over the grade bands, and the 12-week IKM trend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = _Fmt(texts, lang)
    band_colors = {"D": "#f4c7c3", "C": "#fce8b2", "B": "#d9ead3", "A": "#b7e1cd"}
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6, 9), dpi=150, gridspec_kw={"height_ratios": [3, 2]}
    )
    fig.suptitle(f.t("digest.chart.title", agency=data.short_name, week=data.week), fontsize=13,
                 fontweight="bold")
    names = [textwrap.fill(f"{e}. {f.element(e)}", 24) for e in range(1, len(ELEMENTS) + 1)]
    values = [data.week_ikm.nrr_float(e) for e in range(1, len(ELEMENTS) + 1)]
    for lo, hi, letter in ikm.NRR_BANDS:
        top.axvspan(lo, hi, color=band_colors[letter], zorder=0)
        top.text((lo + hi) / 2 if letter != "D" else 1.9, -0.9, letter, ha="center", va="center",
                 fontsize=10, fontweight="bold", color="#555555")
    ys = list(range(len(names)))[::-1]
    focus = {fo.element for fo in data.focus}
    for y, v, e in zip(ys, values, range(1, len(ELEMENTS) + 1), strict=True):
        if v is None:
            top.text(1.05, y, f.t("digest.no_answers"), va="center", fontsize=9, color="#777777")
            continue
        top.barh(y, v - 1, left=1, color="#c0392b" if e in focus else "#2e6da4", height=0.6, zorder=2)
        top.text(v + 0.03, y, f.num(v), va="center", fontsize=9, zorder=3)
    top.set_yticks(ys, names, fontsize=9)
    top.set_xlim(1, 4.3)
    top.set_ylim(-1.4, len(names) - 0.4)
    top.set_xlabel(textwrap.fill(f.t("digest.chart.nrr"), 50), fontsize=9)
    top.tick_params(axis="x", labelsize=9)

    labels = [w[-3:] for w, _, _ in data.trend]
    points = [(i, float(v)) for i, (_, v, _) in enumerate(data.trend) if v is not None]
    for lo, hi, letter in ikm.NRR_BANDS:
        bottom.axhspan(lo * 25, hi * 25, color=band_colors[letter], zorder=0)
    if points:
        xs, vs = zip(*points, strict=True)
        bottom.plot(xs, vs, marker="o", color="#2e6da4", linewidth=2, zorder=2)
        bottom.annotate(f.num(vs[-1]), (xs[-1], vs[-1]), textcoords="offset points", xytext=(0, 8),
                        ha="center", fontsize=9)
        low = max(25.0, min(vs) - 10)
    else:
        bottom.text(0.5, 0.5, f.t("digest.chart.no_data"), transform=bottom.transAxes, ha="center")
        low = 50.0
    bottom.set_ylim(low, 100)
    bottom.set_xlim(-0.5, len(labels) - 0.2)
    bottom.set_xticks(range(len(labels)), labels, fontsize=8, rotation=45)
    bottom.set_title(f.t("digest.chart.trend"), fontsize=11)
    bottom.set_ylabel("IKM", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


# ---------------------------------------------------------------- spreadsheet


def _response_rows(db: Session, data: DigestData) -> Iterator[tuple[Any, ...]]:
    """Responses of the week with their nine scores, pivoted in SQL."""
    scores = [
        func.max(case((SurveyAnswer.element == e, SurveyAnswer.score))).label(f"e{e}")
        for e in range(1, len(ELEMENTS) + 1)
    ]
    stmt = (
        select(SurveyResponse.id, SurveyResponse.started_at, Service.name, SurveyResponse.channel,
               SurveyResponse.status, *scores, SurveyResponse.suggestion)
        .join(Service, SurveyResponse.service_id == Service.id)
        .join(SurveyAnswer, SurveyAnswer.response_id == SurveyResponse.id, isouter=True)
        .where(SurveyResponse.agency_id == data.agency_id, SurveyResponse.started_at >= data.start,
               SurveyResponse.started_at < data.end)
        .group_by(SurveyResponse.id, SurveyResponse.started_at, Service.name, SurveyResponse.channel,
                  SurveyResponse.status, SurveyResponse.suggestion)
        .order_by(SurveyResponse.started_at, SurveyResponse.id)
    )
    yield from db.execute(stmt.execution_options(yield_per=2000))


def write_xlsx(db: Session, data: DigestData, path: Path, lang: str = "id", texts: Texts = TEXTS) -> Path:
    """Summary, responses and complaints of the week; NIK and phone numbers masked."""
    from openpyxl import Workbook

    f = _Fmt(texts, lang)
    tz = ZoneInfo(data.timezone)
    wb = Workbook(write_only=True)
    summary = wb.create_sheet(f.t("digest.xlsx.summary"))
    summary.append([f.t("digest.xlsx.agency"), data.name])
    summary.append([f.t("digest.xlsx.week"), data.week])
    summary.append(["IKM", float(data.week_ikm.value) if data.week_ikm.value is not None else None,
                    data.week_ikm.grade])
    summary.append([f.t("digest.xlsx.respondents"), data.respondents_week])
    summary.append([])
    summary.append([f.t("digest.xlsx.element"), "NRR", f.t("digest.xlsx.answered"), f.t("digest.xlsx.skipped")])
    for e in range(1, len(ELEMENTS) + 1):
        t = data.week_tallies.get(e, ikm.ElementTally())
        summary.append([f"{e}. {f.element(e)}", round(float(t.nrr), 4) if t.nrr is not None else None,
                        t.answered, data.skipped_week.get(e, 0)])

    sheet = wb.create_sheet(f.t("digest.xlsx.responses"))
    sheet.append(["ID", f.t("digest.xlsx.time"), f.t("digest.xlsx.service"), f.t("digest.xlsx.channel"),
                  f.t("digest.xlsx.status"), *[f"U{e}" for e in range(1, len(ELEMENTS) + 1)],
                  f.t("digest.xlsx.suggestion")])
    for rid, started, service, channel, status, *rest in _response_rows(db, data):
        suggestion = rest[-1]
        local = started.astimezone(tz).replace(tzinfo=None)
        sheet.append([rid, local, service, channel, status, *rest[:-1],
                      mask_personal(suggestion) if suggestion else None])

    sheet = wb.create_sheet(f.t("digest.xlsx.complaints"))
    sheet.append([f.t("digest.xlsx.ticket"), f.t("digest.xlsx.time"), f.t("digest.xlsx.service"),
                  f.t("digest.xlsx.category"), f.t("digest.xlsx.status"), f.t("digest.xlsx.description"),
                  f.t("digest.xlsx.bribery")])
    for r in data.complaints.rows:
        sheet.append([r.ticket, r.created_at.astimezone(tz).replace(tzinfo=None), r.service,
                      f.t(f"cat.{r.category}"), r.status, mask_personal(r.description),
                      f.t("yes") if r.bribery else ""])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# ---------------------------------------------------------------- files, production, schedule


@dataclass
class DigestFiles:
    text: str
    chart: Path
    xlsx: Path


def write_files(db: Session, data: DigestData, out: Path, lang: str = "id", texts: Texts = TEXTS) -> DigestFiles:
    """Render the chart, spreadsheet and text of one language into ``out``."""
    base = f"prima-{data.slug}-{data.week}-{lang}"
    text = render_text(data, lang, texts)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{base}.txt").write_text(text, encoding="utf-8")
    return DigestFiles(
        text,
        render_chart(data, out / f"{base}.png", lang, texts),
        write_xlsx(db, data, out / f"{base}.xlsx", lang, texts),
    )


def digest_dir(app: App) -> Path:
    configured = getattr(app.settings, "digest_dir", None)
    return Path(configured) if configured else Path("data") / "digests"


def find_agency(db: Session, slug: str) -> Agency:
    agency = db.scalars(select(Agency).where(Agency.slug == slug)).first()
    if agency is None:
        known = ", ".join(db.scalars(select(Agency.slug).order_by(Agency.slug)))
        raise LookupError(f"Unknown agency {slug!r}. Known agencies: {known or '(none)'}.")
    return agency


def payloads(data: DigestData, files: DigestFiles, lang: str, texts: Texts = TEXTS) -> list[dict[str, Any]]:
    """Photo with caption, then the text (split to fit), then the spreadsheet."""
    f = _Fmt(texts, lang)
    empty: dict[str, Any] = {"text": "", "choices": [], "q": None}
    out: list[dict[str, Any]] = [{**empty, "photo": {"path": str(files.chart), "caption": caption(data, lang, texts)}}]
    out += [{**empty, "text": chunk} for chunk in split_text(files.text, TEXT_LIMIT)]
    out.append({**empty, "document": {
        "path": str(files.xlsx), "filename": files.xlsx.name,
        "caption": _short(f.t("digest.xlsx.caption", week=data.week, n=f.count(data.respondents_week),
                              complaints=data.complaints.new), CAPTION_LIMIT),
    }})
    return out


@dataclass
class Produced:
    digest_id: int
    week: str
    recipients: int
    messages: int


def produce_digest(app: App, agency_slug: str, week: str | None, now: datetime) -> Produced | None:
    """Build and queue the digest for every head, once per (agency, week); None if already done.

    The aggregation runs outside the write transaction (so SQLite's write lock is held only
    for the few inserts); the unique (agency, week) row decides who queues the messages.
    """
    with app.factory() as db:
        agency = find_agency(db, agency_slug)
        week = week or previous_week(now, agency_zone(agency))
        parse_week(week)
        if db.scalar(select(Digest.id).where(Digest.agency_id == agency.id, Digest.week == week)):
            return None
        data = collect(db, agency, week, _weighting(agency))
        langs = {c.language for c in db.scalars(
            select(Contact).where(Contact.id.in_([h.contact_id for h in agency_heads(db, agency.id)]))
        )} or {app.settings.default_language}
        out = digest_dir(app) / agency.slug / week
        files = {lang: write_files(db, data, out, lang, app.texts) for lang in sorted(langs)}
    insert = pg_insert if app.engine.dialect.name == "postgresql" else sqlite_insert
    with app.factory() as db, db.begin():
        heads = agency_heads(db, data.agency_id)
        row_id = db.scalar(
            insert(Digest)
            .values(agency_id=data.agency_id, week=week, produced_at=now, recipients=len(heads),
                    summary=_summary(data))
            .on_conflict_do_nothing()
            .returning(Digest.id)
        )
        if row_id is None:
            return None
        count = 0
        for head in heads:
            contact = db.get(Contact, head.contact_id)
            lang = contact.language if contact else app.settings.default_language
            if lang not in files:  # a head registered while we were rendering
                with app.factory() as rdb:
                    files[lang] = write_files(rdb, data, out, lang, app.texts)
            for i, payload in enumerate(payloads(data, files[lang], lang, app.texts)):
                db.add(OutboxMessage(
                    contact_id=head.contact_id, channel=head.channel, chat_id=head.chat_id,
                    kind="digest", payload=payload, status="pending", due_at=now,
                    dedupe_key=f"digest:{row_id}:{head.id}:{i}", created_at=now,
                ))
                count += 1
        log.info("digest %s %s queued for %d heads (%d messages)", agency_slug, week, len(heads), count)
        return Produced(row_id, week, len(heads), count)


def _weighting(agency: Agency) -> ikm.Weighting:
    value = str((agency.settings or {}).get("ikm_weights", "exact"))
    return value if value in ("exact", "0.111", "0.11") else "exact"  # type: ignore[return-value]


def _summary(data: DigestData) -> dict[str, Any]:
    w = data.week_ikm
    return {"ikm": str(w.value) if w.value is not None else None, "grade": w.grade,
            "respondents": data.respondents_week, "complaints_new": data.complaints.new,
            "bribery": len(data.complaints.bribery)}


def digest_time(app: App, agency: Agency) -> tuple[int, int]:
    """Send time: the agency's ``digest_time`` setting, else the global one, else 07:30."""
    value = (agency.settings or {}).get("digest_time") or getattr(app.settings, "digest_time", None) or DEFAULT_TIME
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(value).strip())
    if not m:
        log.error("agency %s: bad digest_time %r, using %s", agency.slug, value, DEFAULT_TIME)
        return 7, 30
    return int(m.group(1)), int(m.group(2))


def digest_trigger(app: App, agency: Agency) -> Any:
    """Every Monday at the digest time in the agency's own zone."""
    from apscheduler.triggers.cron import CronTrigger

    hour, minute = digest_time(app, agency)
    return CronTrigger(day_of_week="mon", hour=hour, minute=minute, timezone=ZoneInfo(agency_zone(agency)))


async def run_digest_job(app: App, agency_slug: str) -> Produced | None:
    """The scheduled job: last week's digest, in a worker thread so the event loop stays free."""
    now = app.runtime.clock()
    try:
        return await asyncio.to_thread(produce_digest, app, agency_slug, None, now)
    except Exception:  # the next tick or a restart retries; the unique row prevents doubles
        log.exception("digest for %s failed", agency_slug)
        return None


def register_digest_jobs(scheduler: Any, app: App) -> None:
    """One CronTrigger per active agency (Monday 07:30 local by default)."""
    with app.factory() as db:
        agencies = list(db.scalars(select(Agency).where(Agency.active).order_by(Agency.id)))
    for agency in agencies:
        scheduler.add_job(
            run_digest_job, digest_trigger(app, agency), args=(app, agency.slug),
            id=f"digest:{agency.slug}", name=f"weekly digest {agency.slug}",
            replace_existing=True, coalesce=True, misfire_grace_time=6 * 3600,
        )
