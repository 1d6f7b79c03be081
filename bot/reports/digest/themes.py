"""What residents say about a weak element: frequent words and groups of similar texts.

For each focus element the digest reads the week's suggestions of residents who rated it 1 or
2, plus complaints whose category concerns it (never a confidential one), and names the words
and themes that recur. Texts are masked before anything is counted, so a resident's name or
number can never become a "frequent word". Words are counted by their Indonesian stem
(PySastrawi: antrian, antriannya, mengantri and antri are one word) and shown in the form
residents wrote most often; our own stoplist keeps "lama", "kurang" and "hari", which matter.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from functools import cache

from rapidfuzz import fuzz
from rapidfuzz import utils as fuzz_utils
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.reports.digest.fmt import shorten
from bot.reports.digest.mask import mask_personal, strip_marks
from bot.reports.digest.model import ComplaintRow
from bot.storage.models import Contact, SurveyAnswer, SurveyResponse

THEME_TEXTS = 300  # newest texts considered per focus element: enough to see themes, bounded cost
# Complaint categories that speak about one SKM element (their texts feed that element's themes).
CATEGORY_ELEMENT = {
    "penyimpangan": 2, "penundaan": 3, "pungli": 4, "tidak_kompeten": 6,
    "tidak_patut": 7, "diskriminasi": 7, "berpihak": 7, "tidak_melayani": 7,
}
STOPWORDS = frozenset(
    """yang dan di ke dari untuk dengan ini itu ada tidak tak sudah belum saya kami kita kamu anda
    agar supaya juga lebih sangat sekali karena jadi pada dalam akan bisa harus mohon tolong lagi
    atau oleh para pak bu ibu bapak nya kalau kok sih dong ya yg dg utk tdk gak ga nggak aja saja
    terlalu masih cukup sama semua hanya banyak sedikit baik bagus the and to of a is in
    for it be please not very too nama telepon email nik""".split()  # noqa: SIM905 - a word list reads better as prose
)


def element_themes(
    db: Session, agency_id: int, element: int, start: datetime, end: datetime,
    complaints: list[ComplaintRow],
) -> tuple[list[str], list[tuple[str, int]]]:
    """Frequent words and groups of similar texts among suggestions of residents who rated this
    element 1 or 2 this week, and complaints whose category concerns the element."""
    texts = [
        mask_personal(text or "", [name] if name else [])
        for text, name in db.execute(
            select(SurveyResponse.suggestion, Contact.display_name)
            .join(SurveyAnswer, SurveyAnswer.response_id == SurveyResponse.id)
            .join(Contact, SurveyResponse.contact_id == Contact.id, isouter=True)
            .where(SurveyResponse.agency_id == agency_id, SurveyResponse.started_at >= start,
                   SurveyResponse.started_at < end, SurveyResponse.suggestion.is_not(None),
                   SurveyAnswer.element == element, SurveyAnswer.score <= 2)
            .order_by(SurveyResponse.id.desc()).limit(THEME_TEXTS)
        )
    ]
    texts += [mask_personal(c.description, c.names) for c in complaints
              if CATEGORY_ELEMENT.get(c.category) == element and not c.confidential]
    return top_words(texts), group_similar(texts)


@cache
def _stemmer() -> object:
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    return StemmerFactory().create_stemmer()


@cache
def stem(word: str) -> str:
    """The Indonesian stem of one lower-case word ("antriannya" -> "antri")."""
    return str(_stemmer().stem(word)) or word  # type: ignore[attr-defined]


def top_words(texts: Iterable[str | None], n: int = 5) -> list[str]:
    """The words most texts share, counted by stem, each shown in its most common written form.

    Texts must already be masked (the marks such as [nama] are not words).
    """
    counts: Counter[str] = Counter()  # stem -> texts using it
    forms: dict[str, Counter[str]] = {}  # stem -> surface forms written
    for text in texts:
        seen: set[str] = set()
        for word in re.findall(r"[a-z]{3,}", strip_marks(text or "").lower()):
            root = stem(word)
            if word in STOPWORDS or root in STOPWORDS:
                continue
            forms.setdefault(root, Counter())[word] += 1
            seen.add(root)
        counts.update(seen)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    def shown(root: str) -> str:
        return min(forms[root].items(), key=lambda item: (-item[1], len(item[0]), item[0]))[0]

    return [shown(root) for root, c in ranked[:n] if c >= 2]


def group_similar(texts: Iterable[str | None], threshold: float = 70, n: int = 2) -> list[tuple[str, int]]:
    """Greedy grouping of similar texts (rapidfuzz token-set ratio); groups of two or more."""
    groups: list[tuple[str, str, int]] = []  # (processed representative, original, count)
    for text in texts:
        if not text:
            continue
        proc = fuzz_utils.default_process(text)
        if not proc:
            continue
        for i, (rep, original, count) in enumerate(groups):
            if fuzz.token_set_ratio(proc, rep) >= threshold:
                groups[i] = (rep, original, count + 1)
                break
        else:
            groups.append((proc, text, 1))
    ranked = sorted((g for g in groups if g[2] >= 2), key=lambda g: -g[2])[:n]
    return [(shorten(mask_personal(original), 70), count) for _, original, count in ranked]
