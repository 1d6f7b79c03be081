"""Shared formatting for the digest renderers: numbers, dates and labels in the head's language.

The text, the caption, the chart and the spreadsheet all print IKM values, element names and
counts the same way (Indonesian uses "." for thousands and "," for decimals).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
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


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
