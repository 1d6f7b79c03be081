"""The digest's spreadsheet (openpyxl): summary, the week's responses and complaints, masked.

The responses are pivoted in SQL and streamed into a write-only workbook, so a busy week does
not sit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from bot.storage.models import Service, SurveyAnswer, SurveyResponse
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts


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

    f = Fmt(texts, lang)
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
