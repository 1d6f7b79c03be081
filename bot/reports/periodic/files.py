"""One language's periodic report on disk: the PDF and the XLSX, side by side.

Used by the automatic job, the ``report`` command and the benchmark alike. File names carry the
scope, period and language, so rebuilding a report replaces the same files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from bot.i18n import TEXTS
from bot.reports.periodic.model import ReportData
from bot.reports.periodic.pdf import render_pdf
from bot.reports.periodic.xlsx import write_xlsx
from flows.machine.types import Texts


@dataclass
class ReportFiles:
    pdf: Path
    xlsx: Path

    def __iter__(self) -> Iterator[Path]:
        return iter((self.pdf, self.xlsx))


def base_name(data: ReportData, lang: str) -> str:
    scope = "kabupaten" if data.scope == "*" else data.scope
    return f"prima-skm-{scope}-{data.period.label}-{lang}"


def write_files(db: Session, data: ReportData, out: Path, lang: str = "id", texts: Texts = TEXTS,
                created: datetime | None = None) -> ReportFiles:
    out.mkdir(parents=True, exist_ok=True)
    base = base_name(data, lang)
    return ReportFiles(
        render_pdf(data, out / f"{base}.pdf", lang, texts, created=created),
        write_xlsx(db, data, out / f"{base}.xlsx", lang, texts),
    )
