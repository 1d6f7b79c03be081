"""The periodic report's workbook (openpyxl), one function per sheet; filled in the next step."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from bot.i18n import TEXTS
from bot.reports.periodic.model import ReportData
from flows.machine.types import Texts


def write_xlsx(db: Session, data: ReportData, path: Path, lang: str = "id", texts: Texts = TEXTS) -> Path:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    wb.create_sheet("-")
    wb.save(path)
    return path
