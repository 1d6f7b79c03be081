"""What the channels and the runtime pass each other: an inbound event, the clock, a reply's payload.

Kept apart from the turn so a channel adapter can name these without importing the runtime's
machinery.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.catalog import DEFAULT_ZONE, valid_zone
from flows.machine.types import Event, Reply

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Inbound:
    """An event from a channel, with who sent it and where to answer."""

    channel: str
    user_id: str
    chat_id: str
    event: Event
    event_key: str | None = None  # delivery id for de-duplication (update_id, wamid...)
    display_name: str | None = None
    username: str | None = None  # Telegram @username: never stored, scrubbed on erasure
    language_hint: str | None = None


def reply_payload(reply: Reply) -> dict[str, Any]:
    return {
        "text": reply.text,
        "choices": [{"id": c.id, "label": c.label, "nav": c.nav, "key": c.key} for c in reply.choices],
        "q": reply.q,
    }


def local_time(when: datetime | None, tz: str) -> str:
    if when is None:
        return "-"
    local = when.astimezone(ZoneInfo(tz if valid_zone(tz) else DEFAULT_ZONE))  # a bad row: WIB
    return f"{local:%d-%m-%Y %H:%M} {local.tzname()}"


def new_event_id() -> str:
    return uuid.uuid4().hex
