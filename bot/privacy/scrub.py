"""The scrubber: NIK, phone numbers, e-mail addresses and a person's names out of free text.

Erasure (bot/privacy/erasure.py) builds one for the person it removes; tests and tools use
:func:`scrub` directly. Pure text work: no database, no files.

Scrubbing is a replacement, not a mask: ``[NIK]``, ``[telepon]``, ``[email]``, ``[nama]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NIK_MARK = "[NIK]"
PHONE_MARK = "[telepon]"
EMAIL_MARK = "[email]"
NAME_MARK = "[nama]"

_SEP = r"[ \t.\-]"
EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# NIK: 16 digits, in any grouping with spaces, dots or dashes (3201 0101 0101 0001, 3201.01...).
NIK = re.compile(rf"(?<![\w+])\d(?:{_SEP}?\d){{15}}(?![\w])")
# Mobile numbers: 08.., +62 8.., 62 8.., (+62) 8..: 9 to 13 digits after the prefix 0.
MOBILE = re.compile(
    rf"(?<![\w+])(?:\(?\+62\)?{_SEP}?|62{_SEP}?|0)8\d(?:{_SEP}?\d){{6,10}}(?![\w])")
# Landlines with an area code: 021-5551234, (0274) 512345, +62 21 5551234.
LANDLINE = re.compile(
    rf"(?<![\w+])(?:\(?\+62\)?{_SEP}?|62{_SEP}?|\(0|0)[1-79]\d{{1,3}}\)?{_SEP}?\d{{3,4}}{_SEP}?\d{{3,4}}(?![\w])")
# "nama saya Siti Aminah", "my name is ...", "saya bernama ...": the words after it, up to three.
NAME_INTRO = re.compile(
    r"(?i:\bnama\s+saya|\bsaya\s+bernama|\bnama\s*:|\bmy\s+name\s+is)\s*(?i:adalah|ialah|:)?\s*"
    r"((?:[^\W\d_][\w'.\-]*)(?:[ \t]+[^\W\d_][\w'.\-]*){0,2})")
# Words that end a typed name ("nama saya Siti dan saya ...").
_NOT_NAME = {
    "dan", "yang", "dari", "di", "ke", "ingin", "mau", "mohon", "nik", "no", "nomor", "hp", "wa",
    "warga", "tinggal", "alamat", "email", "umur", "usia", "sudah", "tidak", "belum", "pak", "bu",
    "and", "from", "my", "i", "the", "want", "live", "phone", "saya", "telp", "telepon", "ktp",
}
MIN_NAME_PART = 3  # shorter parts of a name ("Al", "Wu") are too common to scrub on their own


def typed_names(text: str) -> list[str]:
    """Names a person typed about themselves ("nama saya Siti Aminah")."""
    found: list[str] = []
    for m in NAME_INTRO.finditer(text or ""):
        words: list[str] = []
        for word in m.group(1).split():
            w = word.strip(".,;:'-")
            if not w or w.lower() in _NOT_NAME:
                break
            words.append(w)
        if words:
            found.append(" ".join(words))
    return found


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@dataclass
class Scrubber:
    """Removes NIK, phone numbers, e-mail addresses and the given names from free text.

    ``numbers``: identifiers of the person as digits (their WhatsApp number, Telegram id),
    removed in any grouping; ``names``: how they called themselves, removed whole and by
    each part of three letters or more, case-insensitively.
    """

    names: Iterable[str] = ()
    numbers: Iterable[str] = ()
    keep_words: frozenset[str] = frozenset()  # words of the bot and catalog: not a name alone
    _names: re.Pattern[str] | None = field(init=False, default=None)
    _numbers: re.Pattern[str] | None = field(init=False, default=None)
    _number_forms: frozenset[str] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        self.names = tuple(self.names)
        parts: set[str] = set()
        for name in self.names:
            name = " ".join((name or "").split())
            if not name:
                continue
            parts.add(name)
            parts.update(p for p in re.split(r"[\s,.;:()\"'@_-]+", name)
                         if len(p) >= MIN_NAME_PART and p.lower() not in self.keep_words)
        if parts:
            alts = "|".join(re.escape(p) for p in sorted(parts, key=len, reverse=True))
            self._names = re.compile(rf"(?<![\w])@?(?:{alts})(?![\w])", re.IGNORECASE)
        nums = {d for d in (digits(n) for n in self.numbers) if len(d) >= 5}
        forms: set[str] = set()
        for d in nums:
            forms.add(d)
            if d.startswith("62"):
                forms.add("0" + d[2:])  # 6281... is also written 081...
        self._number_forms = frozenset(forms)
        if forms:
            alts = "|".join(f"{_SEP}?".join(d) for d in sorted(forms, key=len, reverse=True))
            self._numbers = re.compile(rf"(?<![\w])\+?(?:{alts})(?![\w])")

    def scrub(self, text: str) -> str:
        """The text without the personal data this scrubber knows about."""
        if not text:
            return text
        out = EMAIL.sub(EMAIL_MARK, text)
        if self._numbers is not None:
            out = self._numbers.sub(PHONE_MARK, out)
        out = NIK.sub(NIK_MARK, out)
        out = MOBILE.sub(PHONE_MARK, out)
        out = LANDLINE.sub(PHONE_MARK, out)
        names = self._names
        typed = typed_names(out)
        if typed:  # names typed in this very text count too
            names = Scrubber(names=[*typed, *self.names], keep_words=self.keep_words)._names
        if names is not None:
            out = names.sub(NAME_MARK, out)
        return out

    def scrub_value(self, value: Any) -> Any:
        """Strings inside JSON-like data, keys included."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(k) if isinstance(k, str) else k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_value(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and str(value) in self._number_forms:
            return None  # the person's id or number stored as a JSON number (a raw update's ids)
        return value


def scrub(text: str, names: Iterable[str] = ()) -> str:
    """NIK, phone numbers, e-mail addresses, typed names and ``names`` removed from ``text``."""
    return Scrubber(names=list(names)).scrub(text)
