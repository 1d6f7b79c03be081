"""Outbox payloads out: replies as Cloud API message objects, within WhatsApp's limits.

At most 3 choices become reply buttons (titles cut to 20 characters), up to 10 a list
message (titles 24, descriptions 72), more a numbered text the resident answers by typing
the number or the words. A follow-up outside the 24-hour window becomes an approved
template (:func:`template_message`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.channels.common import choice_label
from bot.channels.whatsapp.ids import MAX_ROW_ID, reply_id
from bot.text import split_text
from flows.machine.types import Texts

MAX_TEXT = 4096  # one text message
MAX_INTERACTIVE_BODY = 1024
MAX_BUTTONS = 3
BUTTON_TITLE = 20
MAX_ROWS = 10
ROW_TITLE = 24
ROW_DESCRIPTION = 72
LIST_BUTTON = 20
MAX_TEMPLATE_PARAM = 1000


def cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def unique_titles(labels: Iterable[str], limit: int) -> list[str]:
    """Cut to ``limit``; WhatsApp refuses two buttons with the same title, so number clashes."""
    titles: list[str] = []
    for label in labels:
        title = cut(label, limit) or "-"
        n = 2
        while title in titles:
            suffix = f" ({n})"
            title = cut(label, limit - len(suffix)) + suffix
            n += 1
        titles.append(title)
    return titles


def _text_messages(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"body": part, "preview_url": False}} for part in split_text(text, MAX_TEXT)]


def _interactive_split(text: str) -> tuple[list[dict[str, Any]], str]:
    """Texts to send first, and the interactive body (WhatsApp allows 1024 characters there)."""
    parts = split_text(text, MAX_TEXT)
    last = parts.pop()
    tail = split_text(last, MAX_INTERACTIVE_BODY)
    body = tail.pop()
    head = [*parts, *tail]
    return [m for part in head for m in _text_messages(part)], body


def render(payload: dict[str, Any], lang: str, texts: Texts) -> list[dict[str, Any]]:
    """An outbox payload -> Cloud API message objects (without ``to``), sent in order."""
    text = str(payload.get("text") or "")
    choices = [c for c in payload.get("choices") or [] if c.get("id") and c.get("label")]
    q = payload.get("q")
    if not choices:
        return _text_messages(text)
    if len(choices) <= MAX_ROWS:
        first, body = _interactive_split(text)
        if len(choices) <= MAX_BUTTONS:
            titles = unique_titles((choice_label(c) for c in choices), BUTTON_TITLE)
            buttons = [{"type": "reply", "reply": {"id": reply_id(q, str(c["id"])), "title": t}}
                       for c, t in zip(choices, titles, strict=True)]
            interactive: dict[str, Any] = {"type": "button", "body": {"text": body},
                                           "action": {"buttons": buttons}}
        else:
            titles = unique_titles((choice_label(c) for c in choices), ROW_TITLE)
            rows = []
            for c, title in zip(choices, titles, strict=True):
                row = {"id": reply_id(q, str(c["id"]), MAX_ROW_ID), "title": title}
                label = " ".join(str(c["label"]).split())
                if len(choice_label(c)) > ROW_TITLE:  # the full words go in the description
                    row["description"] = cut(label, ROW_DESCRIPTION)
                rows.append(row)
            interactive = {"type": "list", "body": {"text": body},
                           "action": {"button": cut(texts(lang, "wa.list_button"), LIST_BUTTON),
                                      "sections": [{"rows": rows}]}}
        return [*first, {"type": "interactive", "interactive": interactive}]
    return _text_messages(numbered(text, choices, lang, texts))


def numbered(text: str, choices: list[dict[str, Any]], lang: str, texts: Texts) -> str:
    """More than 10 choices: a numbered menu; the engine takes a typed number or label."""
    answers = [c for c in choices if not c.get("nav")]
    lines = [text, ""] + [choice_label(c) if c.get("key") else f"{n}. {c['label']}"
                          for n, c in enumerate(answers, 1)]
    lines += ["", texts(lang, "wa.numbered_hint")]
    nav = [re.sub(r"^\W+|\W+$", "", str(c["label"])).lower() for c in choices if c.get("nav")]
    if nav:
        lines.append(texts(lang, "wa.nav_hint", words=" / ".join(w for w in nav if w)))
    return "\n".join(lines)


def flatten(text: str, limit: int = MAX_TEMPLATE_PARAM) -> str:
    """Template variables may not hold newlines, tabs or runs of spaces."""
    lines = [" ".join(line.split()) for line in (text or "").splitlines()]
    return cut(" · ".join(line for line in lines if line) or "-", limit)


def template_message(
    name: str, language: str, payload: dict[str, Any], buttons: int = 0
) -> dict[str, Any]:
    """A follow-up as an approved template: the text fills ``{{1}}``, answers the quick replies."""
    components: list[dict[str, Any]] = [
        {"type": "body", "parameters": [{"type": "text", "text": flatten(str(payload.get("text") or ""))}]}
    ]
    answers = [c for c in payload.get("choices") or [] if not c.get("nav")]
    for i, c in enumerate(answers[:buttons]):
        components.append({"type": "button", "sub_type": "quick_reply", "index": str(i),
                           "parameters": [{"type": "payload",
                                           "payload": reply_id(payload.get("q"), str(c["id"]))}]})
    return {"type": "template",
            "template": {"name": name, "language": {"code": language}, "components": components}}
