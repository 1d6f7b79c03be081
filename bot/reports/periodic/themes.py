"""What residents said about the period's weakest elements, in one scan for all of them.

The digest's themes (bot.reports.digest.themes) read a week with one query per element; over a
year that is one scan of the year's suggestions per element. Here one query looks at the
period's newest SCANNED suggestions and keeps, per weak element, the newest THEME_TEXTS of
residents who rated it 1 or 2. Words and groups are then counted exactly as in the digest
(masked first, Indonesian stems, our own stoplist), with complaints whose category concerns
the element; a confidential complaint is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.reports.digest.mask import mask_personal
from bot.reports.digest.model import ComplaintRow
from bot.reports.digest.themes import CATEGORY_ELEMENT, THEME_TEXTS, group_similar, top_words
from bot.storage.models import Contact, SurveyAnswer, SurveyResponse

SCANNED = THEME_TEXTS * 4  # newest suggestions looked at: enough for every weak element


def weak_themes(
    db: Session, agency_id: int, elements: Sequence[int], start: datetime, end: datetime,
    complaints: list[ComplaintRow],
) -> dict[int, tuple[list[str], list[tuple[str, int]]]]:
    """Frequent words and similar texts per element, from suggestions of residents who rated it
    1 or 2 in the period, and from the period's complaints about it."""
    if not elements:
        return {}
    texts: dict[int, list[str]] = {e: [] for e in elements}
    r, a = SurveyResponse, SurveyAnswer
    # the newest suggestions of the period (walking the (agency, started_at) index backwards),
    # then which of them rated a weak element 1 or 2: a bounded read even over a busy year
    newest = (
        select(r.id).where(r.agency_id == agency_id, r.started_at >= start, r.started_at < end,
                           r.suggestion.is_not(None))
        .order_by(r.started_at.desc(), r.id.desc()).limit(SCANNED)
    )
    rows = db.execute(
        select(a.element, r.suggestion, Contact.display_name)
        .select_from(r).join(a, a.response_id == r.id)
        .join(Contact, r.contact_id == Contact.id, isouter=True)
        .where(r.id.in_(newest), a.element.in_(list(elements)), a.score <= 2)
        .order_by(r.started_at.desc(), r.id.desc())
    ).all()
    full = 0
    for element, suggestion, name in rows:
        bucket = texts[int(element)]
        if len(bucket) < THEME_TEXTS:
            bucket.append(mask_personal(suggestion or "", [name] if name else []))
            full += len(bucket) == THEME_TEXTS
            if full == len(elements):
                break
    out = {}
    for e in elements:
        said = texts[e] + [mask_personal(c.description, c.names) for c in complaints
                           if CATEGORY_ELEMENT.get(c.category) == e and not c.confidential]
        out[e] = (top_words(said), group_similar(said))
    return out
