"""Rendering the web chat page: its Jinja2 environment, language, links onward, one-time notes.

Texts come from the locales (keys ``webchat.*``) like the bot's. A note shown once (a new
ticket's secret, an erasure's confirmation) travels in a short-lived cookie from the form post
to the page it redirects to, so the plain secret is never stored on the server.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.channels.common import choice_label, encode_choice
from bot.i18n import LANGUAGES, TEXTS
from bot.web.desk.render import SECURITY_HEADERS

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ENV = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
FLASH = "prima_chat_note"
SERVICE_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def pick_language(request: web.Request, stored: str | None, default: str) -> str:
    """The contact's language once known; before that the browser's (Accept-Language)."""
    if stored in LANGUAGES:
        return str(stored)
    for part in request.headers.get("Accept-Language", "").split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return default


def read_notes(request: web.Request) -> list[dict[str, str]]:
    raw = request.cookies.get(FLASH, "")
    try:
        notes = json.loads(base64.urlsafe_b64decode(raw.encode()).decode()) if raw else []
    except ValueError:
        return []
    return [n for n in notes if isinstance(n, dict)][:5] if isinstance(notes, list) else []


def write_notes(response: web.StreamResponse, notes: list[dict[str, str]], secure: bool) -> None:
    if notes:
        value = base64.urlsafe_b64encode(json.dumps(notes).encode()).decode()
        response.set_cookie(FLASH, value, max_age=600, httponly=True, samesite="Strict",
                            secure=secure, path="/chat")


def telegram_link(username: str | None, payload: str) -> str | None:
    name = (username or "").strip().lstrip("@")
    return f"https://t.me/{name}?start={payload}" if name else None


def whatsapp_link(number: str | None, payload: str) -> str | None:
    digits = "".join(ch for ch in number or "" if ch.isdigit())
    return f"https://wa.me/{digits}?text={quote('/start ' + payload)}" if digits else None


def buttons(message: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The last message's choices as buttons: the value the engine checks, the label with its key."""
    if not message:
        return []
    q = message.get("q")
    return [{"value": encode_choice(q, str(c["id"])), "label": choice_label(c), "nav": bool(c.get("nav"))}
            for c in message.get("choices") or [] if c.get("id")]


def render(template: str, lang: str, status: int = 200, **context: Any) -> web.Response:
    def t(key: str, **params: Any) -> str:
        return TEXTS(lang, key, **params)

    html = ENV.get_template(template).render(t=t, lang=lang, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers=SECURITY_HEADERS)
