"""Rendering the desk's pages: one Jinja2 environment, texts from the locales, times for people.

Templates live in bot/web/templates/ and are autoescaped, so a resident's words are shown
literally. Every visible text comes from locales/<lang>/LC_MESSAGES/messages.po (keys
``desk.*``) through :func:`bot.i18n.TEXTS`, so the desk reads in Bahasa Indonesia or English
like the bot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.i18n import TEXTS, message_ids
from bot.web.desk.base import current

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"
ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@cache
def known(lang: str) -> frozenset[str]:
    return frozenset(message_ids(lang))


def label(lang: str, prefix: str, value: str) -> str:
    """A text for a stored code (an event kind, an actor), or the code itself when there is none
    (another part of the bot may record kinds the desk has no words for)."""
    key = f"{prefix}.{value}"
    return TEXTS(lang, key) if key in known(lang) else value


def local(when: datetime | None, tz: str) -> str:
    if when is None:
        return "-"
    moment = when.astimezone(ZoneInfo(tz))
    return f"{moment:%d-%m-%Y %H:%M} {moment.tzname()}"


def time_left(lang: str, due: datetime | None, now: datetime) -> tuple[str, bool]:
    """("3 j 20 m lagi", False) or ("terlambat 2 h", True): a human measure of a deadline."""
    if due is None:
        return "-", False
    delta = due - now
    late = delta < timedelta(0)
    span = abs(delta)
    days, rest = divmod(int(span.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        amount = TEXTS(lang, "desk.span.dh", d=days, h=hours)
    elif hours:
        amount = TEXTS(lang, "desk.span.hm", h=hours, m=minutes)
    else:
        amount = TEXTS(lang, "desk.span.m", m=minutes)
    return TEXTS(lang, "desk.late" if late else "desk.left", span=amount), late


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    lang = current().lang

    def t(key: str, **params: Any) -> str:
        return TEXTS(lang, key, **params)

    viewer = current().viewer
    def lb(prefix: str, value: str) -> str:
        return label(lang, prefix, value)

    html = ENV.get_template(template).render(
        t=t, label=lb, lang=lang, viewer=viewer, csrf=viewer.csrf if viewer else "",
        path=request.path_qs, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers=SECURITY_HEADERS)
