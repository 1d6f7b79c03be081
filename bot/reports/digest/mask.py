"""Masking of NIK and phone numbers in free text a head reads (digest text, themes, XLSX).

Residents write their identity number or phone into suggestions and complaints; the digest
shows those texts to heads and stores them in files, so it masks them first.
"""

from __future__ import annotations

import re

_NIK = re.compile(r"(?<!\d)(\d{4})\d{8}(\d{4})(?!\d)")
_PHONE = re.compile(r"(?<![\d+])(\+62|62|0)[\s.-]?(8(?:[\s.-]?\d){7,11})(?!\d)")


def mask_personal(text: str) -> str:
    """Mask NIK (16 digits) and Indonesian mobile numbers (08..., +62..., 62...) in free text.

    The operator prefix (0812, +62812) and the last two digits stay, enough to tell numbers
    apart in a spreadsheet, not enough to call anyone.
    """
    text = _NIK.sub(lambda m: m.group(1) + "*" * 8 + m.group(2), text)

    def phone(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(2))
        return m.group(1) + digits[:3] + "*" * 6 + digits[-2:]

    return _PHONE.sub(phone, text)
