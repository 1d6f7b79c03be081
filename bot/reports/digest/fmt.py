"""Shared formatting for the digest renderers: numbers, dates and labels in the head's language.

The text, the caption, the chart and the spreadsheet all print IKM values, element names and
counts the same way (Indonesian uses "." for thousands and "," for decimals).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from bot.reports import ikm
from flows.helpers.skm import ELEMENTS
from flows.machine.types import Texts


class Fmt:
    def __init__(self, texts: Texts, lang: str) -> None:
        self.texts = texts
        self.lang = lang

    def t(self, key: str, **params: Any) -> str:
        return self.texts(self.lang, key, **params)

    def num(self, value: Decimal | Fraction | float, places: int = 2) -> str:
        """Rounded half-up like the IKM (an NRR of 25/8 is 3,13, never 3,12)."""
        s = f"{half_up(value, places):,.{places}f}"
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
        return self.day_of(d.date())

    def day_of(self, d: date) -> str:
        return f"{d.day} {self.t(f'digest.month.{d.month}')} {d.year}"

    def week(self, monday: date) -> str:
        """A week as people write it: "23-29 November 2026", "30 November - 6 Desember 2026",
        "28 Desember 2026 - 3 Januari 2027" (never the ISO label 2026-W48)."""
        sunday = monday + timedelta(days=6)
        month = self.t(f"digest.month.{sunday.month}")
        if monday.month == sunday.month:
            return f"{monday.day}-{sunday.day} {month} {sunday.year}"
        first = f"{monday.day} {self.t(f'digest.month.{monday.month}')}"
        if monday.year != sunday.year:
            first += f" {monday.year}"
        return f"{first} - {sunday.day} {month} {sunday.year}"

    def weighting(self, weighting: str) -> str:
        return self.t("digest.weighting.exact") if weighting == "exact" else self.t(
            "digest.weighting.rounded", weight=self.num(Decimal(weighting), len(weighting) - 2))


def half_up(value: Decimal | Fraction | float, places: int = 2) -> Decimal:
    """``value`` rounded half-up to ``places`` decimals, exactly for Fraction and Decimal."""
    if isinstance(value, Fraction):
        exact = Decimal(value.numerator) / Decimal(value.denominator)
    elif isinstance(value, Decimal):
        exact = value
    else:
        exact = Decimal(repr(float(value)))  # the shortest decimal that reads back as the float
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
