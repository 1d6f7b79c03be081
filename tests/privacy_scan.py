"""Scan every table of the metadata and every stored file for a person's identifiers.

The tables come from ``Base.metadata.sorted_tables``, not a list kept by hand: a table added
later is scanned too. Text and JSON columns are read as text; identifiers are looked for as
written (case-insensitively, as whole words) and as bare digits (a NIK or phone number in another grouping).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.models import Base


@dataclass(frozen=True)
class Person:
    """How the test resident identifies themselves."""

    words: tuple[str, ...]  # names, username, e-mail, ids: searched as text
    numbers: tuple[str, ...]  # NIK and phone numbers: searched as digits too

    def needles(self) -> list[str]:
        out = [w.lower() for w in self.words]
        out += [n.lower() for n in self.numbers]
        return out

    def digit_needles(self) -> list[str]:
        out = []
        for n in self.numbers:
            d = re.sub(r"\D", "", n)
            out.append(d)
            if d.startswith("62"):
                out.append(d[2:])  # 6281.. and 081.. share 81..
            elif d.startswith("0"):
                out.append(d[1:])
        return out


def _is_text(col: Any) -> bool:
    t = col.type
    return isinstance(t, String | Text | JSON) or isinstance(getattr(t, "impl", None), JSON)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def find_in_text(text: str, person: Person) -> list[str]:
    low = text.lower()
    # whole words: "Siti" is a name, the "siti" inside "acquisition" is not
    hits = [n for n in person.needles() if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", low)]
    # digits: only runs of digits joined by separators, so unrelated numbers are not glued
    for run in re.findall(r"\+?\d[\d .\-()]*\d", text):
        d = re.sub(r"\D", "", run)
        hits += [n for n in person.digit_needles() if n in d]
    return hits


def scan_database(factory: sessionmaker[Session], person: Person) -> list[str]:
    """``table.column = value`` for every value that still identifies the person."""
    found: list[str] = []
    tables = Base.metadata.sorted_tables
    assert len(tables) >= 20, "the metadata lists every table"
    with factory() as db:
        for table in tables:
            cols = [c for c in table.columns if _is_text(c)]
            if not cols:
                continue
            for row in db.execute(select(*cols)).all():
                for col, value in zip(cols, row, strict=True):
                    if value is None:
                        continue
                    text = _as_text(value)
                    hits = find_in_text(text, person)
                    if hits:
                        found.append(f"{table.name}.{col.name} has {hits}: {text[:200]!r}")
    return found


def file_text(path: Path) -> str:
    """A file's text: spreadsheets are zip archives of XML, read inside."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return path.read_bytes().decode("utf-8", "replace")


def scan_files(dirs: Iterable[Path], person: Person) -> list[str]:
    found: list[str] = []
    for d in dirs:
        for path in sorted(p for p in Path(d).rglob("*") if p.is_file()):
            hits = find_in_text(path.name + "\n" + file_text(path), person)
            if hits:
                found.append(f"{path.name} has {hits}")
    return found


def all_files(dirs: Iterable[Path]) -> list[Path]:
    return sorted(p for d in dirs for p in Path(d).rglob("*") if p.is_file())
