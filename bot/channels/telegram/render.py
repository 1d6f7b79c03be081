"""What a Telegram message looks like: the channel's limits, inline keyboards, callback data.

``callback_data`` is ``"<q>:<choice id>"`` within Telegram's 64 bytes; the engine refuses a
choice whose question is no longer current, so a forged or stale button changes nothing.
Keyboards are built once per distinct question and shared.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.channels.common import choice_label, decode_choice, encode_choice

CHANNEL = "telegram"
MAX_CALLBACK_BYTES = 64  # Telegram's limit for callback_data
MAX_TEXT = 4096  # Telegram's limit for one message
CHOSEN_MARK = "✅"

KEY_PREFIX = re.compile(r"^\d{1,3}\. ")


def callback_data(q: int | None, choice_id: str) -> str:
    data = encode_choice(q, choice_id)
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback_data over {MAX_CALLBACK_BYTES} bytes: {data!r}")
    return data


def parse_callback(data: str | None) -> tuple[int, str] | None:
    """``"12:agree"`` -> (12, "agree"); anything malformed -> None (never raises)."""
    if not data or len(data.encode()) > MAX_CALLBACK_BYTES:
        return None
    return decode_choice(data)


def keyboard(payload: dict[str, Any]) -> InlineKeyboardMarkup | None:
    """Answers one per row (labels stay readable); back/cancel together on the last row."""
    choices = payload.get("choices") or []
    if not choices:
        return None
    q = payload.get("q")
    return _keyboard(q, tuple((str(c["id"]), choice_label(c), bool(c.get("nav"))) for c in choices))


@functools.lru_cache(maxsize=1024)
def _keyboard(q: Any, choices: tuple[tuple[str, str, bool], ...]) -> InlineKeyboardMarkup:
    """Built once per distinct keyboard: residents at the same question share it.

    Building the pydantic models cost more per message than sending it; aiogram only reads
    the markup, so one instance can serve every send.
    """
    rows: list[list[InlineKeyboardButton]] = []
    nav: list[InlineKeyboardButton] = []
    for choice_id, label, is_nav in choices:
        button = InlineKeyboardButton(text=label[:120], callback_data=callback_data(q, choice_id))
        if is_nav:
            nav.append(button)
        else:
            rows.append([button])
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)
