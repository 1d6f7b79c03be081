"""Scrubbing stored files (digests: text, CSV, JSON, spreadsheets) that name an erased person.

Kept apart from the database sweep (bot/privacy/erasure.py): it reads and rewrites files on
disk, and opens spreadsheets with openpyxl, which the sweep never needs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from bot.privacy.scrub import Scrubber

log = logging.getLogger(__name__)


def scrub_files(directory: Path, scrubber: Scrubber, terms: Iterable[str]) -> int:
    """Rewrite stored text and spreadsheet files (digests) that name the person."""
    if not directory.is_dir():
        return 0
    needles = [t.lower() for t in terms]
    changed = 0
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        try:
            if path.suffix in (".txt", ".csv", ".json"):
                text = path.read_text(encoding="utf-8")
                if any(n in text.lower() for n in needles):
                    new = scrubber.scrub(text)
                    if new != text:
                        path.write_text(new, encoding="utf-8")
                        changed += 1
            elif path.suffix == ".xlsx":
                changed += _scrub_xlsx(path, scrubber, needles)
        except (OSError, ValueError) as exc:  # keep going: one bad file must not stop erasure
            log.warning("could not scrub %s: %s", path, exc)
    return changed


def _scrub_xlsx(path: Path, scrubber: Scrubber, needles: list[str]) -> int:
    from openpyxl import load_workbook

    wb = load_workbook(path)
    changed = False
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and any(n in cell.value.lower() for n in needles):
                    new = scrubber.scrub(cell.value)
                    if new != cell.value:
                        cell.value = new
                        changed = True
    if changed:
        tmp = path.with_suffix(".xlsx.part")
        wb.save(tmp)
        tmp.replace(path)
    return int(changed)
