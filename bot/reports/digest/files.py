"""One language's digest on disk: the text, the chart PNG and the XLSX, side by side.

Used by the Monday job, the ``digest`` command and the benchmark alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from bot.i18n import TEXTS
from bot.reports.digest.chart import render_chart
from bot.reports.digest.model import DigestData
from bot.reports.digest.text import render_text
from bot.reports.digest.xlsx import write_xlsx
from flows.machine.types import Texts


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
