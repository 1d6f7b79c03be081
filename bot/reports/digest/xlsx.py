"""The digest's spreadsheet (openpyxl): summary, the week's responses and complaints, masked.

The summary names the period by its dates, the weighting used, the IKM and NRR (exact values,
shown with two decimals like the text) and every service's IKM; a legend names U1..U9. Values
are in the head's language (lengkap/sebagian, not complete/partial). Personal data in texts is
masked and confidential complaints' texts are left out. The responses are pivoted in SQL and
streamed into a write-only workbook, so a busy week does not sit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.i18n import TEXTS
from bot.reports import ikm
from bot.reports.digest.fmt import Fmt
from bot.reports.digest.mask import mask_personal
from bot.reports.digest.model import DigestData
from bot.reports.digest.period import week_monday
from bot.reports.digest.text import week_span
from bot.storage.models import Contact, Service, SurveyAnswer, SurveyResponse
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts

TWO_DECIMALS = "0.00"
DATE = "dd/mm/yyyy"
DATETIME = "dd/mm/yyyy hh:mm"
CHANNELS = ("telegram", "whatsapp", "web", "kiosk", "console")
RESPONSE_STATUSES = ("complete", "partial")
COMPLAINT_STATUSES = ("new", "open", "pending", "resolved", "closed", "reopened")


def _response_rows(db: Session, data: DigestData) -> Iterator[tuple[Any, ...]]:
    """Responses of the week with their nine scores, pivoted in SQL."""
    scores = [
        func.max(case((SurveyAnswer.element == e, SurveyAnswer.score))).label(f"e{e}")
        for e in range(1, len(ELEMENTS) + 1)
    ]
    stmt = (
        select(SurveyResponse.id, SurveyResponse.started_at, Service.name, SurveyResponse.channel,
               SurveyResponse.status, *scores, SurveyResponse.suggestion, Contact.display_name)
        .join(Service, SurveyResponse.service_id == Service.id)
        .join(SurveyAnswer, SurveyAnswer.response_id == SurveyResponse.id, isouter=True)
        .join(Contact, SurveyResponse.contact_id == Contact.id, isouter=True)
        .where(SurveyResponse.agency_id == data.agency_id, SurveyResponse.started_at >= data.start,
               SurveyResponse.started_at < data.end)
        .group_by(SurveyResponse.id, SurveyResponse.started_at, Service.name, SurveyResponse.channel,
                  SurveyResponse.status, SurveyResponse.suggestion, Contact.display_name)
        .order_by(SurveyResponse.started_at, SurveyResponse.id)
    )
    yield from db.execute(stmt.execution_options(yield_per=2000))


def _label(f: Fmt, prefix: str, value: str, known: Sequence[str]) -> str:
    """A stored code in the head's language; an unknown code as stored."""
    return f.t(f"{prefix}.{value}") if value in known else value


def _widths(sheet: Any, widths: Sequence[float]) -> None:
    for i, width in enumerate(widths):
        sheet.column_dimensions[chr(ord("A") + i)].width = width


def write_xlsx(db: Session, data: DigestData, path: Path, lang: str = "id", texts: Texts = TEXTS) -> Path:
    """Summary, responses, complaints and the U1..U9 legend of the week; personal data masked."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    f = Fmt(texts, lang)
    tz = ZoneInfo(data.timezone)
    wb = Workbook(write_only=True)
    bold = Font(bold=True)

    def cell(sheet: Any, value: Any, number_format: str | None = None, strong: bool = False) -> Any:
        c = WriteOnlyCell(sheet, value=value)
        if number_format:
            c.number_format = number_format
        if strong:
            c.font = bold
        return c

    def header(sheet: Any, *titles: str) -> None:
        sheet.append([cell(sheet, t, strong=True) for t in titles])

    def ikm_cells(sheet: Any, value: ikm.Ikm) -> list[Any]:
        if value.value is None:
            return [f.t("digest.no_data"), None]
        return [cell(sheet, float(value.value), TWO_DECIMALS), value.grade]

    summary = wb.create_sheet(f.t("digest.xlsx.summary"))
    _widths(summary, (38, 16, 12, 14, 22, 12, 24))
    monday = week_monday(data.week)
    summary.append([cell(summary, f.t("digest.xlsx.agency"), strong=True), data.name])
    summary.append([cell(summary, f.t("digest.xlsx.period"), strong=True), week_span(f, data)])
    summary.append([cell(summary, f.t("digest.xlsx.start"), strong=True), cell(summary, monday, DATE)])
    summary.append([cell(summary, f.t("digest.xlsx.end"), strong=True),
                    cell(summary, monday + timedelta(days=6), DATE)])
    summary.append([cell(summary, "IKM", strong=True), *ikm_cells(summary, data.week_ikm)])
    summary.append([cell(summary, f.t("digest.xlsx.respondents"), strong=True), data.respondents_week])
    summary.append([cell(summary, f.t("digest.xlsx.weighting"), strong=True), f.weighting(data.weighting)])
    summary.append([])
    header(summary, f.t("digest.xlsx.element"), "NRR", f.t("digest.xlsx.answered"), f.t("digest.xlsx.skipped"))
    for e in range(1, len(ELEMENTS) + 1):
        t = data.week_tallies.get(e, ikm.ElementTally())
        nrr = cell(summary, float(t.nrr), TWO_DECIMALS) if t.nrr is not None else f.t("digest.no_data")
        summary.append([f"U{e}. {f.element(e)}", nrr, t.answered, data.skipped_week.get(e, 0)])
    summary.append([])
    header(summary, f.t("digest.xlsx.services"), f.t("digest.xlsx.ikm_week"), f.t("digest.xlsx.grade"),
           f.t("digest.xlsx.respondents"), f.t("digest.xlsx.ikm_ytd"), f.t("digest.xlsx.grade"),
           f.t("digest.xlsx.respondents_ytd"))
    for s in data.services:
        summary.append([s.title(f.lang), *ikm_cells(summary, s.week), s.respondents_week,
                        *ikm_cells(summary, s.ytd), s.respondents_ytd])

    sheet = wb.create_sheet(f.t("digest.xlsx.responses"))
    _widths(sheet, (8, 17, 30, 16, 12, *([5] * len(ELEMENTS)), 60))
    sheet.freeze_panes = "A2"
    header(sheet, "ID", f.t("digest.xlsx.time"), f.t("digest.xlsx.service"), f.t("digest.xlsx.channel"),
           f.t("digest.xlsx.status"), *[f"U{e}" for e in range(1, len(ELEMENTS) + 1)],
           f.t("digest.xlsx.suggestion"))
    for rid, started, service, channel, status, *rest in _response_rows(db, data):
        *scores, suggestion, name = rest
        local = started.astimezone(tz).replace(tzinfo=None)
        sheet.append([rid, cell(sheet, local, DATETIME), service,
                      _label(f, "digest.xlsx.via", channel, CHANNELS),
                      _label(f, "digest.xlsx.response", status, RESPONSE_STATUSES), *scores,
                      mask_personal(suggestion, [name] if name else []) if suggestion else None])

    sheet = wb.create_sheet(f.t("digest.xlsx.complaints"))
    _widths(sheet, (14, 17, 30, 26, 22, 70, 12))
    sheet.freeze_panes = "A2"
    header(sheet, f.t("digest.xlsx.ticket"), f.t("digest.xlsx.time"), f.t("digest.xlsx.service"),
           f.t("digest.xlsx.category"), f.t("digest.xlsx.status"), f.t("digest.xlsx.description"),
           f.t("digest.xlsx.bribery"))
    for r in data.complaints.rows:
        text = f.t("digest.xlsx.confidential") if r.confidential else mask_personal(r.description, r.names)
        sheet.append([r.ticket, cell(sheet, r.created_at.astimezone(tz).replace(tzinfo=None), DATETIME),
                      r.service, f.t(f"cat.{r.category}"),
                      _label(f, "digest.xlsx.cstatus", r.status, COMPLAINT_STATUSES), text,
                      f.t("yes") if r.bribery else ""])

    legend = wb.create_sheet(f.t("digest.xlsx.legend"))
    _widths(legend, (8, 50))
    header(legend, f.t("digest.xlsx.code"), f.t("digest.xlsx.element"))
    for e in range(1, len(ELEMENTS) + 1):
        legend.append([f"U{e}", f.element(e)])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
