"""Masking of personal data in free text a head reads (digest text, themes, XLSX).

Residents write their identity number, phone, e-mail or name into suggestions and complaints;
the digest shows those texts to heads and stores them in files, so it masks them first. NIK
and phone numbers keep a few digits (enough to tell two apart in a spreadsheet, not enough to
call anyone); e-mail addresses, the names the resident gave ("nama saya ...", the reporter's
stored names) and whatever else the project's scrubber knows are replaced by its marks
(``[email]``, ``[nama]``, bot.privacy).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.privacy.scrub import Scrubber

_SEP = r"[ \t.\-]"
# 16 digits, also grouped with spaces, dots or dashes: 3201.1234.5678.0002, 3201 1234 5678 0002.
_NIK = re.compile(rf"(?<![\w+])(\d{{4}}){_SEP}?(\d{{4}}{_SEP}?\d{{4}}){_SEP}?(\d{{4}})(?![\w])")
_PHONE = re.compile(r"(?<![\d+])(\+62|62|0)[\s.-]?(8(?:[\s.-]?\d){7,11})(?!\d)")
# Landlines with an area code (02x-09x): (0747) 21234, 0747-21234, 021 555 1234, +62 747 21234.
_LANDLINE = re.compile(
    rf"(?<![\w+])(\(0|0|\+62{_SEP}?\(?0?|\(\+62\){_SEP}?)([1-79]\d{{1,3}})\)?{_SEP}?(\d{{2,4}}(?:{_SEP}?\d{{2,4}})?)(?![\w])")
# "Saya Budi Santoso (NIK ...": "saya" followed by capitalised words is a name, conservatively:
# only words written with a capital, at most three, and never one of the words below.
_SAYA = re.compile(r"\b[Ss]aya[ \t]+((?:[A-Z][a-z'\-]+)(?:[ \t]+[A-Z][a-z'\-]+){0,2})")
_NOT_NAME = frozenset(
    """sudah ingin mau mohon tidak belum warga tinggal datang pergi minta butuh harap sangat kecewa
    juga akan sedang telah bisa hanya cuma baru pernah selalu lagi ada adalah punya merasa
    kira pikir rasa sebagai selaku kurang dari di ke yang dan dengan untuk ini itu orang ibu bapak
    pak bu sendiri senang puas setuju terima dapat lihat tanya urus antri antre menunggu""".split()  # noqa: SIM905
)


def said_names(text: str) -> list[str]:
    """Names a resident gave as "Saya Budi Santoso ...", conservatively (capitalised words)."""
    found = []
    for m in _SAYA.finditer(text or ""):
        words = []
        for word in m.group(1).split():
            if word.lower() in _NOT_NAME:
                break
            words.append(word)
        if words:
            found.append(" ".join(words))
    return found


def mask_personal(text: str, names: Iterable[str] = ()) -> str:
    """Mask NIK (16 digits, in any grouping), mobile and landline numbers, e-mail addresses,
    ``names`` (the reporter's own) and names the text gives ("nama saya ...", "Saya ...")."""
    if not text:
        return text
    text = _NIK.sub(lambda m: m.group(1) + "*" * 8 + m.group(3), text)

    def phone(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(2))
        return m.group(1) + digits[:3] + "*" * 6 + digits[-2:]

    text = _PHONE.sub(phone, text)

    def landline(m: re.Match[str]) -> str:
        local = re.sub(r"\D", "", m.group(3))
        if len(local) < 4:  # "0747 12" is not a number anyone can call
            return m.group(0)
        prefix = m.group(1) + m.group(2) + (")" if "(" in m.group(1) and ")" in m.group(0) else "")
        return prefix + " " + "*" * (len(local) - 2) + local[-2:]

    text = _LANDLINE.sub(landline, text)
    return Scrubber(names=[*names, *said_names(text)]).scrub(text)


def strip_marks(text: str) -> str:
    """The text without the scrubber's marks ([nama], [email] ...), for counting words."""
    return re.sub(r"\[[^\]\s]{1,12}\]", " ", text)
