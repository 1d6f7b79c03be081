"""Every message id used by the code exists in both the Indonesian and the English catalog."""

from __future__ import annotations

import re
from pathlib import Path

from bot.i18n import LANGUAGES, message_ids
from flows.helpers.skm import CATEGORIES, ELEMENTS
from flows.steps.common import COMPLAINT_FIELDS
from flows.steps.menu import Menu

ROOT = Path(__file__).resolve().parent.parent
# Literal ids passed to t()/say()/texts(): "menu.ask", "consent.notice" ...
LITERAL = re.compile(r"""\b(?:t|say|texts|TEXTS|_t|tr)\(\s*(?:[\w.]+,\s*)?["']([a-z_]+(?:\.[a-z0-9_]+)*)["']""")


def used_ids() -> set[str]:
    ids: set[str] = set()
    for folder in ("bot", "flows"):
        for path in (ROOT / folder).rglob("*.py"):
            ids |= set(LITERAL.findall(path.read_text(encoding="utf-8")))
    # Ids built from data: every element, answer label, category, menu item and field.
    for key in ELEMENTS:
        ids |= {f"skm.{key}.name", f"skm.{key}.q"} | {f"skm.{key}.{s}" for s in range(1, 5)}
    ids |= {f"cat.{c}" for c in CATEGORIES}
    ids |= {f"menu.{item}" for item in Menu.ITEMS}
    ids |= {f"complaint.field.{f}" for f in COMPLAINT_FIELDS}
    ids |= {f"lang.name.{lang}" for lang in LANGUAGES}
    ids |= {f"svc.ask.{p}" for p in ("survey", "complaint")}
    ids |= {f"when.{w}" for w in ("today", "yesterday", "week", "earlier")}
    ids |= {f"complaint_status.{s}" for s in ("new", "open", "pending", "resolved", "closed", "reopened")}
    return ids


def test_the_scan_finds_ids() -> None:
    ids = used_ids()
    assert {"menu.ask", "consent.notice", "complaint.done", "data.deleted"} <= ids


def test_every_used_id_is_in_both_catalogs() -> None:
    ids = used_ids()
    for lang in LANGUAGES:
        missing = sorted(ids - message_ids(lang))
        assert not missing, f"{lang}: missing {missing}"


def test_both_catalogs_have_the_same_ids() -> None:
    assert message_ids("id") == message_ids("en")


def test_placeholders_match_between_languages() -> None:
    from bot.i18n import translations

    for key in message_ids("id"):
        a = set(re.findall(r"{(\w+)}", translations("id").gettext(key)))
        b = set(re.findall(r"{(\w+)}", translations("en").gettext(key)))
        assert a == b, key
