"""The periodic report's workbook (openpyxl), one function per sheet.

``SHEETS`` lists the sheet functions in order: summary, NRR per element, IKM per service, the
period's questionnaires and the follow-up plan, then the U1..U9 legend. The questionnaires are
pivoted in SQL and streamed into a write-only workbook; they carry no personal data (no
contact, no name, no free text), only the scores, service, channel and local start time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.i18n import TEXTS
from bot.reports import ikm
from bot.reports.digest.fmt import Fmt
from bot.reports.periodic.model import ReportData
from bot.reports.periodic.text import period_name, period_span, plan_status, title_of
from bot.storage.models import Agency, Service, SurveyAnswer, SurveyResponse
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts

TWO = "0.00"
THREE = "0.000"
DATE = "dd/mm/yyyy"
DATETIME = "dd/mm/yyyy hh:mm"
EXCEL_ROWS = 1_048_576  # rows in one Excel sheet


@dataclass
class Book:
    wb: Any
    db: Session
    data: ReportData
    f: Fmt

    def sheet(self, key: str, widths: Sequence[float]) -> Any:
        sheet = self.wb.create_sheet(self.f.t(key)[:31])
        for i, width in enumerate(widths):
            sheet.column_dimensions[chr(ord("A") + i)].width = width
        return sheet

    def cell(self, sheet: Any, value: Any, number_format: str | None = None, strong: bool = False) -> Any:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font

        c = WriteOnlyCell(sheet, value=value)
        if number_format:
            c.number_format = number_format
        if strong:
            c.font = Font(bold=True)
        return c

    def header(self, sheet: Any, *keys: str) -> None:
        sheet.append([self.cell(sheet, self.f.t(k) if "." in k else k, strong=True) for k in keys])

    def ikm_cells(self, sheet: Any, value: ikm.Ikm) -> list[Any]:
        if value.value is None:
            return [self.f.t("digest.no_data"), None]
        return [self.cell(sheet, float(value.value), TWO), value.grade]


def summary(b: Book) -> None:
    f, data = b.f, b.data
    s = b.sheet("report.xlsx.summary", (36, 48))
    rows: list[tuple[str, Any, str | None]] = [
        ("report.field.agency", title_of(f, data), None),
        ("report.field.period", period_name(f, data.period), None),
        ("report.field.dates", period_span(f, data.period), None),
        ("report.xlsx.start", data.period.first_day, DATE),
        ("report.xlsx.end", data.period.last_day, DATE),
        ("report.field.timezone", data.timezone, None),
        ("report.field.respondents", data.respondents, None),
        ("report.field.complete", data.complete, None),
        ("report.field.weighting", f.weighting(data.weighting), None),
    ]
    if data.sample is not None and data.sample.minimum is not None:
        rows += [("report.field.population", data.sample.population, None),
                 ("report.field.minimum", data.sample.minimum, None)]
    for key, value, fmt in rows:
        s.append([b.cell(s, f.t(key), strong=True), b.cell(s, value, fmt)])
    s.append([b.cell(s, "IKM", strong=True), *b.ikm_cells(s, data.ikm)])
    if data.ikm.grade:
        s.append([b.cell(s, f.t("report.ikm.kinerja"), strong=True), f.t(f"digest.grade.{data.ikm.grade}")])
    c = data.complaints
    for key, value in (("report.complaints.received", c.received), ("report.complaints.resolved", c.resolved),
                       ("report.complaints.within", c.within_deadline)):
        s.append([b.cell(s, f.t(key), strong=True), value])
    for key, value, unit in (("report.complaints.first", c.median_first_response_hours, "report.hours"),
                             ("report.complaints.resolution", c.median_resolution_days, "report.days")):
        s.append([b.cell(s, f.t(key), strong=True), f.t(unit, n=f.num(value, 1)) if value is not None else "-"])


def elements(b: Book) -> None:
    data = b.data
    s = b.sheet("report.xlsx.elements", (8, 44, 12, 12, 12, 10, 16))
    b.header(s, "report.col.code", "report.col.element", "report.col.answered", "report.col.skipped",
             "report.col.total", "NRR", "report.col.nrr_weighted")
    weight = ikm.WEIGHTS[data.weighting]
    for e in range(1, len(ELEMENTS) + 1):
        t = data.tallies.get(e, ikm.ElementTally())
        nrr = t.nrr
        s.append([f"U{e}", b.f.element(e), t.answered, data.skipped.get(e, 0), t.total,
                  b.cell(s, float(nrr), TWO) if nrr is not None else None,
                  b.cell(s, float(nrr * weight), THREE) if nrr is not None else None])


def services(b: Book) -> None:
    s = b.sheet("report.xlsx.services", (28, 40, 12, 10, 8))
    b.header(s, "report.col.agency", "report.col.service", "report.col.respondents", "IKM", "report.col.grade")
    for svc in b.data.services:
        s.append([svc.agency, svc.name, svc.respondents, *b.ikm_cells(s, svc.ikm)])


def _questionnaires(b: Book) -> Iterator[tuple[Any, ...]]:
    scores = [func.max(case((SurveyAnswer.element == e, SurveyAnswer.score))).label(f"e{e}")
              for e in range(1, len(ELEMENTS) + 1)]
    r = SurveyResponse
    ids = b.data.agency_ids
    stmt = (
        select(r.id, r.started_at, Agency.short_name, Service.name, r.channel, r.status, *scores)
        .join(Service, r.service_id == Service.id).join(Agency, r.agency_id == Agency.id)
        .join(SurveyAnswer, SurveyAnswer.response_id == r.id)
        .where(r.agency_id.in_(ids), r.started_at >= b.data.start, r.started_at < b.data.end)
        .group_by(r.id, r.started_at, Agency.short_name, Service.name, r.channel, r.status)
        .order_by(r.started_at, r.id)
    )
    yield from b.db.execute(stmt.execution_options(yield_per=5000))


def questionnaires(b: Book) -> None:
    f = b.f
    s = b.sheet("report.xlsx.questionnaires", (9, 17, 16, 30, 12, 12, *([5] * len(ELEMENTS))))
    s.freeze_panes = "A2"
    b.header(s, "ID", "report.xlsx.started", "report.col.agency", "report.col.service", "digest.xlsx.channel",
             "digest.xlsx.status", *[f"U{e}" for e in range(1, len(ELEMENTS) + 1)])
    tz = ZoneInfo(b.data.timezone)
    known_channels = ("telegram", "whatsapp", "console")
    for i, (rid, started, agency, service, channel, status, *answers) in enumerate(_questionnaires(b)):
        if i == EXCEL_ROWS - 2:  # Excel's limit: say so in the last row instead of a broken file
            s.append([f.t("report.xlsx.truncated", n=f.count(b.data.respondents))])
            break
        s.append([rid, b.cell(s, started.astimezone(tz).replace(tzinfo=None), DATETIME), agency, service,
                  f.t(f"digest.xlsx.via.{channel}") if channel in known_channels else channel,
                  f.t(f"digest.xlsx.response.{status}") if status in ("complete", "partial") else status,
                  *answers])


def plan(b: Book) -> None:
    f = b.f
    s = b.sheet("report.xlsx.plan", (8, 30, 50, 24, 12, 16, 50, 12, 10, 10))
    b.header(s, "report.col.code", "report.col.service", "report.col.what", "report.col.who", "report.col.due",
             "report.col.status", "report.col.done", "report.xlsx.done_at", "report.xlsx.nrr_before",
             "report.xlsx.nrr_after")
    tz = ZoneInfo(b.data.timezone)
    for p in b.data.plan:
        s.append([f"U{p.element}", p.service or f.t("plan.all_services"), p.what, p.who,
                  b.cell(s, p.due_on, DATE), plan_status(f, p), p.done_text,
                  b.cell(s, p.done_at.astimezone(tz).replace(tzinfo=None), DATETIME) if p.done_at else None,
                  b.cell(s, float(p.nrr_before), TWO) if p.nrr_before is not None else None,
                  b.cell(s, float(p.nrr_after), TWO) if p.nrr_after is not None else None])


def profile(b: Book) -> None:
    """Respondents and IKM per profile group; a group under 5 shows "< 5" and no IKM."""
    f, data = b.f, b.data
    s = b.sheet("report.section.profile", (24, 30, 14, 10, 8))
    b.header(s, "report.col.field", "report.col.group", "report.col.respondents", "IKM", "report.col.grade")
    for name, groups in data.profile.items():
        for g in groups:
            label = f.t(f"profile.{name}.{g.code}") if g.code else f.t("report.profile.not_stated")
            cells = b.ikm_cells(s, g.ikm) if g.ikm is not None else ["-", None]
            s.append([f.t(f"profile.{name}.title"), label,
                      g.shown if g.suppressed else g.respondents, *cells])


def legend(b: Book) -> None:
    s = b.sheet("report.xlsx.legend", (8, 50))
    b.header(s, "report.col.code", "report.col.element")
    for e in range(1, len(ELEMENTS) + 1):
        s.append([f"U{e}", b.f.element(e)])


Sheet = Callable[[Book], None]
SHEETS: list[Sheet] = [summary, elements, services, profile, questionnaires, plan, legend]


def write_xlsx(db: Session, data: ReportData, path: Path, lang: str = "id", texts: Texts = TEXTS,
               sheets: Sequence[Sheet] = SHEETS) -> Path:
    from openpyxl import Workbook

    book = Book(Workbook(write_only=True), db, data, Fmt(texts, lang))
    for sheet in sheets:
        sheet(book)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.wb.save(path)
    return path
