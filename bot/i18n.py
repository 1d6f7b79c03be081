"""Gettext catalogs from ``locales/<lang>/LC_MESSAGES/messages.po``, compiled in memory.

Message ids are symbolic keys (``menu.ask``), so both catalogs must carry every id; a test
fails on a missing one. Placeholders use ``{name}`` (python-brace-format).
"""

from __future__ import annotations

import gettext
import io
import logging
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)
LOCALES = Path(__file__).resolve().parent.parent / "locales"
LANGUAGES = ("id", "en")
DOMAIN = "messages"


def po_path(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> gettext.GNUTranslations:
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def message_ids(lang: str) -> set[str]:
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    return {str(m.id) for m in catalog if m.id and m.string}


class Texts:
    """Callable used by the engine, e.g. ``texts(lang, key)``. Falls back to Indonesian.

    Catalogs do not change while the process runs, so each (language, key) is looked up once:
    a turn asks for a dozen texts and whether each has a channel's own wording.
    """

    def __init__(self, default: str = "id") -> None:
        self.default = default if default in LANGUAGES else "id"
        self._found: dict[tuple[str, str], str | None] = {}

    def _lookup(self, lang: str, key: str) -> str | None:
        """The text of ``key`` in ``lang`` or else in Indonesian; None when neither has it."""
        if (lang, key) in self._found:
            return self._found[(lang, key)]
        text = translations(lang).gettext(key)
        if text == key and lang != "id":
            text = translations("id").gettext(key)
        found = None if text == key else text
        self._found[(lang, key)] = found
        return found

    def __call__(self, lang: str, key: str, **params: Any) -> str:
        if lang not in LANGUAGES:
            lang = self.default
        text = self._lookup(lang, key)
        if text is None:
            log.error("missing message id %r", key)
            text = key
        return text.format(**params) if params else text

    def has(self, lang: str, key: str) -> bool:
        """Whether ``key`` has a text in ``lang`` (or in Indonesian, the fallback)."""
        lang = lang if lang in LANGUAGES else self.default
        return self._lookup(lang, key) is not None


TEXTS = Texts()
